"""Rate limits: per client address before authentication, per user after it.

- The per-address limit is a Flask-Limiter application limit, checked in
  ``before_request``, so unauthenticated floods (token guessing) are limited too.
- The per-user limit is checked by ``auth_required`` right after the token is
  verified, with the same storage, keyed by the token's subject (a path's user id
  could be spoofed to exhaust someone else's budget).

Storage is in memory (per process) by default, Redis when ``REDIS_URL`` is set so
that every worker and instance shares the counts. If Redis goes away, limits fall
back to memory (and that is logged): requests keep being served, never a 500.
"""

from __future__ import annotations

import logging
import time

import limits
from flask import Flask, g
from flask_limiter import HeaderNames, Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import abort
from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES

EXTENSION_KEY = "tasks_rate_limits"
STRATEGY = "sliding-window-counter"
HEADER_NAMES = {
    HeaderNames.LIMIT: "RateLimit-Limit",
    HeaderNames.REMAINING: "RateLimit-Remaining",
    HeaderNames.RESET: "RateLimit-Reset",
    HeaderNames.RETRY_AFTER: "Retry-After",
}
log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, app: Flask, exempt: list) -> None:  # type: ignore[type-arg]
        config = app.config
        self.enabled: bool = config["RATELIMIT_ENABLED"]
        storage_uri = config["REDIS_URL"] or "memory://"
        self.limiter = Limiter(
            get_remote_address,
            app=app,
            storage_uri=storage_uri,
            # Never let a slow or vanished Redis hold a request for long.
            storage_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
            if storage_uri.startswith("redis")
            else {},
            strategy=STRATEGY,
            application_limits=[config["RATE_LIMIT_PER_ADDRESS"]],
            headers_enabled=True,
            header_name_mapping=HEADER_NAMES,
            swallow_errors=True,
            in_memory_fallback_enabled=True,
            key_prefix="tasks-api",
            enabled=self.enabled,
        )
        for item in exempt:
            self.limiter.exempt(item)
        self.user_limit = limits.parse(config["RATE_LIMIT_PER_USER"])
        # Disabled, Flask-Limiter creates no storage; check_user then returns at once.
        storage = self.limiter.storage if self.enabled else MemoryStorage()
        self._strategy = STRATEGIES[STRATEGY](storage)
        self._fallback = STRATEGIES[STRATEGY](MemoryStorage())
        self._storage_failed_at = float("-inf")

    def check_user(self, user_id: str) -> None:
        """Count one request for ``user_id``; 429 in the contract's shape when over the limit."""
        if not self.enabled:
            return
        strategy = self._strategy
        if time.monotonic() - self._storage_failed_at < 5:
            strategy = self._fallback  # storage failed recently: do not wait on it again
        try:
            allowed = strategy.hit(self.user_limit, "user", user_id)
        except Exception as exc:  # storage unreachable: fail open, in memory
            self._storage_failed_at = time.monotonic()
            log.warning("rate-limit storage unreachable (%s); limiting in memory", type(exc).__name__)
            strategy = self._fallback
            allowed = strategy.hit(self.user_limit, "user", user_id)
        if allowed:
            return
        stats = strategy.get_window_stats(self.user_limit, "user", user_id)
        retry_after = max(1, int(stats.reset_time - time.time()) + 1)
        g.view_rate_limit = None  # the address limit's headers do not describe this refusal
        abort(
            429,
            message=f"Too many requests: the limit is {self.user_limit}; retry in {retry_after} s.",
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Limit": str(self.user_limit.amount),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry_after),
            },
        )


def init_limits(app: Flask, exempt: list) -> RateLimits:  # type: ignore[type-arg]
    # after_request functions run in reverse order of registration: registered before
    # the limiter's, this one runs after the limiter has added its headers.
    @app.after_request
    def reset_as_delta(response):  # type: ignore[no-untyped-def]
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)  # meaningless on a success
        reset = response.headers.get("RateLimit-Reset", "")
        if reset.isdigit() and int(reset) > 10**9:
            # IETF RateLimit-Reset is seconds until the reset, not an epoch time.
            response.headers["RateLimit-Reset"] = str(max(0, int(reset) - int(time.time())))
        return response

    rate_limits = RateLimits(app, exempt)
    app.extensions[EXTENSION_KEY] = rate_limits
    return rate_limits
