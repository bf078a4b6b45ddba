"""Bearer-token authentication for Better Auth JWTs.

A :class:`TokenAuthority` is built once at start-up from the configuration. It
chooses the verifier from the *configured* methods by the algorithm family in
the token header (HS* -> shared secret; anything else -> JWKS, once that method
is configured), so a token can never pick its own key or algorithm.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from flask import current_app, g, request
from flask_smorest import abort

from .models import USER_ID_MAX

EXTENSION_KEY = "token_authority"
REALM = 'Bearer realm="tasks"'
MAX_TOKEN_LENGTH = 8192
# C0 controls, DEL and lone surrogates: nothing a user id or a stored claim may contain.
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class TokenError(Exception):
    """The token cannot be trusted; ``str(self)`` is safe to show the client."""


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    email: str | None = None
    name: str | None = None


class Verifier(Protocol):
    def verify(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]: ...


class SecretVerifier:
    """HS* tokens signed with the secret the frontend shares with this service."""

    def __init__(
        self,
        secret: str,
        *,
        algorithms: list[str],
        leeway: int,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._key = secret
        self._algorithms = list(algorithms)
        self._leeway = leeway
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]:
        return decode_with_policy(
            token,
            self._key,
            algorithms=self._algorithms,
            leeway=self._leeway,
            issuer=self._issuer,
            audience=self._audience,
        )


def decode_with_policy(
    token: str,
    key: Any,
    *,
    algorithms: list[str],
    leeway: int,
    issuer: str | None,
    audience: str | None,
) -> dict[str, Any]:
    """Verify signature and registered claims with the service's rules."""
    return jwt.decode(
        token,
        key,
        algorithms=algorithms,
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        options={
            "require": ["exp", "sub"],
            # `aud` is only checked when an audience is configured (contract: "when configured").
            "verify_aud": audience is not None,
        },
    )


class TokenAuthority:
    """Turns a bearer token into an :class:`Identity`, or raises :class:`TokenError`."""

    def __init__(self, *, secret: Verifier | None = None, jwks: Verifier | None = None) -> None:
        if secret is None and jwks is None:
            raise ValueError("at least one token verifier is required")
        self._secret = secret
        self._jwks = jwks

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TokenAuthority:
        secret = None
        if config.get("BETTER_AUTH_SECRET"):
            secret = SecretVerifier(
                config["BETTER_AUTH_SECRET"],
                algorithms=config["JWT_SECRET_ALGORITHMS"],
                leeway=config["JWT_LEEWAY"],
                issuer=config.get("JWT_ISSUER"),
                audience=config.get("JWT_AUDIENCE"),
            )
        return cls(secret=secret)

    def authenticate(self, token: str) -> Identity:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("The token is too long.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("The token is malformed.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenError("The token's algorithm is not accepted.")
        verifier = self._secret if alg.upper().startswith("HS") else self._jwks
        if verifier is None:
            raise TokenError("The token's algorithm is not accepted.")
        try:
            claims = verifier.verify(token, header)
        except jwt.ExpiredSignatureError:
            raise TokenError("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("The token is not valid yet.") from None
        except jwt.PyJWTError:
            raise TokenError("The token is invalid.") from None
        return _identity(claims)


def _clean_text(value: Any, max_length: int) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= max_length and not _BAD_TEXT.search(value):
        return value
    return None


def _identity(claims: Mapping[str, Any]) -> Identity:
    user_id = _clean_text(claims.get("sub"), USER_ID_MAX)
    if user_id is None:
        raise TokenError("The token's subject is not a valid user id.")
    return Identity(
        user_id=user_id,
        email=_clean_text(claims.get("email"), 320),
        name=_clean_text(claims.get("name"), 255),
    )


def _unauthorized(message: str, *, invalid: bool) -> None:
    challenge = REALM
    if invalid:
        # RFC 6750 §3: quoted-string values; our messages contain no quotes or backslashes.
        challenge += f', error="invalid_token", error_description="{message}"'
    abort(401, message=message, headers={"WWW-Authenticate": challenge})


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate the bearer token and require its user to own the ``user_id`` path.

    Runs before argument parsing and before any query, so an unauthenticated
    request learns nothing about its body or ids, and another user's path gets
    its 403 first.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        if token is None:
            _unauthorized("A bearer token is required.", invalid=False)
        authority: TokenAuthority = current_app.extensions[EXTENSION_KEY]
        try:
            identity = authority.authenticate(token)  # type: ignore[arg-type]
        except TokenError as exc:
            _unauthorized(str(exc), invalid=True)
        if identity.user_id != kwargs.get("user_id"):
            abort(403, message="The token does not grant access to this user's tasks.")
        g.identity = identity
        return view(*args, **kwargs)

    return wrapper


def create_token(
    secret: str,
    user_id: str,
    *,
    ttl: int = 3600,
    email: str | None = None,
    name: str | None = None,
    algorithm: str = "HS256",
) -> str:
    """Mint a shared-secret token, as a Better Auth frontend does (dev command, tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + ttl}
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=algorithm)
