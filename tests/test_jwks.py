"""Authentication with Better Auth's ``jwt()`` plugin: asymmetric tokens checked against a JWKS.

Contract: docs/api.md, "Authentication" and "Errors".

A real HTTP server started by the tests (``ThreadingHTTPServer`` on a free loopback port)
plays the Better Auth server: it publishes the key set at ``/api/auth/jwks`` the way Better
Auth does (``alg``, ``crv``, the public key and ``kid``), and can be switched to fail, hang,
redirect or answer garbage, counting every request. Tokens are signed with real Ed25519,
P-256, P-521 and RSA keys; the forged ones are built by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from conftest import ALICE, BOB, TEST_SECRET, make_app, stored_user
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from flask import Flask
from support import DROP, assert_invalid_token, b64url, bearer, with_claims

from app.auth import (
    EXTENSION_KEY,
    JWKSCache,
    JWKSVerifier,
    TokenAuthority,
    TokenError,
    create_token,
)
from app.config import DEFAULT_JWKS_ALGORITHMS, ConfigError

JWKS_PATH = "/api/auth/jwks"
LEEWAY = 30  # the documented default
SLOW_SECONDS = 5.0  # how long a "slow" JWKS server hangs before answering
FAST_ENOUGH = 3.0  # a request while the JWKS server misbehaves must finish within this
TRICKLE_BYTES = 11  # "trickle": the first bytes of the body 0.35 s apart, ~3.9 s in all


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Key:
    kid: str
    alg: str
    private: Any

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self, kid: str | None = None) -> dict[str, Any]:
        """The public JWK as Better Auth publishes it: ``alg``, the key fields and ``kid``."""
        if self.alg == "EdDSA":
            data = jwt.algorithms.OKPAlgorithm.to_jwk(self.public, as_dict=True)
        elif self.alg.startswith("ES"):
            data = jwt.algorithms.ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            data = jwt.algorithms.RSAAlgorithm.to_jwk(self.public, as_dict=True)
        return {"alg": self.alg, **data, "kid": kid or self.kid}

    def sign(self, payload: dict[str, Any], *, alg: str | None = None, **header: Any) -> str:
        """A token as Better Auth's jwt() plugin makes it: ``alg`` and ``kid``, no ``typ``."""
        headers: dict[str, Any] = {"kid": self.kid, "typ": None}
        headers.update(header)
        return jwt.encode(payload, self.private, algorithm=alg or self.alg, headers=headers)


