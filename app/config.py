"""Configuration: every setting is read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

MIN_SECRET_LENGTH = 32


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


def _list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name, "")
    items = [part.strip() for part in raw.split(",") if part.strip()]
    return items or list(default)


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
        "DB_POOL_SIZE": _int(env, "DB_POOL_SIZE", 5),
        "DB_MAX_OVERFLOW": _int(env, "DB_MAX_OVERFLOW", 2),
        "DB_CONNECT_TIMEOUT": _int(env, "DB_CONNECT_TIMEOUT", 3),
        "DB_STATEMENT_TIMEOUT_MS": _int(env, "DB_STATEMENT_TIMEOUT_MS", 5000),
    }


def validate(config: Mapping[str, Any]) -> None:
    """Refuse to start unless tokens can be verified safely (fail closed)."""
    secret = config.get("BETTER_AUTH_SECRET")
    if not secret:
        raise ConfigError(
            "no way to verify tokens is configured: set BETTER_AUTH_SECRET "
            f"(at least {MIN_SECRET_LENGTH} characters)"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"BETTER_AUTH_SECRET is {len(secret)} characters long; "
            f"at least {MIN_SECRET_LENGTH} are required"
        )
    for alg in config["JWT_SECRET_ALGORITHMS"]:
        if alg not in ("HS256", "HS384", "HS512"):
            raise ConfigError(f"JWT_SECRET_ALGORITHMS may only list HS256/HS384/HS512, got {alg!r}")
    if config["JWT_LEEWAY"] < 0:
        raise ConfigError("JWT_LEEWAY must not be negative")
