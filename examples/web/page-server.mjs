// Serves the example page: index.html, its stylesheet, the compiled TypeScript (dist/),
// openapi-fetch's single ES module, and /config.json (where the API and Better Auth are).
// No bundler: the browser loads the ES modules as they are, and an import map in
// index.html points the bare specifier "openapi-fetch" at /vendor/openapi-fetch.mjs.
//
// Environment (run.sh sets them all): WEB_URL (this server, e.g. http://127.0.0.1:5173),
// AUTH_URL (Better Auth), API_URL (the Tasks API). Prints "ready <WEB_URL>" once it listens.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { WEB_URL, AUTH_URL, API_URL } = process.env;
if (!WEB_URL || !AUTH_URL || !API_URL) {
  console.error("set WEB_URL, AUTH_URL and API_URL");
  process.exit(2);
}
const { hostname, port } = new URL(WEB_URL);

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".json": "application/json", ".map": "application/json" };

// Only these files are served; nothing else of the folder (node_modules, the servers' sources).
const FIXED = {
  "/": path.join(HERE, "index.html"),
  "/index.html": path.join(HERE, "index.html"),
  "/style.css": path.join(HERE, "style.css"),
  "/vendor/openapi-fetch.mjs": path.join(HERE, "node_modules/openapi-fetch/dist/index.mjs"),
};

const html = await readFile(FIXED["/"], "utf8");
const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? "";
const importMapHash = createHash("sha256").update(importMap).digest("base64");
// The page may talk to exactly two other origins: Better Auth and the Tasks API.
const CSP = [
  "default-src 'none'",
  `script-src 'self' 'sha256-${importMapHash}'`,
  "style-src 'self'",
  "img-src 'self' data:",
  `connect-src 'self' ${new URL(AUTH_URL).origin} ${new URL(API_URL).origin}`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function send(res, status, type, body) {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
  });
  res.end(body);
}

async function answer(req, res) {
  const url = new URL(req.url ?? "/", WEB_URL);
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "GET only\n");
  if (url.pathname === "/config.json") {
    return send(res, 200, TYPES[".json"], JSON.stringify({ authUrl: AUTH_URL, apiUrl: API_URL }));
  }
  let file = FIXED[url.pathname];
  if (!file && /^\/dist\/[\w-]+\.js(\.map)?$/.test(url.pathname)) file = path.join(HERE, url.pathname);
  if (!file) return send(res, 404, "text/plain", "not found\n");
  try {
    return send(res, 200, TYPES[path.extname(file)] ?? "application/octet-stream", await readFile(file));
  } catch {
    return send(res, 404, "text/plain", `${url.pathname} is missing (run npx tsc?)\n`);
  }
}

const server = http.createServer((req, res) => {
  answer(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.on("error", (error) => {
  console.error(`page server: cannot listen on ${hostname}:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(Number(port), hostname, () => console.log(`ready ${WEB_URL}`));

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