ED = Key("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())
ED_NEW = Key("ed-2", "EdDSA", ed25519.Ed25519PrivateKey.generate())
P256 = Key("p256-1", "ES256", ec.generate_private_key(ec.SECP256R1()))
P521 = Key("p521-1", "ES512", ec.generate_private_key(ec.SECP521R1()))
RSA_RS = Key("rsa-rs256", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
RSA_PS = Key("rsa-ps256", "PS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))
PUBLISHED = [ED, P256, P521, RSA_RS, RSA_PS]

# The attacker's keys: never published by the legitimate server.
EVIL_ED = Key("attacker-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())
EVIL_P256 = Key("attacker-2", "ES256", ec.generate_private_key(ec.SECP256R1()))


def forge(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS with any header, signed by ``sign`` over the signing input (no checks)."""
    signing_input = b64url(json.dumps(header)) + "." + b64url(json.dumps(payload))
    return signing_input + "." + b64url(sign(signing_input.encode()))


def es_raw_signature(private: ec.EllipticCurvePrivateKey, message: bytes, digest: Any) -> bytes:
    r, s = decode_dss_signature(private.sign(message, ec.ECDSA(digest)))
    size = (private.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


# --------------------------------------------------------------------------- the JWKS server


@dataclass
class JWKSServer:
    """A switchable stand-in for Better Auth's JWKS endpoint, counting requests.

    ``mode``: "ok" (the key set), "500", "slow" (silent for SLOW_SECONDS, then the key set),
    "trickle" (the key set a byte at a time), "not json", "json without keys",
    "empty key list", "keys not a list", "oversized" (the key set padded to 300 KiB) or
    "redirect" (302 to ``redirect_to``). ``stop()`` makes connections refused.
    """

    keys: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"
    redirect_to: str = ""
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self._stopped = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout): nothing to do

            def do_GET(self) -> None:  # noqa: N802
                server.paths.append(self.path)
                server.headers.append(dict(self.headers.items()))
                mode = server.mode
                good = json.dumps({"keys": server.keys}).encode()
                if mode == "ok":
                    self._send(200, good)
                elif mode == "500":
                    self._send(500, b'{"error": "internal"}')
                elif mode == "slow":
                    server._release.wait(SLOW_SECONDS)  # then a perfectly good answer, too late
                    self._send(200, good)
                elif mode == "trickle":  # answers at once, then one byte every 0.35 s
                    try:
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(good)))
                        self.end_headers()
                        for i in range(TRICKLE_BYTES):
                            self.wfile.write(good[i : i + 1])
                            self.wfile.flush()
                            if server._release.wait(0.35):
                                break
                        self.wfile.write(good[TRICKLE_BYTES:])
                    except OSError:
                        pass
                elif mode == "not json":
                    self._send(200, b"<html><body>Bad gateway</body></html>")
                elif mode == "json without keys":
                    self._send(200, b'{"status": "ok"}')
                elif mode == "empty key list":
                    self._send(200, b'{"keys": []}')
                elif mode == "keys not a list":
                    self._send(200, b'{"keys": {"kid": "ed-1"}}')
                elif mode == "oversized":  # valid keys, but a 300 KiB document
                    padded = {"keys": server.keys, "pad": "x" * 300_000}
                    self._send(200, json.dumps(padded).encode())
                elif mode == "redirect":
                    try:
                        self.send_response(302)
                        self.send_header("Location", server.redirect_to)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    except OSError:
                        pass
                else:  # pragma: no cover - a typo in a test
                    raise AssertionError(mode)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return self.base + JWKS_PATH

    @property
    def requests(self) -> int:
        return len(self.paths)

    def publish(self, *keys: Key) -> None:
        self.keys = [key.jwk() for key in keys]

    def stop(self) -> None:
        """Close the listening socket: from now on, connections are refused."""
        if self._stopped:
            return
        self._stopped = True
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def servers() -> Iterator[Callable[[], JWKSServer]]:
    started: list[JWKSServer] = []

    def start() -> JWKSServer:
        server = JWKSServer()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def jwks(servers: Callable[[], JWKSServer]) -> JWKSServer:
    """The Better Auth server, publishing every key in PUBLISHED."""
    server = servers()
    server.publish(*PUBLISHED)
    return server


@pytest.fixture
def attacker(servers: Callable[[], JWKSServer]) -> JWKSServer:
    """The attacker's JWKS server: publishes the attacker's key, also under known kids."""
    server = servers()
    server.keys = [EVIL_ED.jwk(), EVIL_ED.jwk("ed-1"), EVIL_P256.jwk(), EVIL_P256.jwk("p256-1")]
    return server


# --------------------------------------------------------------------------- apps and requests


@pytest.fixture
def build(extra_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """Apps on the migrated test database, with short JWKS timings unless overridden;
    ``server`` sets BETTER_AUTH_URL to its base."""

    def make(server: JWKSServer | None = None, **overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "JWKS_TIMEOUT_SECONDS": 1,
            "JWKS_MIN_REFRESH_SECONDS": 5,
            "JWKS_CACHE_SECONDS": 300,
        }
        if server is not None:
            config["BETTER_AUTH_URL"] = server.base
        config.update(overrides)
        return extra_app(**config)

    return make


def claims(origin: str | None, user_id: Any = ALICE, /, **overrides: Any) -> dict[str, Any]:
    """What Better Auth puts in its tokens: sub, iss and aud (its origin), iat, exp, email, name."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + 900,
        "email": "alice@example.com",
        "name": "Alice",
    }
    if origin is not None:
        payload["iss"] = origin
        payload["aud"] = origin
    return with_claims(payload, overrides)


def get_tasks(app: Flask, token: str, user_id: str = ALICE) -> Any:
    return app.test_client().get(f"/api/{user_id}/tasks", headers=bearer(token))


def timed_get(app: Flask, token: str) -> tuple[Any, float]:
    start = time.monotonic()
    resp = get_tasks(app, token)
    return resp, time.monotonic() - start


def assert_ok(resp: Any) -> None:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == []


# --------------------------------------------------------------------------- the five algorithms


@pytest.mark.parametrize("key", PUBLISHED, ids=[k.alg for k in PUBLISHED])
def test_better_auth_token_verifies(
    build: Callable[..., Flask], jwks: JWKSServer, key: Key
) -> None:
    app = build(jwks)
    token = key.sign(claims(jwks.base))
    assert "typ" not in jwt.get_unverified_header(token)  # as Better Auth signs
    assert_ok(get_tasks(app, token))
    assert jwks.paths == [JWKS_PATH]  # BETTER_AUTH_URL + /api/auth/jwks, fetched once
    assert not {"authorization", "cookie"} & {h.lower() for h in jwks.headers[0]}  # no token sent
    assert_ok(get_tasks(app, key.sign(claims(jwks.base))))
    assert jwks.requests == 1  # the second token is served from the cache


def test_default_jwks_algorithms_are_the_documented_five() -> None:
    assert sorted(DEFAULT_JWKS_ALGORITHMS) == sorted(["EdDSA", "ES256", "ES512", "RS256", "PS256"])


def test_jwks_token_for_another_users_path_is_403(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    app = build(jwks)
    resp = get_tasks(app, ED.sign(claims(jwks.base, BOB)), user_id=ALICE)
    assert resp.status_code == 403
    assert resp.get_json()["code"] == 403


def test_better_auth_url_with_a_path(build: Callable[..., Flask], jwks: JWKSServer) -> None:
    """The JWKS lives under the base URL's path; iss and aud are its origin only."""
    app = build(jwks, BETTER_AUTH_URL=jwks.base + "/auth")
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))
    assert jwks.paths == ["/auth" + JWKS_PATH]
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base + "/auth"))))


