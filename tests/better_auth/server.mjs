// A tiny, real Better Auth server for the end-to-end test (tests/test_better_auth_e2e.py).
//
// - email + password sign-up/sign-in, in-memory storage (nothing survives a restart,
//   so every process is a separate "instance" with its own users and its own keys);
// - the jwt() plugin with its defaults: EdDSA/Ed25519 keys published at
//   /api/auth/jwks, tokens from GET /api/auth/token (and the set-auth-jwt header of
//   /api/auth/get-session), iss = aud = the origin of baseURL, 15 minute expiry.
//
// Environment:
//   PORT                    port on 127.0.0.1; 0 lets the OS pick a free one (default 0)
//   BETTER_AUTH_SECRET      secret that encrypts the private keys and signs cookies (required)
//   EXIT_WHEN_STDIN_CLOSES  "1": exit when stdin reaches EOF, so the server never outlives
//                           a parent that holds the write end of a pipe and dies
//   JWKS_ROTATION_INTERVAL  seconds after which the signing key expires and the next token
//                           is signed with a new one (the jwt plugin's jwks.rotationInterval);
//                           unset: keys never rotate
//
// Prints "ready <baseURL>" on stdout once it is listening; baseURL is
// http://127.0.0.1:<actual port>.
import http from "node:http";

import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const HOST = "127.0.0.1";

const port = Number.parseInt(process.env.PORT ?? "0", 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be an integer between 0 and 65535, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
const secret = process.env.BETTER_AUTH_SECRET;
if (!secret || secret.length < 32) {
  console.error("BETTER_AUTH_SECRET must be set (at least 32 characters)");
  process.exit(2);
}

const rotation = Number.parseInt(process.env.JWKS_ROTATION_INTERVAL ?? "0", 10);

function createAuth(baseURL) {
  return betterAuth({
    baseURL,
    secret,
    // Every table the configured features use, empty: the memory adapter needs them declared.
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    // Rotated keys stay published for an hour (gracePeriod), as tokens signed with them do.
    plugins: [jwt(rotation > 0 ? { jwks: { rotationInterval: rotation, gracePeriod: 3600 } } : {})],
    telemetry: { enabled: false },
    rateLimit: { enabled: false },
  });
}

let handler = null;
const server = http.createServer((req, res) => {
  if (handler === null) {
    res.writeHead(503, { "content-type": "text/plain" }).end("starting\n");
    return;
  }
  handler(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error\n");
  });
});

server.on("error", (error) => {
  console.error(`cannot listen on ${HOST}:${port}: ${error.message}`);
  process.exit(1);
});

server.listen(port, HOST, () => {
  // The base URL (and so the token's iss/aud) needs the real port, known only now.
  const baseURL = `http://${HOST}:${server.address().port}`;
  handler = toNodeHandler(createAuth(baseURL));
  console.log(`ready ${baseURL}`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
if (process.env.EXIT_WHEN_STDIN_CLOSES === "1") {
  process.stdin.on("end", shutdown);
  process.stdin.on("error", shutdown);
  process.stdin.resume();
}
