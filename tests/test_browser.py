"""Real-browser tests: CORS from a page on another origin, and the offline docs page.

They drive the Debian ``chromium`` package through Playwright's sync API (Playwright's
own browser download is not used). Without Chromium or Playwright they skip, or fail
under TASKS_REQUIRE_ALL=1.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from chromium import WAIT_MS, chromium, require_browser
from conftest import ALICE, TEST_SECRET, make_app, serving
from flask import Flask
from sqlalchemy import text

from app.auth import create_token
from app.models import db

try:
    from playwright.sync_api import Browser, Page, Route, expect
except Exception:  # pragma: no cover - chromium.require_browser skips, saying why
    pass

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


# --- servers ---------------------------------------------------------------------------


class _Recorder:
    """WSGI middleware noting every request the API saw and the CORS headers it answered."""

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        entry: dict[str, Any] = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "origin": environ.get("HTTP_ORIGIN"),
            "requested_headers": environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""),
        }

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], *args: Any
        ) -> Any:
            entry["status"] = int(status.split()[0])
            entry["headers"] = {name.lower(): value for name, value in headers}
            return start_response(status, headers, *args)

        with self._lock:
            self.seen.append(entry)
        return self.wsgi_app(environ, recording_start_response)


class _PageServer:
    """Serves one HTML page (any path) from its own loopback port: its own origin.

    ``html`` may be set after start-up, once the page's configuration is known.
    """

    def __init__(self) -> None:
        self.html = ""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = owner.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


# --- the frontend page -----------------------------------------------------------------

# The "frontend": plain fetch() calls with a bearer token, as a browser app makes them.
# Every step records what JavaScript could see; window.done tells the test it finished.
FRONTEND_SCRIPT = r"""
const CONFIG = JSON.parse(document.getElementById("config").textContent);
window.results = {};
window.done = false;

