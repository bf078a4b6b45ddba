"""Configuration: every setting is read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import limits

MIN_SECRET_LENGTH = 32
# RFC 7518 §3.2: an HMAC key at least as long as the hash output.
SECRET_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class ConfigError(RuntimeError):
    """The configuration cannot run safely; the message is one line for the operator."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name, "")
    items = [part.strip() for part in raw.split(",") if part.strip()]
    return items or list(default)


DEFAULT_JWKS_ALGORITHMS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"]
ASYMMETRIC_ALGORITHMS = {
    "EdDSA",
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
}


def origin(url: str) -> str:
    """``https://auth.example.com/base`` -> ``https://auth.example.com``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def normalize_database_url(url: str) -> str:
    """Accept Heroku/Neon-style ``postgres://`` URLs; SQLAlchemy wants ``postgresql://``."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables.

    Nothing here validates security settings: :func:`validate` does, after tests
    have had the chance to override values.
    """
    env = os.environ if env is None else env
    database_url = env.get("DATABASE_URL", "").strip()
    return {
        # None means "a SQLite file in the instance folder", resolved by the factory.
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url) if database_url else None,
        "BETTER_AUTH_SECRET": env.get("BETTER_AUTH_SECRET") or None,
        "JWT_ISSUER": env.get("JWT_ISSUER") or None,
        "JWT_AUDIENCE": env.get("JWT_AUDIENCE") or None,
        "JWT_SECRET_ALGORITHMS": _list(env, "JWT_SECRET_ALGORITHMS", ["HS256"]),
        "JWT_LEEWAY": _int(env, "JWT_LEEWAY", 30),
        "BETTER_AUTH_URL": (env.get("BETTER_AUTH_URL") or "").rstrip("/") or None,
        "BETTER_AUTH_JWKS_URL": env.get("BETTER_AUTH_JWKS_URL") or None,
        "JWT_JWKS_ALGORITHMS": _list(env, "JWT_JWKS_ALGORITHMS", DEFAULT_JWKS_ALGORITHMS),
        "JWKS_CACHE_SECONDS": _int(env, "JWKS_CACHE_SECONDS", 300),
        "JWKS_TIMEOUT_SECONDS": _int(env, "JWKS_TIMEOUT_SECONDS", 3),
        "JWKS_MIN_REFRESH_SECONDS": _int(env, "JWKS_MIN_REFRESH_SECONDS", 1),
        # No origin unless configured (the local quickstart's .env sets http://localhost:3000).
        "CORS_ORIGINS": _list(env, "CORS_ORIGINS", []),
        "CORS_MAX_AGE": _int(env, "CORS_MAX_AGE", 600),
        "DB_POOL_SIZE": _int(env, "DB_POOL_SIZE", 5),
        "DB_MAX_OVERFLOW": _int(env, "DB_MAX_OVERFLOW", 2),
        # libpq's connect_timeout has a 2 s floor: with PostgreSQL gone, 503 within ~2 s.
        "DB_CONNECT_TIMEOUT": _int(env, "DB_CONNECT_TIMEOUT", 2),
        "DB_STATEMENT_TIMEOUT_MS": _int(env, "DB_STATEMENT_TIMEOUT_MS", 5000),
        "REDIS_URL": env.get("REDIS_URL") or None,
        "RATELIMIT_ENABLED": _bool(env, "RATELIMIT_ENABLED", True),
        "RATE_LIMIT_PER_USER": env.get("RATE_LIMIT_PER_USER") or "300 per minute",
        "RATE_LIMIT_PER_ADDRESS": env.get("RATE_LIMIT_PER_ADDRESS") or "1200 per minute",
        "METRICS_ENABLED": _bool(env, "METRICS_ENABLED", True),
        "LOG_LEVEL": (env.get("LOG_LEVEL") or "INFO").upper(),
        "LOG_FORMAT": (env.get("LOG_FORMAT") or "json").lower(),
        # Number of proxies in front of the service whose X-Forwarded-For/-Proto to trust.
        "TRUSTED_PROXY_COUNT": _int(env, "TRUSTED_PROXY_COUNT", 0),
        # How long deleted tasks and lists are remembered for the changes feed; a cursor
        # older than that is a 410.
        "CHANGES_RETENTION_DAYS": _int(env, "CHANGES_RETENTION_DAYS", 30),
    }


def jwks_url(config: Mapping[str, Any]) -> str | None:
    if config.get("BETTER_AUTH_JWKS_URL"):
        return str(config["BETTER_AUTH_JWKS_URL"])
    if config.get("BETTER_AUTH_URL"):
        return f"{config['BETTER_AUTH_URL']}/api/auth/jwks"
    return None


def validate(config: Mapping[str, Any]) -> None:
    """Refuse to start unless tokens can be verified safely (fail closed)."""
    secret = config.get("BETTER_AUTH_SECRET")
    url = jwks_url(config)
    if not secret and not url:
        raise ConfigError(
            "no way to verify tokens is configured: set BETTER_AUTH_URL (or BETTER_AUTH_JWKS_URL) "
            f"for Better Auth's JWKS, and/or BETTER_AUTH_SECRET (at least {MIN_SECRET_LENGTH} "
            "characters)"
        )
    for name in ("BETTER_AUTH_URL", "BETTER_AUTH_JWKS_URL"):
        value = config.get(name)
        if value and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc
        ):
            raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    for alg in config["JWT_JWKS_ALGORITHMS"]:
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ConfigError(
                f"JWT_JWKS_ALGORITHMS may only list asymmetric algorithms, got {alg!r}"
            )
    for name in ("JWKS_CACHE_SECONDS", "JWKS_TIMEOUT_SECONDS", "JWKS_MIN_REFRESH_SECONDS"):
        if config[name] <= 0:
            raise ConfigError(f"{name} must be positive")
    for item in config["CORS_ORIGINS"]:
        if item == "*" or urlsplit(item).scheme not in ("http", "https") or urlsplit(item).path:
            raise ConfigError(
                f"CORS_ORIGINS entries must be origins like https://app.example.com, got {item!r}"
            )
    for name in ("RATE_LIMIT_PER_USER", "RATE_LIMIT_PER_ADDRESS"):
        try:
            limits.parse(config[name])
        except ValueError:
            raise ConfigError(
                f"{name} must look like '300 per minute', got {config[name]!r}"
            ) from None
    if config["LOG_FORMAT"] not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, got {config['LOG_FORMAT']!r}")
    if config["LOG_LEVEL"] not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL must be a logging level name, got {config['LOG_LEVEL']!r}")
    if config["JWT_LEEWAY"] < 0:
        raise ConfigError("JWT_LEEWAY must not be negative")
    if config["CHANGES_RETENTION_DAYS"] < 1:
        raise ConfigError("CHANGES_RETENTION_DAYS must be at least 1")
    if not secret:
        return
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"BETTER_AUTH_SECRET is {len(secret)} characters long; "
            f"at least {MIN_SECRET_LENGTH} are required"
        )
    for alg in config["JWT_SECRET_ALGORITHMS"]:
        if alg not in SECRET_MIN_BYTES:
            raise ConfigError(f"JWT_SECRET_ALGORITHMS may only list HS256/HS384/HS512, got {alg!r}")
        if len(secret.encode()) < SECRET_MIN_BYTES[alg]:
            raise ConfigError(
                f"{alg} needs a BETTER_AUTH_SECRET of at least {SECRET_MIN_BYTES[alg]} bytes"
            )
