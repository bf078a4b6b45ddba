"""Rate limits: per client address before authentication, per user after it.

Built on ``limits``, the engine Flask-Limiter runs on (same maintainers, same storages
and strategies): its sliding-window-counter strategy over its memory storage (per
process), or its Redis storage when ``REDIS_URL`` is set, shared by every worker and
instance. Why not Flask-Limiter itself: its request middleware cost a large share of the
API's throughput (bench/README.md, "What we keep and why").

- The per-address limit is checked in ``before_request``, so unauthenticated floods
  (token guessing) are limited too. Health, readiness and metrics are exempt.
- The per-user limit is charged by each route (the ``per_user`` decorator, right under
  ``auth_required``), keyed by the token's subject (a path's user id could be spoofed to
  use up someone else's budget).

If Redis goes away, the limits fall back to memory for a few seconds at a time (a
warning is logged): requests keep being served, never a 500.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import limits
from flask import Flask, Response, current_app, g, request
from flask_smorest import abort
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from . import errors

EXTENSION_KEY = "tasks_rate_limits"
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_STORAGE_AFTER = 5.0  # seconds on the in-memory fallback before trying Redis again
log = logging.getLogger(__name__)


def client_address() -> str:
    # With TRUSTED_PROXY_COUNT, ProxyFix has already put the forwarded client here.
    return request.remote_addr or "unknown"


class RateLimits:
    def __init__(self, app: Flask) -> None:
        config = app.config
        self.enabled: bool = config["RATELIMIT_ENABLED"]
        self.per_user = limits.parse(config["RATE_LIMIT_PER_USER"])
        self.per_address = limits.parse(config["RATE_LIMIT_PER_ADDRESS"])
        uri = config["REDIS_URL"] or "memory://"
        options: dict[str, Any] = {}
        if uri.startswith(("redis://", "rediss://")):
            # Never let a slow or vanished Redis hold a request for long.
            options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(uri, **options))
        self._fallback = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._failed_at = float("-inf")
        self._warned_at = float("-inf")
        self._lock = threading.Lock()

    def _hit(self, item: limits.RateLimitItem, *key: str) -> tuple[bool, Any]:
        if time.monotonic() - self._failed_at >= RETRY_STORAGE_AFTER:
            try:
                return self._limiter.hit(item, *key), self._limiter
            except Exception as exc:  # storage unreachable: fail open, in memory
                self._storage_failed(exc)
        return self._fallback.hit(item, *key), self._fallback

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._failed_at = now
            if now - self._warned_at < RETRY_STORAGE_AFTER:
                return
            self._warned_at = now
        # The exception's class only: a storage URL (with its password) never reaches a log.
        log.warning(
            "rate-limit storage unreachable (%s); limiting in memory for %.0f s",
            type(exc).__name__,
            RETRY_STORAGE_AFTER,
        )

    def _check(self, item: limits.RateLimitItem, *key: str) -> None:
        allowed, limiter = self._hit(item, *key)
        g.rate_limit = item
        if allowed:
            return
        try:
            reset = limiter.get_window_stats(item, *key).reset_time
        except Exception:
            reset = time.time() + item.get_expiry()
        retry_after = max(1, int(reset - time.time()) + 1)
        abort(
            429,
            message=errors.TOO_MANY_REQUESTS.format(limit=item, seconds=retry_after),
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Limit": str(item.amount),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry_after),
            },
        )

    def check_address(self) -> None:
        if self.enabled and request.path not in EXEMPT_PATHS:
            self._check(self.per_address, "addr", client_address())

    def check_user(self, user_id: str) -> None:
        """Count one request for ``user_id``; 429 in the contract's shape over the limit."""
        if self.enabled:
            self._check(self.per_user, "user", user_id)


def per_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """Charge the authenticated user's rate limit (``g.identity``, set by ``auth_required``,
    which this decorator must follow); 429 over it."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_app.extensions[EXTENSION_KEY].check_user(g.identity.user_id)
        return view(*args, **kwargs)

    return wrapper


def init_limits(app: Flask) -> RateLimits:
    rate_limits = RateLimits(app)
    app.extensions[EXTENSION_KEY] = rate_limits
    app.before_request(rate_limits.check_address)

    @app.after_request
    def limit_header(response: Response) -> Response:
        # The limit that applied (the user's once authenticated). Remaining/Reset would
        # cost another storage round trip per request; a refusal carries all of them.
        item = g.get("rate_limit")
        if item is not None:
            response.headers.setdefault("RateLimit-Limit", str(item.amount))
            response.headers.setdefault("RateLimit-Policy", f"{item.amount};w={item.get_expiry()}")
        return response

    return rate_limits