def test_explicit_jwks_url_is_used(build: Callable[..., Flask], jwks: JWKSServer) -> None:
    app = build(jwks, BETTER_AUTH_JWKS_URL=jwks.base + "/custom/keys.json")
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))
    assert jwks.paths == ["/custom/keys.json"]


# --------------------------------------------------------------------------- iss and aud


ELSEWHERE = "https://evil.example.com"


@pytest.mark.parametrize(
    ("make_claims", "expected"),
    [
        pytest.param(lambda o: claims(o), 200, id="iss and aud the origin"),
        pytest.param(
            lambda o: claims(o, aud=[o, "https://other.example"]), 200, id="aud list with it"
        ),
        pytest.param(lambda o: claims(o, iss=ELSEWHERE), 401, id="wrong iss"),
        pytest.param(lambda o: claims(o, aud=ELSEWHERE), 401, id="wrong aud"),
        pytest.param(lambda o: claims(o, aud=[ELSEWHERE]), 401, id="aud list without it"),
        pytest.param(lambda o: claims(o, aud=DROP), 401, id="missing aud"),
        pytest.param(lambda o: claims(o, iss=DROP), 401, id="missing iss"),
        pytest.param(lambda o: claims(None), 401, id="neither iss nor aud"),
        pytest.param(lambda o: claims(o, iss=o + "/"), 401, id="iss with trailing slash"),
        pytest.param(lambda o: claims(o, iss=o.replace("http:", "https:")), 401, id="iss https"),
    ],
)
def test_iss_and_aud_default_to_the_origin(
    build: Callable[..., Flask],
    jwks: JWKSServer,
    make_claims: Callable[[str], dict[str, Any]],
    expected: int,
) -> None:
    app = build(jwks)
    resp = get_tasks(app, ED.sign(make_claims(jwks.base)))
    if expected == 200:
        assert_ok(resp)
    else:
        assert_invalid_token(resp)


def test_issuer_and_audience_overrides_are_honoured(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    iss, aud = "https://auth.example.com", "https://api.example.com"
    app = build(jwks, JWT_ISSUER=iss, JWT_AUDIENCE=aud)
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base, iss=iss, aud=aud))))
    # The origin is no longer it; with only one of them changed, the other is still the origin.
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base))))
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base, iss=iss))))
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base, aud=aud))))
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base, iss=iss, aud=DROP))))


@pytest.mark.parametrize(
    ("setting", "claim", "other"),
    [("JWT_AUDIENCE", "aud", "iss"), ("JWT_ISSUER", "iss", "aud")],
    ids=["audience alone keeps the default issuer", "issuer alone keeps the default audience"],
)
def test_one_override_alone_keeps_the_other_default(
    build: Callable[..., Flask], jwks: JWKSServer, setting: str, claim: str, other: str
) -> None:
    value = {"aud": "https://api.example.com", "iss": "https://auth.example.com"}[claim]
    app = build(jwks, **{setting: value})
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base, **{claim: value}))))
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base))))
    assert_invalid_token(
        get_tasks(app, ED.sign(claims(jwks.base, **{claim: value, other: ELSEWHERE})))
    )


# --------------------------------------------------------------------------- algorithm confusion


def _rsa_pem(fmt: serialization.PublicFormat) -> bytes:
    return RSA_RS.public.public_bytes(serialization.Encoding.PEM, fmt)


