"""Bearer-token authentication for Better Auth JWTs.

A :class:`TokenAuthority` is built once at start-up from the configuration. It
chooses the verifier from the *configured* methods by the algorithm family in
the token header (HS* -> shared secret; anything else -> JWKS, once that method
is configured), so a token can never pick its own key or algorithm.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from flask import current_app, g, request
from flask_smorest import abort

from . import errors
from .config import jwks_url, origin
from .models import USER_ID_MAX

log = logging.getLogger(__name__)

EXTENSION_KEY = "token_authority"
REALM = 'Bearer realm="tasks"'
MAX_TOKEN_LENGTH = 8192
TOKEN_CACHE_SECONDS = 30.0
TOKEN_CACHE_SIZE = 10_000
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

    def stamp(self) -> object:
        """What a verification depended on (e.g. the key set), to recognise it later."""
        ...

    def still_trusted(self, stamp: object) -> bool:
        """Whether a verification made under ``stamp`` still holds."""
        ...


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

    def stamp(self) -> object:
        return None

    def still_trusted(self, stamp: object) -> bool:
        return True  # the secret does not change while the process runs

    def verify(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]:
        return decode_with_policy(
            token,
            self._key,
            algorithms=self._algorithms,
            leeway=self._leeway,
            issuer=self._issuer,
            audience=self._audience,
        )


# Which JWK a token's algorithm may be verified with: key type and, for EC, the curve.
KEY_TYPES: dict[str, tuple[str, set[str] | None]] = {
    "EdDSA": ("OKP", {"Ed25519", "Ed448"}),
    "ES256": ("EC", {"P-256"}),
    "ES384": ("EC", {"P-384"}),
    "ES512": ("EC", {"P-521"}),
    **{f"{p}{n}": ("RSA", None) for p in ("RS", "PS") for n in (256, 384, 512)},
}
MAX_JWKS_BYTES = 256 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a JWKS URL that redirects is an error, not a hint to follow


class JWKSCache:
    """The public keys of one JWKS URL, cached in this worker process.

    - Keys are refetched when the cache is older than ``lifespan`` or a token names
      an unknown ``kid``, but at most once every ``min_refresh`` seconds, so a flood
      of made-up kids cannot hammer the auth server.
    - A failed fetch keeps the keys already known (stale-if-error): tokens whose key
      is cached keep working while the auth server is down; others get a 401.
    - A fetch is bounded by ``timeout``; threads wait for an ongoing fetch at most
      that long, so no worker hangs on a slow auth server.
    """

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = 300,
        timeout: float = 3,
        min_refresh: float = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._lifespan = lifespan
        self._timeout = timeout
        self._min_refresh = min_refresh
        self._clock = clock
        self._keys: dict[str | None, tuple[jwt.PyJWK, dict[str, Any]]] = {}
        self._fetched_at: float | None = None
        self.generation = 0  # bumped by every successful fetch
        self._last_attempt = float("-inf")
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirect())

    def fresh(self) -> bool:
        """The key set was fetched less than ``lifespan`` ago."""
        fetched = self._fetched_at
        return fetched is not None and self._clock() - fetched < self._lifespan

    def get(self, kid: str | None) -> tuple[jwt.PyJWK, dict[str, Any]] | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._lifespan
        if stale or kid not in self._keys:
            self._refresh()
        keys = self._keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))  # a token without kid, a set with one key
        return keys.get(kid)

    def _refresh(self) -> None:
        if self._clock() - self._last_attempt < self._min_refresh:
            return
        if not self._lock.acquire(timeout=self._timeout):
            return
        try:
            if self._clock() - self._last_attempt < self._min_refresh:
                return  # another thread refreshed while this one waited
            self._last_attempt = self._clock()
            try:
                self._keys = self._fetch()
                self._fetched_at = self._clock()
                self.generation += 1
            except Exception as exc:  # network, HTTP, JSON or key errors alike
                log.warning(
                    "JWKS fetch from %s failed (%s); keeping %d cached key(s)",
                    self.url,
                    type(exc).__name__,
                    len(self._keys),
                )
        finally:
            self._lock.release()

    def _fetch(self) -> dict[str | None, tuple[jwt.PyJWK, dict[str, Any]]]:
        # `timeout` bounds each socket operation; the deadline bounds the whole fetch,
        # so a server trickling bytes cannot hold a worker (worst case about 2 x timeout).
        deadline = time.monotonic() + self._timeout
        req = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        body = bytearray()
        with self._opener.open(req, timeout=self._timeout) as resp:
            while chunk := resp.read1(16384):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS document too large")
                if time.monotonic() > deadline:
                    raise TimeoutError("JWKS fetch exceeded its deadline")
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document")
        keys: dict[str | None, tuple[jwt.PyJWK, dict[str, Any]]] = {}
        for data in document["keys"]:
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(data)  # PyJWT parses the key; unusable entries are skipped
            except jwt.PyJWTError:
                continue
            keys[data.get("kid") if isinstance(data.get("kid"), str) else None] = (key, data)
        if not keys:
            raise ValueError("JWKS document has no usable signing key")
        return keys


class JWKSVerifier:
    """Asymmetric tokens from Better Auth's ``jwt()`` plugin, verified with its JWKS."""

    def __init__(
        self,
        cache: JWKSCache,
        *,
        algorithms: list[str],
        leeway: int,
        issuer: str | None,
        audience: str | None,
    ) -> None:
        self.cache = cache
        self._algorithms = set(algorithms)
        self._leeway = leeway
        self._issuer = issuer
        self._audience = audience

    def stamp(self) -> object:
        return self.cache.generation

    def still_trusted(self, stamp: object) -> bool:
        # Re-verify once the key set changed or is due for a refresh, so a removed key
        # stops being accepted exactly when it would without the token cache.
        return stamp == self.cache.generation and self.cache.fresh()

    def verify(self, token: str, header: Mapping[str, Any]) -> dict[str, Any]:
        alg = header.get("alg")
        if alg not in self._algorithms or alg not in KEY_TYPES:
            raise jwt.InvalidAlgorithmError("algorithm not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise jwt.InvalidTokenError("bad kid")
        # jku, x5u, x5c and jwk headers are never consulted: keys come only from our JWKS URL.
        found = self.cache.get(kid)
        if found is None:
            raise UnknownKeyError("no key for this kid")
        key, data = found
        kty, curves = KEY_TYPES[alg]
        if data.get("kty") != kty or (curves is not None and data.get("crv") not in curves):
            raise jwt.InvalidAlgorithmError("key type does not match the algorithm")
        if data.get("alg") not in (None, alg):
            raise jwt.InvalidAlgorithmError("key is for another algorithm")
        return decode_with_policy(
            token,
            key.key,
            algorithms=[alg],
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
    claims = jwt.decode(
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
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        # RFC 7519 NumericDate: a JSON number. PyJWT would accept "1790000000" too.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise NotANumberError(name)
    return claims


class UnknownKeyError(jwt.InvalidTokenError):
    """No key of the JWKS has the token's kid."""


class NotANumberError(jwt.InvalidTokenError):
    """A time claim (exp, nbf, iat) that is not a JSON number."""

    def __init__(self, claim: str) -> None:
        super().__init__(claim)
        self.claim = claim


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            # ASCII only, no quotes: the message goes into WWW-Authenticate too.
            shown = f"{name.encode('ascii', 'replace').decode()!s:.40}"
            raise TokenError(errors.TOKEN_REPEATS_NAME.format(name=shown))
    return dict(pairs)


def reject_repeated_names(token: str) -> None:
    """RFC 8725 (3.x): a JWT whose header or claims repeat a name is refused. JSON parsers
    (PyJWT's included) keep the last value, so a signed token could say two things."""
    for part in token.split(".")[:2]:
        try:
            text = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            json.loads(text, object_pairs_hook=_unique_names)
        except (ValueError, RecursionError):
            continue  # malformed: PyJWT says so with its own error


class TokenAuthority:
    """Turns a bearer token into an :class:`Identity`, or raises :class:`TokenError`."""

    def __init__(
        self,
        *,
        secret: Verifier | None = None,
        jwks: Verifier | None = None,
        leeway: int = 0,
        cache_seconds: float = TOKEN_CACHE_SECONDS,
    ) -> None:
        if secret is None and jwks is None:
            raise ValueError("at least one token verifier is required")
        self._secret = secret
        self._jwks = jwks
        self._leeway = leeway
        self._cache_seconds = cache_seconds
        # Why: verifying a signature on every request was a large share of a request's
        # time (bench/README.md, "What we keep and why"), and a frontend sends the same
        # token for many requests. token -> (identity, trusted until, verifier, its
        # stamp), keyed by the whole token, so only bytes that passed full verification
        # match; an entry never outlives the token's exp (+ leeway), nor the key set it
        # was verified with.
        self._verified: dict[str, tuple[Identity, float, Verifier, object]] = {}

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
        jwks = None
        url = jwks_url(config)
        if url:
            default = origin(config["BETTER_AUTH_URL"]) if config.get("BETTER_AUTH_URL") else None
            jwks = JWKSVerifier(
                JWKSCache(
                    url,
                    lifespan=config["JWKS_CACHE_SECONDS"],
                    timeout=config["JWKS_TIMEOUT_SECONDS"],
                    min_refresh=config["JWKS_MIN_REFRESH_SECONDS"],
                ),
                algorithms=config["JWT_JWKS_ALGORITHMS"],
                leeway=config["JWT_LEEWAY"],
                # Better Auth sets iss and aud to its base URL's origin.
                issuer=config.get("JWT_ISSUER") or default,
                audience=config.get("JWT_AUDIENCE") or default,
            )
        # A verified token is trusted again without re-verification for at most this long,
        # never longer than JWKS keys are cached (so a removed key stops working on time).
        cache_seconds = min(TOKEN_CACHE_SECONDS, config["JWKS_CACHE_SECONDS"])
        return cls(
            secret=secret, jwks=jwks, leeway=config["JWT_LEEWAY"], cache_seconds=cache_seconds
        )

    def authenticate(self, token: str) -> Identity:
        cached = self._verified.get(token)
        if cached is not None:
            identity, until, verifier, stamp = cached
            if time.time() < until and verifier.still_trusted(stamp):
                return identity
            self._verified.pop(token, None)
        identity, exp, verifier, stamp = self._verify(token)
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            self._verified.clear()  # crude but bounded; refilled by the next requests
        until = min(exp + self._leeway, time.time() + self._cache_seconds)
        self._verified[token] = (identity, until, verifier, stamp)
        return identity

    def _verify(self, token: str) -> tuple[Identity, float, Verifier, object]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(errors.TOKEN_TOO_LONG)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError(errors.TOKEN_MALFORMED) from None
        reject_repeated_names(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenError(errors.TOKEN_ALG_MISSING)
        verifier = self._secret if alg.upper().startswith("HS") else self._jwks
        if verifier is None:
            method = "shared secret" if alg.upper().startswith("HS") else "JWKS"
            raise TokenError(errors.TOKEN_METHOD_NOT_CONFIGURED.format(method=method))
        stamp = verifier.stamp()
        try:
            claims = verifier.verify(token, header)
        except jwt.PyJWTError as exc:
            raise TokenError(_explain(exc)) from None
        return _identity(claims), float(claims["exp"]), verifier, stamp


# Why a token was refused, by PyJWT's exception (the first that matches).
EXPLANATIONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, errors.TOKEN_EXPIRED),
    (jwt.ImmatureSignatureError, errors.TOKEN_NOT_YET_VALID),
    (jwt.InvalidIssuerError, errors.TOKEN_WRONG_ISSUER),
    (jwt.InvalidAudienceError, errors.TOKEN_WRONG_AUDIENCE),
    (jwt.exceptions.InvalidSubjectError, errors.TOKEN_SUB_NOT_STRING),
    (jwt.InvalidSignatureError, errors.TOKEN_BAD_SIGNATURE),
    (UnknownKeyError, errors.TOKEN_UNKNOWN_KEY),
    (jwt.InvalidAlgorithmError, errors.TOKEN_ALG_NOT_FOR_KEY),
    (jwt.DecodeError, errors.TOKEN_MALFORMED),
)


def _explain(exc: jwt.PyJWTError) -> str:
    """Why a token was refused, in words that say the fix and reveal no key or secret."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return errors.TOKEN_MISSING_CLAIM.format(claim=exc.claim)
    if isinstance(exc, NotANumberError):
        return errors.TOKEN_NOT_A_NUMBER.format(claim=exc.claim)
    for kind, message in EXPLANATIONS:
        if isinstance(exc, kind):
            return message
    return errors.TOKEN_INVALID


def _clean_text(value: Any, max_length: int) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= max_length and not _BAD_TEXT.search(value):
        return value
    return None


def _identity(claims: Mapping[str, Any]) -> Identity:
    user_id = _clean_text(claims.get("sub"), USER_ID_MAX)
    if user_id is None:
        raise TokenError(errors.TOKEN_BAD_SUB)
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


def bearer_token() -> str:
    """The token of ``Authorization: Bearer <token>``; 401 saying what is wrong otherwise."""
    header = request.headers.get("Authorization")
    if header is None:
        _unauthorized(errors.NO_TOKEN, invalid=False)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        _unauthorized(errors.NOT_BEARER, invalid=False)
    if not token.strip():
        _unauthorized(errors.EMPTY_BEARER, invalid=False)
    return token.strip()


def auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate the bearer token and require its user to own the ``user_id`` path.

    Runs before argument parsing and before any query, so an unauthenticated
    request learns nothing about its body or ids, and another user's path gets
    its 403 first. The user's rate limit is charged by the route (``limits.per_user``),
    right after this.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        authority: TokenAuthority = current_app.extensions[EXTENSION_KEY]
        try:
            identity = authority.authenticate(token)
        except TokenError as exc:
            _unauthorized(str(exc), invalid=True)
        g.identity = identity
        if identity.user_id != kwargs.get("user_id"):
            abort(403, message=errors.FORBIDDEN)
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
