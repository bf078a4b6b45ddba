// The example's Better Auth server: email + password sign-up/sign-in and the jwt() plugin,
// configured the way the Tasks API expects (see README.md, "Better Auth's jwt() plugin").
//
// In a real app this is your Next.js (or other) backend's `auth.ts`; here it is a plain
// node:http server on its own origin, so it also answers CORS for the page's origin.
//
// Environment (run.sh sets them all):
//   AUTH_URL            this server's base URL, e.g. http://127.0.0.1:3000 (iss and aud of the tokens)
//   WEB_ORIGIN          the page's origin, e.g. http://127.0.0.1:5173 (trusted, and allowed by CORS)
//   BETTER_AUTH_SECRET  encrypts the private keys and signs the session cookies (32+ characters)
//
// Storage is in memory: stopping the server forgets every user, session and signing key.
// Prints "ready <AUTH_URL>" once it listens.
import http from "node:http";

import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const AUTH_URL = process.env.AUTH_URL;
const WEB_ORIGIN = process.env.WEB_ORIGIN;
const secret = process.env.BETTER_AUTH_SECRET;
if (!AUTH_URL || !WEB_ORIGIN || !secret || secret.length < 32) {
  console.error("set AUTH_URL, WEB_ORIGIN and BETTER_AUTH_SECRET (32+ characters)");
  process.exit(2);
}
const { hostname, port } = new URL(AUTH_URL);

export const auth = betterAuth({
  baseURL: AUTH_URL,
  secret,
  // The page runs on another origin: Better Auth refuses state-changing requests
  // (sign-up, sign-in, sign-out) from origins it does not trust.
  trustedOrigins: [WEB_ORIGIN],
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
  emailAndPassword: { enabled: true },
  plugins: [
    jwt({
      // Every value here is the plugin's default, written out: this is what the Tasks API
      // checks with nothing but BETTER_AUTH_URL set.
      jwks: {
        keyPairConfig: { alg: "EdDSA", crv: "Ed25519" }, // the API also accepts ES256, ES512, RS256, PS256
        // rotationInterval: 60 * 60 * 24 * 30,  // rotate monthly; old keys stay published for gracePeriod
      },
      jwt: {
        issuer: new URL(AUTH_URL).origin, // the API expects iss = the origin of BETTER_AUTH_URL
        audience: new URL(AUTH_URL).origin, // ... and aud too (else set JWT_ISSUER / JWT_AUDIENCE there)
        expirationTime: "15m",
      },
    }),
  ],
  telemetry: { enabled: false },
});

const handler = toNodeHandler(auth);

/** CORS for the page: credentials (the session cookie), and the set-auth-jwt header readable. */
function cors(req, res) {
  if (req.headers.origin !== WEB_ORIGIN) return false;
  res.setHeader("Access-Control-Allow-Origin", WEB_ORIGIN);
  res.setHeader("Access-Control-Allow-Credentials", "true");
  res.setHeader("Access-Control-Expose-Headers", "set-auth-jwt");
  res.setHeader("Vary", "Origin");
  return true;
}

const server = http.createServer((req, res) => {
  const allowed = cors(req, res);
  if (req.method === "OPTIONS") {
    if (allowed) {
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.setHeader("Access-Control-Allow-Headers", "Content-Type");
      res.setHeader("Access-Control-Max-Age", "600");
    }
    res.writeHead(204).end();
    return;
  }
  handler(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("internal error\n");
  });
});

server.on("error", (error) => {
  console.error(`auth server: cannot listen on ${hostname}:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(Number(port), hostname, () => console.log(`ready ${AUTH_URL}`));

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