@pytest.mark.parametrize("with_secret", [True, False], ids=["secret configured", "jwks only"])
@pytest.mark.parametrize(
    "hmac_key",
    [
        pytest.param(_rsa_pem(serialization.PublicFormat.SubjectPublicKeyInfo), id="spki pem"),
        pytest.param(_rsa_pem(serialization.PublicFormat.PKCS1), id="pkcs1 pem"),
        pytest.param(json.dumps(RSA_RS.jwk()).encode(), id="jwk json"),
    ],
)
def test_hs256_signed_with_the_rsa_public_key_is_401(
    build: Callable[..., Flask], jwks: JWKSServer, with_secret: bool, hmac_key: bytes
) -> None:
    app = build(jwks, BETTER_AUTH_SECRET=TEST_SECRET if with_secret else None)
    header = {"alg": "HS256", "typ": "JWT", "kid": RSA_RS.kid}
    token = forge(
        header, claims(jwks.base), lambda m: hmac.new(hmac_key, m, hashlib.sha256).digest()
    )
    assert_invalid_token(get_tasks(app, token))
    # the app still works for the genuine RS256 token
    assert_ok(get_tasks(app, RSA_RS.sign(claims(jwks.base))))


def _es256_claiming(alg: str, kid: str) -> Callable[[str], str]:
    return lambda origin: forge(
        {"alg": alg, "kid": kid},
        claims(origin),
        lambda m: es_raw_signature(P256.private, m, hashes.SHA256()),
    )


CONFUSED: dict[str, Callable[[str], str]] = {
    "ES256-signed, claims RS256, EC kid": _es256_claiming("RS256", P256.kid),
    "ES256-signed, claims RS256, RSA kid": _es256_claiming("RS256", RSA_RS.kid),
    "ES256-signed, claims PS256, RSA kid": _es256_claiming("PS256", RSA_PS.kid),
    "ES256-signed, claims EdDSA, EC kid": _es256_claiming("EdDSA", P256.kid),
    "EdDSA-signed, claims ES256, Ed25519 kid": lambda origin: forge(
        {"alg": "ES256", "kid": ED.kid}, claims(origin), ED.private.sign
    ),
    "ES512 claimed, P-256 key and kid, SHA-512": lambda origin: forge(
        {"alg": "ES512", "kid": P256.kid},
        claims(origin),
        lambda m: es_raw_signature(P256.private, m, hashes.SHA512()),
    ),
    "PS256 token for a key published as RS256": lambda origin: RSA_RS.sign(
        claims(origin), alg="PS256"
    ),
    "RS256 token for a key published as PS256": lambda origin: RSA_PS.sign(
        claims(origin), alg="RS256"
    ),
    "ES384 (not allowed) claimed for the P-256 kid": lambda origin: forge(
        {"alg": "ES384", "kid": P256.kid},
        claims(origin),
        lambda m: es_raw_signature(P256.private, m, hashes.SHA384()),
    ),
}


@pytest.mark.parametrize("case", list(CONFUSED), ids=list(CONFUSED))
def test_signature_algorithm_confusion_is_401(
    build: Callable[..., Flask], jwks: JWKSServer, case: str
) -> None:
    app = build(jwks)
    assert_invalid_token(get_tasks(app, CONFUSED[case](jwks.base)))


@pytest.mark.parametrize(
    "kid", ["ed-1", "attacker-1", None], ids=["known kid", "own kid", "no kid"]
)
def test_embedded_jwk_header_is_ignored(
    build: Callable[..., Flask], jwks: JWKSServer, kid: str | None
) -> None:
    app = build(jwks)
    header: dict[str, Any] = {"jwk": EVIL_ED.jwk(kid or EVIL_ED.kid), "kid": kid}
    if kid is None:
        header = {"jwk": EVIL_ED.jwk()}
        token = jwt.encode(claims(jwks.base), EVIL_ED.private, algorithm="EdDSA", headers=header)
    else:
        token = EVIL_ED.sign(claims(jwks.base), **header)
    assert jwt.get_unverified_header(token)["jwk"]["x"] == EVIL_ED.jwk()["x"]
    assert_invalid_token(get_tasks(app, token))


@pytest.mark.parametrize("header_name", ["jku", "x5u"])
@pytest.mark.parametrize("kid", ["attacker-1", "ed-1"])
def test_jku_and_x5u_headers_are_never_fetched(
    build: Callable[..., Flask],
    jwks: JWKSServer,
    attacker: JWKSServer,
    header_name: str,
    kid: str,
) -> None:
    app = build(jwks)
    token = EVIL_ED.sign(claims(jwks.base), kid=kid, **{header_name: attacker.jwks_url})
    assert_invalid_token(get_tasks(app, token))
    assert attacker.requests == 0
    assert all(path == JWKS_PATH for path in jwks.paths)


def test_redirecting_jwks_url_is_not_followed(
    build: Callable[..., Flask], jwks: JWKSServer, attacker: JWKSServer
) -> None:
    jwks.mode = "redirect"
    jwks.redirect_to = attacker.jwks_url
    app = build(jwks)
    assert_invalid_token(get_tasks(app, EVIL_ED.sign(claims(jwks.base), kid="ed-1")))
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base))))  # no keys were loaded at all
    assert jwks.requests == 1
    assert attacker.requests == 0


