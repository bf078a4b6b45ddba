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

Storage is in memory (per process) by default, Redis when ``REDIS_URL`` is set so
that every worker and instance shares the counts. The in-memory storage is limits'
own, except that it forgets expired counters inline, at most once a second, instead
of starting a timer thread every 10 ms under load (measured: ~160 us per request).
If Redis goes away, the limits
fall back to memory (a warning is logged, at most every few seconds): requests keep
being served, never a 500.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import limits
from flask import Flask, Response, g, request
from flask_smorest import abort
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

EXTENSION_KEY = "tasks_rate_limits"
STRATEGY = "sliding-window-counter"
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_STORAGE_AFTER = 5.0  # seconds on the in-memory fallback before trying Redis again
log = logging.getLogger(__name__)


class SweepingMemoryStorage(MemoryStorage):
    """limits' MemoryStorage, minus its expiry timer threads.

    The parent starts a ``threading.Timer`` (a new thread) to drop expired counters
    whenever the previous one has finished: under load, a thread every ~10 ms per
    process, competing for the GIL with the request threads. Counts are unaffected by
    when the sweep runs (reads check the expiry themselves); only memory is. Here the
    sweep runs in the request that finds it due, at most every SWEEP_SECONDS.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, **options: Any) -> None:
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()
        super().__init__(uri, **options)

    # MemoryStorage calls self.__schedule_expiry() on every write; this is that name.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()


def _storage(uri: str, **options: Any) -> Any:
    if uri.startswith("memory://"):
        return SweepingMemoryStorage(uri)
    return storage_from_string(uri, **options)


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
        self._strategy: RateLimiter = STRATEGIES[STRATEGY](_storage(uri, **options))
        self._fallback: RateLimiter = STRATEGIES[STRATEGY](SweepingMemoryStorage())
        self._failed_at = float("-inf")
        self._warned_at = float("-inf")
        self._lock = threading.Lock()

    def _hit(self, item: limits.RateLimitItem, *key: str) -> tuple[bool, RateLimiter]:
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
