"""What browsers need: CORS for the frontend's origin, and security headers.

The API answers JSON only, so its Content-Security-Policy forbids everything; the
docs page gets only what Swagger UI needs: its own scripts and styles from this
service, its inline start-up script by hash, and data: images.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re

from flask import Flask, Response, request
from flask_cors import CORS

log = logging.getLogger(__name__)

ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"]
EXPOSED_HEADERS = [
    "X-Pagination",
    "Link",
    "ETag",
    "Idempotent-Replayed",
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
# Set unless the response already has the header.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
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


# The paths CORS applies to (flask-cors matches them against the request path).
CORS_RESOURCES = (r"/api/.*", r"/openapi\.json")


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
    docs_path = app.config["OPENAPI_SWAGGER_UI_PATH"]
    allowed_origins = set(origins)
    cors_paths = [re.compile(pattern) for pattern in CORS_RESOURCES]

    @app.after_request
    def log_refused_origin(response: Response) -> Response:
        # A browser on another origin sees only a CORS error; the operator sees why here.
        origin = request.headers.get("Origin")
        if (
            origin
            and origin not in allowed_origins
            and origin != request.host_url.rstrip("/")  # same origin: no CORS needed
            and any(path.match(request.path) for path in cors_paths)
        ):
            log.warning(
                "CORS: refused origin %.200s; CORS_ORIGINS allows %s",
                origin,
                ", ".join(sorted(allowed_origins)) or "no origin",
            )
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        if request.path == docs_path and response.status_code == 200:
            headers["Content-Security-Policy"] = _docs_csp(response.get_data())
        else:
            headers.setdefault("Content-Security-Policy", API_CSP)
        if request.path.startswith("/api/"):
            # Task data is one user's: never stored by shared caches, revalidated by the browser.
            headers["Cache-Control"] = API_CACHE_CONTROL
        return response