@pytest.mark.parametrize("with_secret", [True, False], ids=["secret configured", "jwks only"])
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_401(
    build: Callable[..., Flask], jwks: JWKSServer, with_secret: bool, alg: str
) -> None:
    app = build(jwks, BETTER_AUTH_SECRET=TEST_SECRET if with_secret else None)
    payload = b64url(json.dumps(claims(jwks.base)))
    for header in ({"alg": alg}, {"alg": alg, "kid": ED.kid}):
        unsigned = b64url(json.dumps(header)) + "." + payload + "."
        assert_invalid_token(get_tasks(app, unsigned))
    # a real signature under an alg none header does not help either
    real = ED.sign(claims(jwks.base)).split(".")[2]
    token = b64url(json.dumps({"alg": alg, "kid": ED.kid})) + "." + payload + "." + real
    assert_invalid_token(get_tasks(app, token))


# --------------------------------------------------------------------------- the bad-token matrix


def _now() -> int:
    return int(time.time())


def _tampered(origin: str) -> str:
    head, payload, sig = ED.sign(claims(origin)).split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[0] ^= 1
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def _swapped_payload(origin: str) -> str:
    head, _, sig = ED.sign(claims(origin, BOB)).split(".")
    return f"{head}.{b64url(json.dumps(claims(origin)))}.{sig}"


BAD_TOKENS: dict[str, Callable[[str], str]] = {
    "missing exp": lambda o: ED.sign(claims(o, exp=DROP)),
    "exp null": lambda o: ED.sign(claims(o, exp=None)),
    "exp not a number": lambda o: ED.sign(claims(o, exp="tomorrow")),
    "missing sub": lambda o: ED.sign(claims(o, sub=DROP)),
    "sub integer": lambda o: ED.sign(claims(o, 12345)),
    "sub null": lambda o: ED.sign(claims(o, None)),
    "sub list": lambda o: ED.sign(claims(o, [ALICE])),
    "sub empty": lambda o: ED.sign(claims(o, "")),
    "sub with a NUL": lambda o: ED.sign(claims(o, ALICE + "\x00")),
    "expired beyond leeway": lambda o: ED.sign(
        claims(o, iat=_now() - 3600, exp=_now() - LEEWAY - 60)
    ),
    "nbf in the future": lambda o: ED.sign(claims(o, nbf=_now() + LEEWAY + 60)),
    "iat in the future": lambda o: ED.sign(claims(o, iat=_now() + LEEWAY + 60)),
    "unknown kid": lambda o: ED.sign(claims(o), kid="no-such-kid"),
    "no kid (several keys published)": lambda o: jwt.encode(
        claims(o), ED.private, algorithm="EdDSA"
    ),
    "kid not a string": lambda o: forge({"alg": "EdDSA", "kid": 1}, claims(o), ED.private.sign),
    "kid null (several keys published)": lambda o: forge(
        {"alg": "EdDSA", "kid": None}, claims(o), ED.private.sign
    ),
    "other Ed25519 key, known kid": lambda o: EVIL_ED.sign(claims(o), kid=ED.kid),
    "other P-256 key, known kid": lambda o: EVIL_P256.sign(claims(o), kid=P256.kid),
    "signature tampered": _tampered,
    "payload swapped after signing": _swapped_payload,
    "signature stripped": lambda o: ED.sign(claims(o)).rsplit(".", 1)[0] + ".",
    "HS256 with the shared secret and a jwks kid (jwks only)": lambda o: forge(
        {"alg": "HS256", "kid": ED.kid},
        claims(o),
        lambda m: hmac.new(TEST_SECRET.encode(), m, hashlib.sha256).digest(),
    ),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS), ids=list(BAD_TOKENS))
def test_bad_jwks_token_is_401(build: Callable[..., Flask], jwks: JWKSServer, case: str) -> None:
    app = build(jwks, BETTER_AUTH_SECRET=None)  # the JWKS method alone decides
    assert_invalid_token(get_tasks(app, BAD_TOKENS[case](jwks.base)))
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))  # and the app is fine


@pytest.mark.parametrize(
    "make_claims",
    [
        pytest.param(
            lambda o: claims(o, iat=_now() - 3600, exp=_now() - LEEWAY + 15),
            id="expired within leeway",
        ),
        pytest.param(lambda o: claims(o, nbf=_now() + LEEWAY - 15), id="nbf within leeway"),
        pytest.param(lambda o: claims(o, iat=DROP), id="no iat"),
        pytest.param(lambda o: claims(o, email=DROP, name=DROP), id="no email or name"),
    ],
)
def test_acceptable_jwks_token_is_200(
    build: Callable[..., Flask], jwks: JWKSServer, make_claims: Callable[[str], dict[str, Any]]
) -> None:
    app = build(jwks, BETTER_AUTH_SECRET=None)
    assert_ok(get_tasks(app, ED.sign(make_claims(jwks.base))))


