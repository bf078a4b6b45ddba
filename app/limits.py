"""Rate limits: per client address before authentication, per user after it.

Built directly on ``limits``, the rate-limiting engine that Flask-Limiter runs on
(same maintainers, same storage backends and strategies). Flask-Limiter's request
middleware around it measured 150-250 us per request, 20-25 % of this API's
throughput (bench/README.md); these two checks cost one counter update each.

- The per-address limit is checked in ``before_request``, so unauthenticated
  floods (token guessing) are limited too. Health, readiness and metrics are exempt.
- The per-user limit is checked by ``auth_required`` right after the token is
  verified, keyed by the token's subject (a path's user id could be spoofed to use
  up someone else's budget).

Counts are kept in memory (per process) by default, in Redis when ``REDIS_URL`` is
set so that every worker and instance shares them. In memory, ``LocalWindows``
computes what limits' memory storage and strategy would, at a fraction of the cost.
If Redis goes away, the limits
fall back to memory (a warning is logged, at most every few seconds): requests keep
being served, never a 500.
"""

from __future__ import annotations

import logging
import threading
import time
from math import floor, inf
from typing import Any

import limits
from flask import Flask, Response, g, request
from flask_smorest import abort
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES, RateLimiter
from limits.util import WindowStats

EXTENSION_KEY = "tasks_rate_limits"
STRATEGY = "sliding-window-counter"
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_STORAGE_AFTER = 5.0  # seconds on the in-memory fallback before trying Redis again
log = logging.getLogger(__name__)


class LocalWindows:
    """Sliding-window counters in this process's memory: limits' ``MemoryStorage`` with
    its ``SlidingWindowCounterRateLimiter``, computed directly.

    The same arithmetic as limits 5.8 (tests/test_ops.py runs both side by side on one
    clock and compares every decision and reset time), without what a general storage
    needs: a string key per window built for each hit, a lock per key, a timer thread
    to expire keys (started every ~10 ms under load, each competing for the GIL). Each
    (limit, identifiers) has one entry: the current window's number, its count and the
    previous window's count. Entries two windows old are dropped, at most once a second,
    by the request that finds the sweep due. Two checks a request cost ~45 us through
    limits and ~8 us here (bench/README.md).
    """

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        # key -> [window number, count in it, count in the window before, window length]
        self._windows: dict[tuple[Any, ...], list[Any]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def _counts(self, key: tuple[Any, ...], expiry: int, now: float) -> list[Any]:
        """The entry for ``key``, moved on to the window ``now`` falls in."""
        window = int(now / expiry)
        entry = self._windows.get(key)
        if entry is None:
            entry = self._windows[key] = [window, 0, 0, expiry]
        elif entry[0] != window:
            entry[2] = entry[1] if entry[0] == window - 1 else 0
            entry[0], entry[1] = window, 0
        return entry

    @staticmethod
    def _previous_ttl(previous: int, expiry: int, now: float) -> float:
        return (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0

    def hit(self, item: limits.RateLimitItem, *identifiers: str) -> bool:
        expiry = item.get_expiry()
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            entry = self._counts((item, *identifiers), expiry, now)
            previous, current = entry[2], entry[1]
            weighted = previous * self._previous_ttl(previous, expiry, now) / expiry + current
            if floor(weighted) + 1 > item.amount:
                return False
            entry[1] = current + 1
            return True

    def get_window_stats(self, item: limits.RateLimitItem, *identifiers: str) -> WindowStats:
        expiry = item.get_expiry()
        now = time.time()
        with self._lock:
            entry = self._counts((item, *identifiers), expiry, now)
            previous, current = entry[2], entry[1]
        previous_ttl = self._previous_ttl(previous, expiry, now)
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        weighted = previous * previous_ttl / expiry + current
        remaining = max(0, item.amount - floor(weighted))
        if not (previous or current):
            return WindowStats(now, remaining)
        previous_reset_in = previous_ttl % (expiry / previous) if previous else inf
        current_reset_in = current_ttl % expiry if current else inf
        return WindowStats(now + min(previous_reset_in, current_reset_in), remaining)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_SECONDS
        stale = [
            key for key, (window, _, _, expiry) in self._windows.items()
            if int(now / expiry) - window >= 2
        ]
        for key in stale:
            del self._windows[key]


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
        self._strategy: RateLimiter | LocalWindows = (
            LocalWindows()
            if uri.startswith("memory://")
            else STRATEGIES[STRATEGY](storage_from_string(uri, **options))
        )
        self._fallback = LocalWindows()
        self._failed_at = float("-inf")
        self._warned_at = float("-inf")
        self._lock = threading.Lock()

    def _hit(
        self, item: limits.RateLimitItem, *key: str
    ) -> tuple[bool, RateLimiter | LocalWindows]:
        if time.monotonic() - self._failed_at >= RETRY_STORAGE_AFTER:
            try:
                return self._strategy.hit(item, *key), self._strategy
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
        allowed, strategy = self._hit(item, *key)
        g.rate_limit = item
        if allowed:
            return
        try:
            reset = strategy.get_window_stats(item, *key).reset_time
        except Exception:
            reset = time.time() + item.get_expiry()
        retry_after = max(1, int(reset - time.time()) + 1)
        abort(
            429,
            message=f"Too many requests: the limit is {item}; retry in {retry_after} s.",
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


def init_limits(app: Flask) -> RateLimits:
    rate_limits = RateLimits(app)
    app.extensions[EXTENSION_KEY] = rate_limits
    app.before_request(rate_limits.check_address)

    # The two limits' header values, worked out once.
    header_values = {
        id(item): (str(item.amount), f"{item.amount};w={item.get_expiry()}")
        for item in (rate_limits.per_user, rate_limits.per_address)
    }

    @app.after_request
    def limit_header(response: Response) -> Response:
        # The limit that applied (the user's once authenticated). Remaining/Reset would
        # cost another storage round trip per request; a refusal carries all of them.
        item = g.get("rate_limit")
        if item is not None and "RateLimit-Limit" not in response.headers:
            limit, policy = header_values[id(item)]
            response.headers.add("RateLimit-Limit", limit)
            response.headers.add("RateLimit-Policy", policy)
        return response

    return rate_limits