async function call(name, method, path, {token = CONFIG.token, body, extra = {}} = {}) {
  const headers = {...extra};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const entry = {method, path};
  try {
    const response = await fetch(CONFIG.api + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    entry.status = response.status;
    entry.xPagination = response.headers.get("X-Pagination");
    entry.location = response.headers.get("Location");
    entry.link = response.headers.get("Link");
    entry.wwwAuthenticate = response.headers.get("WWW-Authenticate");
    entry.etag = response.headers.get("ETag");
    entry.replayed = response.headers.get("Idempotent-Replayed");
    const raw = await response.text();
    entry.text = raw;
    try { entry.body = raw ? JSON.parse(raw) : null; } catch (e) { entry.body = undefined; }
  } catch (error) {
    entry.error = String(error);
    entry.errorName = error && error.name;
  }
  window.results[name] = entry;
  return entry;
}

async function allowedScenario() {
  const base = "/api/" + encodeURIComponent(CONFIG.user) + "/tasks";
  const created = await call("create", "POST", base,
                             {body: {title: CONFIG.title, description: "from the browser"}});
  const id = created.body && created.body.id;
  await call("list", "GET", base + "?page_size=10");
  await call("update", "PUT", base + "/" + id, {body: {title: CONFIG.title + " (edited)"}});
  await call("toggle", "PATCH", base + "/" + id + "/complete");
  await call("delete", "DELETE", base + "/" + id);
  await call("notFound", "GET", base + "/" + id);
  await call("badToken", "GET", base, {token: "not-a-jwt"});
  await call("noToken", "GET", base, {token: null});

  // docs/api.md, "From a browser (CORS)": headers to preflight, response headers JS reads.
  const key = {"Idempotency-Key": CONFIG.idempotencyKey};
  const first = await call("idemFirst", "POST", base,
                           {body: {title: CONFIG.title + " once"}, extra: key});
  await call("idemAgain", "POST", base, {body: {title: CONFIG.title + " once"}, extra: key});
  const one = base + "/" + (first.body && first.body.id);
  const fetched = await call("fetched", "GET", one);
  await call("notModified", "GET", one, {extra: {"If-None-Match": fetched.etag}});
  await call("ifMatch", "PUT", one,
             {body: {title: CONFIG.title + " matched"}, extra: {"If-Match": fetched.etag}});
  await call("staleMatch", "PUT", one,
             {body: {title: CONFIG.title + " stale"}, extra: {"If-Match": fetched.etag}});
  await call("idemCleanup", "DELETE", one);
}

async function disallowedScenario() {
  const base = "/api/" + encodeURIComponent(CONFIG.user) + "/tasks";
  await call("create", "POST", base, {body: {title: CONFIG.title}});
  await call("list", "GET", base);
}

(CONFIG.scenario === "allowed" ? allowedScenario() : disallowedScenario())
  .catch((error) => { window.results.scenarioError = String(error); })
  .finally(() => { window.done = true; });
"""


def frontend_html(config: dict[str, Any]) -> str:
    payload = json.dumps(config).replace("</", "<\\/")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>frontend</title></head>"
        f"<body><h1>frontend</h1><script type='application/json' id='config'>{payload}</script>"
        f"<script>{FRONTEND_SCRIPT}</script></body></html>"
    )


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    contexts = []

    def make() -> Page:
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def count_tasks(cors_app: Flask, title_prefix: str) -> int:
    with cors_app.app_context():
        with db.engine.connect() as conn:
            count = conn.execute(
                text("SELECT count(*) FROM tasks WHERE title LIKE :prefix"),
                {"prefix": title_prefix + "%"},
            ).scalar_one()
        db.session.remove()
    return int(count)


def run_frontend(page: Page, url: str) -> tuple[dict[str, Any], list[str]]:
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.goto(url, wait_until="load")
    page.wait_for_function("window.done === true", timeout=WAIT_MS)
    return page.evaluate("window.results"), console


# --- 1. CORS from a real page on another origin ----------------------------------------


def test_cors_from_a_real_page_on_allowed_and_other_origins(
    app: Flask, database_url: str, new_page: Callable[[], Page]
) -> None:
    require_browser()
    # Three loopback origins: the frontend that is allowed, and two that are not
    # (another port, and the same other port under the name "localhost").
    servers: list[Any] = []
    api = ExitStack()
    cors_app: Flask | None = None
    try:
        allowed = _PageServer()
        servers.append(allowed)
        other = _PageServer()
        servers.append(other)
        allowed_origin = f"http://127.0.0.1:{allowed.port}"
        cors_app = make_app(database_url, CORS_ORIGINS=[allowed_origin], PROPAGATE_EXCEPTIONS=False)
        recorder = _Recorder(cors_app.wsgi_app)
        cors_app.wsgi_app = recorder  # type: ignore[method-assign]
        api_url = api.enter_context(serving(cors_app))
        token = create_token(TEST_SECRET, ALICE)
        marker = f"browser-{uuid.uuid4().hex[:8]}"
        config = {"api": api_url, "token": token, "user": ALICE, "idempotencyKey": uuid.uuid4().hex}
        allowed.html = frontend_html(
            {**config, "title": f"{marker} allowed", "scenario": "allowed"}
        )
        other.html = frontend_html({**config, "title": f"{marker} refused", "scenario": "refused"})

        # -- the allowed origin: every call works and JS reads headers and error bodies --
        results, console = run_frontend(new_page(), allowed_origin + "/")
        assert "scenarioError" not in results, results
        for name in (
            "create",
            "list",
            "update",
            "toggle",
            "delete",
            "notFound",
            "badToken",
            "noToken",
            "idemFirst",
            "idemAgain",
            "fetched",
            "notModified",
            "ifMatch",
            "staleMatch",
            "idemCleanup",
        ):
            assert "error" not in results[name], (name, results[name], console)

        create = results["create"]
        assert create["status"] == 201, create
        assert create["body"]["title"] == f"{marker} allowed"
        assert create["body"]["user_id"] == ALICE
        task_id = create["body"]["id"]
        assert create["location"], "JS could not read Location (not exposed by CORS)"
        assert urlsplit(create["location"]).path == f"/api/{ALICE}/tasks/{task_id}"

        listing = results["list"]
        assert listing["status"] == 200, listing
        assert [task["id"] for task in listing["body"]] == [task_id]
        assert listing["xPagination"], "JS could not read X-Pagination (not exposed by CORS)"
        pagination = json.loads(listing["xPagination"])
        assert pagination["total"] == 1 and pagination["page"] == 1
        assert listing["link"], "JS could not read Link (not exposed by CORS)"

        update = results["update"]
        assert update["status"] == 200, update
        assert update["body"]["title"] == f"{marker} allowed (edited)"
        assert update["body"]["description"] == "from the browser"

        toggle = results["toggle"]
        assert toggle["status"] == 200, toggle
        assert toggle["body"]["completed"] is True

        delete = results["delete"]
        assert delete["status"] == 204, delete
        assert delete["text"] == ""

        # Error responses carry CORS headers too: JS sees their status and JSON body.
        not_found = results["notFound"]
        assert not_found["status"] == 404, not_found
        assert not_found["body"]["code"] == 404 and not_found["body"]["message"]
        for name in ("badToken", "noToken"):
            unauthorized = results[name]
            assert unauthorized["status"] == 401, unauthorized
            assert unauthorized["body"]["code"] == 401, unauthorized
            assert unauthorized["body"]["status"] == "Unauthorized"

        # Idempotency-Key goes through the preflight; JS reads Idempotent-Replayed.
        idem_first, idem_again = results["idemFirst"], results["idemAgain"]
        assert idem_first["status"] == 201, idem_first
        assert idem_first["replayed"] is None, idem_first
        assert idem_again["status"] == 201, idem_again
        assert idem_again["replayed"] == "true", "JS could not read Idempotent-Replayed"
        assert idem_again["body"] == idem_first["body"]
        assert idem_again["location"] == idem_first["location"]

        # ETag is readable; If-None-Match and If-Match pass the preflight and act.
        fetched = results["fetched"]
        assert fetched["status"] == 200, fetched
        assert fetched["etag"], "JS could not read ETag (not exposed by CORS)"
        not_modified = results["notModified"]
        assert not_modified["status"] == 304, not_modified
        assert not_modified["text"] == ""
        assert not_modified["etag"] == fetched["etag"]
        if_match = results["ifMatch"]
        assert if_match["status"] == 200, if_match
        assert if_match["body"]["title"] == f"{marker} allowed matched"
        assert if_match["etag"] and if_match["etag"] != fetched["etag"]
        stale = results["staleMatch"]
        assert stale["status"] == 412, stale
        assert stale["body"]["code"] == 412 and stale["body"]["message"], stale
        assert results["idemCleanup"]["status"] == 204
        assert count_tasks(cors_app, marker) == 0  # created, then deleted

        # The browser preflighted each of those headers and the API allowed each one.
        def names(value: str) -> set[str]:
            return {name.strip().lower() for name in value.split(",") if name.strip()}

        conditional = {"if-match", "if-none-match", "idempotency-key"}
        options = [e for e in recorder.seen if e["method"] == "OPTIONS"]
        asked = set().union(*(names(e["requested_headers"]) for e in options))
        allowed_back = set().union(
            *(names(e["headers"].get("access-control-allow-headers", "")) for e in options)
        )
        assert conditional <= asked, asked
        assert conditional <= allowed_back, allowed_back

        # The API really answered the browser's preflights for the allowed origin.
        preflights = [e for e in recorder.seen if e["method"] == "OPTIONS"]
        assert preflights and all(
            e["headers"].get("access-control-allow-origin") == allowed_origin for e in preflights
        ), preflights

        # -- origins that are not allowed: the browser refuses, nothing reaches the view --
        for refused_origin in (
            f"http://127.0.0.1:{other.port}",  # another port
            f"http://localhost:{other.port}",  # another host name for the same machine
        ):
            recorder.seen.clear()
            results, console = run_frontend(new_page(), refused_origin + "/")
            assert "scenarioError" not in results, results
            for name in ("create", "list"):
                entry = results[name]
                assert "status" not in entry, (refused_origin, name, entry)
                assert entry["errorName"] == "TypeError", (refused_origin, name, entry)
            assert any("CORS policy" in line for line in console), console

            # Only preflights arrived, each refused (no CORS headers); no POST, no GET.
            from_page = [e for e in recorder.seen if e["origin"] == refused_origin]
            assert from_page, recorder.seen
            assert {e["method"] for e in from_page} == {"OPTIONS"}, from_page
            for entry in from_page:
                assert not any(h.startswith("access-control-") for h in entry["headers"]), entry
            assert count_tasks(cors_app, marker) == 0, refused_origin
    finally:
        api.close()
        for server in reversed(servers):
            server.close()
        if cors_app is not None:
            with cors_app.app_context():
                db.engine.dispose()


# --- 2. The docs page, offline ---------------------------------------------------------


def test_docs_page_works_offline_under_its_csp(
    app: Flask, live_server: str, new_page: Callable[[], Page]
) -> None:
    require_browser()
    result = app.test_cli_runner().invoke(args=["token", "create", ALICE])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.count(".") == 2, token

    page = new_page()
    aborted: list[str] = []
    local: list[str] = []

    def offline(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            local.append(url)
            route.continue_()
        else:
            aborted.append(url)
            route.abort("internetdisconnected")

    page.context.route("**/*", offline)
    # CSP violations, from the browser's console and from the page's own event.
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    console_errors: list[str] = []
    page_errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    response = page.goto(live_server + "/docs", wait_until="load")
    assert response is not None and response.status == 200
    assert "script-src" in (response.headers.get("content-security-policy") or "")

    operations = page.locator(".opblock")
    # The task routes (the six, clear-completed and move), the six list routes, the feed.
    expect(operations).to_have_count(15, timeout=WAIT_MS)

    # Authorize with the token the dev command printed.
    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    expect(dialog).to_be_visible()
    dialog.locator(".auth-container input").first.fill(token)
    dialog.locator(".auth-btn-wrapper button.authorize").click()
    expect(dialog.locator(".auth-btn-wrapper button.authorize")).to_have_count(0)  # logged in
    dialog.locator("button.btn-done").click()
    expect(dialog).to_have_count(0)

    # List tasks: try it out for ALICE.
    list_tasks = page.locator(".opblock.opblock-get").filter(
        has=page.locator(".opblock-summary-description", has_text="List tasks")
    )
    expect(list_tasks).to_have_count(1)
    list_tasks.locator(".opblock-summary").first.click()
    list_tasks.locator(".try-out__btn").click()
    user_id = list_tasks.locator("tr[data-param-name='user_id'] input")
    user_id.fill(ALICE)
    list_tasks.locator("button.execute").click()
    live = list_tasks.locator(".live-responses-table .response .response-col_status")
    expect(live.first).to_have_text("200", timeout=WAIT_MS)
    expect(list_tasks.locator(".curl-command")).to_contain_text(
        "Authorization: Bearer", timeout=WAIT_MS
    )

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "docs.png"
    page.screenshot(path=str(shot), full_page=True, timeout=WAIT_MS)
    assert shot.stat().st_size > 0

    csp = page.evaluate("window.__csp")
    assert csp == [], csp
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
    assert page_errors == [], page_errors
    assert aborted == [], f"requests left the machine: {aborted}"
    assert any(url.endswith("/openapi.json") for url in local), local
    assert any("/static/swagger-ui/" in url for url in local), local