# --------------------------------------------------------------------------- rotation


def test_new_kid_is_accepted_without_restart(build: Callable[..., Flask], jwks: JWKSServer) -> None:
    jwks.publish(ED)
    app = build(jwks, JWKS_MIN_REFRESH_SECONDS=1)
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))
    assert jwks.requests == 1
    jwks.publish(ED, ED_NEW)  # Better Auth rotated: the new key signs from now on
    time.sleep(1.05)  # past the minimum refresh interval since the first fetch
    assert_ok(get_tasks(app, ED_NEW.sign(claims(jwks.base))))
    assert jwks.requests == 2  # exactly one refetch
    assert_ok(get_tasks(app, ED_NEW.sign(claims(jwks.base))))
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))
    assert jwks.requests == 2


def test_removed_key_stops_working_when_the_cache_expires(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    jwks.publish(ED, ED_NEW)
    app = build(jwks, JWKS_CACHE_SECONDS=1, JWKS_MIN_REFRESH_SECONDS=1)
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))
    jwks.publish(ED_NEW)  # ED retired
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))  # still cached
    assert jwks.requests == 1
    time.sleep(1.1)
    assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base))))
    assert jwks.requests == 2
    assert_ok(get_tasks(app, ED_NEW.sign(claims(jwks.base))))
    assert jwks.requests == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_cache_lifecycle_with_a_fake_clock(jwks: JWKSServer) -> None:
    clock = FakeClock()
    cache = JWKSCache(jwks.jwks_url, lifespan=60, timeout=1, min_refresh=5, clock=clock)
    jwks.publish(ED)
    assert cache.get(ED.kid) is not None
    assert jwks.requests == 1
    clock.advance(1)
    assert cache.get(ED.kid) is not None
    assert jwks.requests == 1  # fresh: no fetch
    jwks.publish(ED, ED_NEW)
    assert cache.get(ED_NEW.kid) is None  # unknown kid, but within min_refresh
    assert jwks.requests == 1
    clock.advance(4)  # 5 s since the last fetch
    found = cache.get(ED_NEW.kid)
    assert found is not None and found[1]["kid"] == ED_NEW.kid
    assert jwks.requests == 2
    jwks.publish(ED_NEW)  # ED retired
    clock.advance(30)
    assert cache.get(ED.kid) is not None  # still within the lifespan
    assert jwks.requests == 2
    clock.advance(31)  # 61 s since the last fetch: stale
    assert cache.get(ED.kid) is None
    assert jwks.requests == 3
    assert cache.get(ED_NEW.kid) is not None
    assert jwks.requests == 3


def test_authority_follows_rotation_with_a_fake_clock(jwks: JWKSServer) -> None:
    clock = FakeClock()
    cache = JWKSCache(jwks.jwks_url, lifespan=60, timeout=1, min_refresh=5, clock=clock)
    verifier = JWKSVerifier(
        cache,
        algorithms=DEFAULT_JWKS_ALGORITHMS,
        leeway=LEEWAY,
        issuer=jwks.base,
        audience=jwks.base,
    )
    authority = TokenAuthority(jwks=verifier)
    jwks.publish(ED)
    identity = authority.authenticate(ED.sign(claims(jwks.base)))
    assert identity.user_id == ALICE
    assert (identity.email, identity.name) == ("alice@example.com", "Alice")
    jwks.publish(ED_NEW)
    clock.advance(5)
    assert authority.authenticate(ED_NEW.sign(claims(jwks.base))).user_id == ALICE
    assert jwks.requests == 2
    with pytest.raises(TokenError):
        authority.authenticate(ED.sign(claims(jwks.base)))  # fetched set no longer has it
    with pytest.raises(TokenError):
        authority.authenticate(create_token(TEST_SECRET, ALICE))  # no secret method configured


# --------------------------------------------------------------------------- unknown-kid flood


def test_unknown_kid_flood_is_rate_limited(build: Callable[..., Flask], jwks: JWKSServer) -> None:
    app = build(jwks, JWKS_MIN_REFRESH_SECONDS=5)
    client = app.test_client()
    for i in range(50):
        token = ED.sign(claims(jwks.base), kid=f"made-up-{i}")
        assert_invalid_token(client.get(f"/api/{ALICE}/tasks", headers=bearer(token)))
    assert 1 <= jwks.requests <= 2
    before = jwks.requests
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))  # the real key was loaded meanwhile
    assert jwks.requests == before


