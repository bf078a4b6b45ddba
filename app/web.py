"""What browsers need: CORS for the frontend's origin, and security headers.

The API answers JSON only, so its Content-Security-Policy forbids everything; the
docs page gets only what Swagger UI needs: its own scripts and styles from this
service, its inline start-up script by hash, and data: images.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from urllib.parse import unquote

from flask import Flask, Response, request
from flask_cors import CORS

ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"]
EXPOSED_HEADERS = [
    "X-Pagination",
    "Link",
    "ETag",
    "Location",
    "X-Request-ID",
    "Retry-After",
    "WWW-Authenticate",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
API_CACHE_CONTROL = "private, no-cache"
# (lower-cased name, name, value): set unless the response already has the header.
SECURITY_HEADERS = tuple(
    (name.lower(), name, value)
    for name, value in (
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    )
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _docs_csp(html: bytes) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        # Swagger UI sets style attributes from JavaScript.
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


# The paths CORS applies to (flask-cors matches them at the start of the unquoted path).
CORS_RESOURCES = (r"/api/.*", r"/openapi\.json")
# Request headers flask-cors reads to decide its response headers, as WSGI environ keys.
CORS_INPUTS = (
    "HTTP_ORIGIN",
    "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK",
    "HTTP_ACCESS_CONTROL_REQUEST_METHOD",
    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
)
CORS_CACHE_SIZE = 512
CORS_CACHE_MAX_KEY = 1024  # characters of request headers; longer ones are not remembered


def _remember_cors_headers(
    cors_after_request: Callable[[Response], Response], response_class: type[Response]
) -> Callable[[Response], Response]:
    """flask-cors's after-request hook, remembering what it added per kind of request.

    flask-cors works its headers out afresh for every response (path and origin
    matching, a new MultiDict): ~40 us of a ~500 us request (bench/README.md). What it
    adds depends only on which resource the path falls under, the method and the
    CORS_INPUTS request headers, so the headers it added for one such combination are
    added again for the next. The first time, flask-cors itself works them out, on an
    empty response. A response that already carries Access-Control-Allow-Origin is left
    alone, as flask-cors does. tests/test_web.py checks the two give the same headers.
    """
    patterns = [re.compile(pattern) for pattern in CORS_RESOURCES]
    cache: dict[tuple[str | None, ...], list[tuple[str, str]]] = {}

    def cached_cors_after_request(response: Response) -> Response:
        if response.headers.get("Access-Control-Allow-Origin"):
            return response
        path = unquote(request.path)
        resource = next((str(i) for i, p in enumerate(patterns) if p.match(path)), None)
        if resource is None:
            return response
        environ = request.environ
        key = (resource, request.method, *(environ.get(name) for name in CORS_INPUTS))
        added = cache.get(key)
        if added is None:
            probe = response_class()
            before = len(probe.headers)
            cors_after_request(probe)
            added = list(probe.headers.items())[before:]
            if sum(len(part) for part in key if part) <= CORS_CACHE_MAX_KEY:
                if len(cache) >= CORS_CACHE_SIZE:
                    cache.clear()  # bounded: forgotten all at once when full
                cache[key] = added
        for name, value in added:
            response.headers.add(name, value)
        return response

    return cached_cors_after_request


def init_browser_support(app: Flask) -> None:
    origins = app.config["CORS_ORIGINS"]
    # No configured origin: no CORS headers at all, so browsers refuse cross-origin calls.
    CORS(
        app,
        resources={pattern: {} for pattern in CORS_RESOURCES},
        origins=origins,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        max_age=app.config["CORS_MAX_AGE"],
        supports_credentials=False,  # bearer tokens, never cookies
        vary_header=True,
    )
    # CORS() registered its hook last; the same hook, remembering its answers, replaces it.
    hooks = app.after_request_funcs.setdefault(None, [])
    if CORS_CACHE_SIZE and hooks and hooks[-1].__name__ == "cors_after_request":
        hooks[-1] = _remember_cors_headers(hooks[-1], app.response_class)
    docs_path = app.config["OPENAPI_SWAGGER_UI_PATH"]
    docs_csp_cache: dict[bytes, str] = {}

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Added in one pass over the headers (Headers.setdefault scans them per call).
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        for lower, name, value in SECURITY_HEADERS:
            if lower not in present:
                headers.add(name, value)
        path = request.path
        if path == docs_path and response.status_code == 200:
            html = response.get_data()
            if html not in docs_csp_cache:
                docs_csp_cache.clear()  # one page; keep the cache at one entry
                docs_csp_cache[html] = _docs_csp(html)
            headers["Content-Security-Policy"] = docs_csp_cache[html]
        elif "content-security-policy" not in present:
            headers.add("Content-Security-Policy", API_CSP)
        if path.startswith("/api/"):
            # Task data is one user's: never stored by shared caches, revalidated by the browser.
            if "cache-control" in present:
                headers["Cache-Control"] = API_CACHE_CONTROL
            else:
                headers.add("Cache-Control", API_CACHE_CONTROL)
        return response