def test_unknown_kid_flood_with_a_fake_clock(jwks: JWKSServer) -> None:
    clock = FakeClock()
    cache = JWKSCache(jwks.jwks_url, lifespan=300, timeout=1, min_refresh=5, clock=clock)
    assert cache.get(ED.kid) is not None
    clock.advance(10)
    for i in range(50):
        assert cache.get(f"made-up-{i}") is None
        clock.advance(0.05)  # 2.5 s in all: still within min_refresh of the flood's fetch
    assert jwks.requests == 2  # the warm-up, then one for the whole flood
    clock.advance(2.6)
    assert cache.get("made-up-again") is None
    assert jwks.requests == 3


def test_concurrent_unknown_kids_share_one_fetch(jwks: JWKSServer) -> None:
    jwks.mode = "slow"  # keeps the first fetch in flight while the others arrive
    cache = JWKSCache(jwks.jwks_url, lifespan=300, timeout=1, min_refresh=5)
    results: list[Any] = []
    durations: list[float] = []

    def worker(i: int) -> None:
        start = time.monotonic()
        results.append(cache.get(f"made-up-{i}"))
        durations.append(time.monotonic() - start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == [None] * 20
    assert max(durations) < FAST_ENOUGH
    assert jwks.requests == 1


# --------------------------------------------------------------------------- JWKS endpoint trouble


TROUBLE = ["500", "refused", "slow", "not json", "json without keys", "empty key list",
           "keys not a list", "oversized", "redirect"]  # fmt: skip


def _make_trouble(server: JWKSServer, mode: str) -> None:
    if mode == "refused":
        server.stop()
    elif mode == "redirect":
        server.mode = "redirect"
        server.redirect_to = server.jwks_url  # even to itself: not followed
    else:
        server.mode = mode


@pytest.mark.parametrize("mode", ["500", "refused", "slow", "not json", "json without keys"])
def test_cached_keys_survive_a_jwks_outage(
    build: Callable[..., Flask], jwks: JWKSServer, mode: str
) -> None:
    app = build(jwks, JWKS_CACHE_SECONDS=1, JWKS_MIN_REFRESH_SECONDS=1, JWKS_TIMEOUT_SECONDS=1)
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))
    assert jwks.requests == 1
    _make_trouble(jwks, mode)
    time.sleep(1.1)  # the cache is now past its lifespan and min_refresh has passed
    resp, elapsed = timed_get(app, ED.sign(claims(jwks.base)))
    assert_ok(resp)  # stale-if-error
    assert elapsed < FAST_ENOUGH
    if mode != "refused":
        assert jwks.requests == 2  # it did try
    resp, elapsed = timed_get(app, P256.sign(claims(jwks.base)))
    assert_ok(resp)  # every cached key, not only the one used
    assert elapsed < FAST_ENOUGH
    resp, elapsed = timed_get(app, ED_NEW.sign(claims(jwks.base)))
    assert_invalid_token(resp)  # a key it never saw
    assert elapsed < FAST_ENOUGH


@pytest.mark.parametrize("mode", TROUBLE)
def test_uncached_kid_during_outage_is_a_quick_401(
    build: Callable[..., Flask], jwks: JWKSServer, mode: str
) -> None:
    _make_trouble(jwks, mode)
    app = build(jwks, JWKS_TIMEOUT_SECONDS=1)
    resp, elapsed = timed_get(app, ED.sign(claims(jwks.base)))
    assert_invalid_token(resp)  # never a 500, never a hang
    assert elapsed < FAST_ENOUGH
    assert jwks.requests == (0 if mode == "refused" else 1)
    # a flood during the outage does not hammer the auth server, nor wait on it
    start = time.monotonic()
    for i in range(10):
        assert_invalid_token(get_tasks(app, ED.sign(claims(jwks.base), kid=f"made-up-{i}")))
    assert time.monotonic() - start < FAST_ENOUGH
    assert jwks.requests == (0 if mode == "refused" else 1)


def test_trickling_jwks_server_is_bounded_by_the_timeout(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    jwks.mode = "trickle"
    app = build(jwks, JWKS_TIMEOUT_SECONDS=1)
    resp, elapsed = timed_get(app, ED.sign(claims(jwks.base)))
    assert elapsed < FAST_ENOUGH, f"the request waited {elapsed:.1f} s on the JWKS server"
    assert_invalid_token(resp)  # the fetch was cut off at the timeout: no key


def test_concurrent_requests_on_a_hanging_jwks_server_do_not_wait(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    jwks.mode = "slow"
    app = build(jwks, JWKS_TIMEOUT_SECONDS=1)
    statuses: list[int] = []
    durations: list[float] = []

    def worker() -> None:
        resp, elapsed = timed_get(app, ED.sign(claims(jwks.base)))
        statuses.append(resp.status_code)
        durations.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert statuses == [401] * 8
    assert max(durations) < FAST_ENOUGH
    assert jwks.requests == 1


@pytest.mark.parametrize("mode", [m for m in TROUBLE if m != "refused"])  # it must recover
def test_stale_if_error_then_recovery_with_a_fake_clock(jwks: JWKSServer, mode: str) -> None:
    clock = FakeClock()
    cache = JWKSCache(jwks.jwks_url, lifespan=60, timeout=1, min_refresh=5, clock=clock)
    assert cache.get(ED.kid) is not None
    _make_trouble(jwks, mode)
    clock.advance(120)
    assert cache.get(ED.kid) is not None  # stale, the fetch failed: the old keys stay
    assert jwks.requests == 2
    clock.advance(1)
    assert cache.get(ED.kid) is not None
    assert jwks.requests == 2  # no retry within min_refresh
    jwks.mode = "ok"
    jwks.publish(ED_NEW)  # back, and rotated meanwhile
    clock.advance(5)
    assert cache.get(ED.kid) is None
    assert cache.get(ED_NEW.kid) is not None
    assert jwks.requests == 3


# --------------------------------------------------------------------------- configuration


def test_neither_secret_nor_jwks_url_is_a_config_error(database_url: str) -> None:
    with pytest.raises(ConfigError):
        make_app(database_url, BETTER_AUTH_SECRET=None)


def test_jwks_only_rejects_hs256(build: Callable[..., Flask], jwks: JWKSServer) -> None:
    app = build(jwks, BETTER_AUTH_SECRET=None)
    assert_invalid_token(get_tasks(app, create_token(TEST_SECRET, ALICE)))
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))


def test_both_methods_configured_accept_both(build: Callable[..., Flask], jwks: JWKSServer) -> None:
    app = build(jwks)  # BETTER_AUTH_SECRET=TEST_SECRET from make_app
    assert_ok(get_tasks(app, create_token(TEST_SECRET, ALICE)))
    assert_ok(get_tasks(app, ED.sign(claims(jwks.base))))


@pytest.mark.parametrize("name", ["BETTER_AUTH_URL", "BETTER_AUTH_JWKS_URL"])
@pytest.mark.parametrize(
    "url",
    [
        "ftp://auth.example.com",
        "file:///etc/passwd",
        "auth.example.com",
        "javascript:alert(1)",
        "http://",
        "gopher://127.0.0.1:70/",
    ],  # fmt: skip
)
def test_non_http_url_is_a_config_error(database_url: str, name: str, url: str) -> None:
    with pytest.raises(ConfigError):
        make_app(database_url, BETTER_AUTH_SECRET=None, **{name: url})


@pytest.mark.parametrize("algs", [["HS256"], ["none"], ["EdDSA", "HS512"]])
def test_symmetric_jwks_algorithms_are_a_config_error(database_url: str, algs: list[str]) -> None:
    with pytest.raises(ConfigError):
        make_app(database_url, BETTER_AUTH_URL="https://auth.example.com", JWT_JWKS_ALGORITHMS=algs)


def test_jwks_algorithm_allow_list_is_honoured(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    app = build(jwks, JWT_JWKS_ALGORITHMS=["ES256"])
    assert_ok(get_tasks(app, P256.sign(claims(jwks.base))))
    for key in (ED, P521, RSA_RS, RSA_PS):
        assert_invalid_token(get_tasks(app, key.sign(claims(jwks.base))))


def test_app_uses_the_configured_jwks_authority(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    app = build(jwks)
    authority = app.extensions[EXTENSION_KEY]
    assert isinstance(authority, TokenAuthority)
    assert authority.authenticate(ED.sign(claims(jwks.base))).user_id == ALICE


# --------------------------------------------------------------------------- the users row


def test_email_and_name_claims_are_stored_on_first_task(
    build: Callable[..., Flask], jwks: JWKSServer
) -> None:
    app = build(jwks, BETTER_AUTH_SECRET=None)
    client = app.test_client()
    token = ED.sign(claims(jwks.base, email="alice@example.com", name="Alice Liddell"))
    assert_ok(client.get(f"/api/{ALICE}/tasks", headers=bearer(token)))
    assert stored_user(app, ALICE) is None  # reading creates no user
    resp = client.post(f"/api/{ALICE}/tasks", json={"title": "First"}, headers=bearer(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["user_id"] == ALICE
    user = stored_user(app, ALICE)
    assert user == {"id": ALICE, "email": "alice@example.com", "name": "Alice Liddell"}
