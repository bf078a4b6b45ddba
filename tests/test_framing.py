"""Request framing through a real gunicorn, and tokens that repeat a name.

Contract: issue 12, part 4 ("gunicorn directly (local runs, tests) follows the contract
too") and its "Tests" section ("the direct-gunicorn cases of part 4 in the ordinary test
suite"); docs/api.md, "Errors" (every error the application answers is JSON
of one shape; 400 unreadable body, 413 over 64 KiB).

- Malformed chunked framing is a 400 JSON, a chunked body over 64 KiB a 413 JSON, a
  body shorter than its Content-Length a 400 JSON; none of them creates a task.
- A 413 leaves the connection usable: the next request on the same socket is answered.
- ``//`` in a path is a JSON 404, never a redirect built from the Host header.
- A token whose claims or header repeat a name is a 401 (RFC 8725), even when its
  signature is valid. This one runs in-process: it is the app's decision, not the server's.

The gunicorn cases talk raw HTTP/1.1 over a socket (no client library would send these
bodies); gunicorn is started once for the module, as ``tests/test_ops.py`` starts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from conftest import TEST_SECRET, migrated_database
from support import Gunicorn, assert_error, assert_invalid_token, b64url

from app.auth import create_token

LIMIT = 64 * 1024
TOO_LARGE_MESSAGE = "The request body is larger than 64 KiB."
BIG = 2 * 1024 * 1024  # 2 MiB, as in issue 12
TITLE_JSON = b'{"title":"x"}'  # 13 bytes: chunk size "d"


# --------------------------------------------------------------------------- gunicorn


@pytest.fixture(scope="module")
def gunicorn(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    """Real gunicorn with the repository's gunicorn.conf.py, on a migrated database."""
    tmp = tmp_path_factory.mktemp("framing")
    with Gunicorn(migrated_database(request, database_url, tmp), tmp) as server:
        yield server


# --------------------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Sender(threading.Thread):
    """Sends ``parts`` on a socket; ``error`` is what stopped it, if anything did."""

    def __init__(self, sock: socket.socket, parts: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.sock, self.parts = sock, parts
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            for part in self.parts:
                self.sock.sendall(part)
        except OSError as exc:
            self.error = exc

    def assert_all_sent(self) -> None:
        self.join(timeout=15)
        assert not self.is_alive(), "the server stopped reading the refused body"
        assert self.error is None, f"sending the body failed: {self.error!r}"


class RawConnection:
    """One TCP connection: bytes go out as given, responses are parsed as they come."""

    def __init__(self, server: Gunicorn, timeout: float = 15) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.rfile = self.sock.makefile("rb")

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_in_background(self, parts: list[bytes]) -> Sender:
        """Send while the caller reads: the server may answer before the body has all gone."""
        sender = Sender(self.sock, parts)
        sender.start()
        return sender

    def _line(self) -> bytes:
        line = self.rfile.readline(65537)
        if not line:
            raise ConnectionError("the server closed the connection")
        return line.rstrip(b"\r\n")

    def response(self) -> RawResponse:
        version, status, reason = (self._line().decode("latin-1").split(" ", 2) + [""])[:3]
        assert version.startswith("HTTP/1."), version
        headers: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int(self._line().split(b";")[0], 16):
                body += self.rfile.read(size)
                self._line()
            while self._line():  # trailers
                pass
        elif "content-length" in headers:
            body = bytearray(self.rfile.read(int(headers["content-length"])))
        else:
            body = bytearray(self.rfile.read())
        return RawResponse(int(status), reason, headers, bytes(body))


def bearer(user_id: str) -> str:
    return f"Bearer {create_token(TEST_SECRET, user_id)}"


def request_head(
    method: str, path: str, user_id: str, *, host: str = "127.0.0.1", **headers: str
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: {bearer(user_id)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post_head(user_id: str, **headers: str) -> bytes:
    return request_head(
        "POST", f"/api/{user_id}/tasks", user_id, Content_Type="application/json", **headers
    )


def list_head(user_id: str, **headers: str) -> bytes:
    return request_head("GET", f"/api/{user_id}/tasks", user_id, **headers)


def new_user() -> str:
    return f"framing-{uuid.uuid4().hex}"


def tasks_of(server: Gunicorn, user_id: str) -> list[dict[str, Any]]:
    """The user's tasks, listed on a fresh connection."""
    response = requests.get(
        f"{server.base}/api/{user_id}/tasks",
        headers={"Authorization": bearer(user_id), "Connection": "close"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_next_request_served(
    server: Gunicorn, conn: RawConnection, after: RawResponse, user_id: str, tasks: int = 0
) -> None:
    """The client's next request succeeds: on the same connection, unless the answer said
    Connection: close (a sync worker says it after every response; issue 12, part 4:
    "a 413 either drains the rest of the body ... or says Connection: close"), in which
    case on a new one. A list request, answered 200 with ``tasks`` tasks."""
    closing = after.headers.get("connection", "").lower() == "close"
    with RawConnection(server) if closing else contextlib.nullcontext(conn) as next_conn:
        next_conn.send(list_head(user_id))
        try:
            response = next_conn.response()
        except (ConnectionError, OSError) as exc:
            pytest.fail(f"the next request failed: {exc!r}")
    assert response.status == 200, (response.status, response.body[:500])
    assert len(response.json()) == tasks, response.json()


# --------------------------------------------------------------------------- sanity


WELL_FORMED_CHUNKED = {
    "one chunk": b"d\r\n" + TITLE_JSON + b"\r\n0\r\n\r\n",
    "three chunks": b"5\r\n" + TITLE_JSON[:5] + b"\r\n8\r\n" + TITLE_JSON[5:] + b"\r\n0\r\n\r\n",
    # RFC 9112, 7.1.1: a recipient ignores chunk extensions it does not know.
    "chunk extension": b"D;foo=bar\r\n" + TITLE_JSON + b"\r\n0\r\n\r\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("body", WELL_FORMED_CHUNKED.values(), ids=WELL_FORMED_CHUNKED.keys())
def test_well_formed_chunked_body_creates_a_task(gunicorn: Gunicorn, body: bytes) -> None:
    """The control for the malformed cases below: the same request, framed right, works."""
    user = new_user()
    with RawConnection(gunicorn) as conn:
        conn.send(post_head(user, Transfer_Encoding="chunked") + body)
        response = conn.response()
        assert response.status == 201, response.body
        assert response.json()["title"] == "x"
        # And a second request (on the same connection when it was kept open).
        assert_next_request_served(gunicorn, conn, response, user, tasks=1)


# --------------------------------------------------------------------------- malformed chunked


MALFORMED_CHUNKED = {
    "size zz": b"zz\r\n" + TITLE_JSON + b"\r\n0\r\n\r\n",
    "size -1": b"-1\r\n" + TITLE_JSON + b"\r\n0\r\n\r\n",
    "data not followed by CRLF": b"3\r\nabcX\r\n0\r\n\r\n",
    # Valid JSON in the chunk: a server that skipped the check would create the task.
    "JSON data not followed by CRLF": b"d\r\n" + TITLE_JSON + b"X\r\n0\r\n\r\n",
    "empty size line instead of the last chunk": b"d\r\n" + TITLE_JSON + b"\r\n\r\n",
    "size followed by junk": b"d zz\r\n" + TITLE_JSON + b"\r\n0\r\n\r\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("body", MALFORMED_CHUNKED.values(), ids=MALFORMED_CHUNKED.keys())
def test_malformed_chunked_framing_is_400_json(gunicorn: Gunicorn, body: bytes) -> None:
    user = new_user()
    with RawConnection(gunicorn) as conn:
        conn.send(post_head(user, Transfer_Encoding="chunked", Connection="close") + body)
        response = conn.response()
    error = assert_error(response, 400)
    assert "chunked" in error["message"].lower(), error  # says what is wrong with the body
    assert tasks_of(gunicorn, user) == []


CUT_SHORT_CHUNKED = {
    "no last chunk": b"d\r\n" + TITLE_JSON + b"\r\n",
    "last chunk without its final CRLF": b"d\r\n" + TITLE_JSON + b"\r\n0\r\n",
    "inside a chunk": b"20\r\n" + TITLE_JSON,
}


@pytest.mark.slow
@pytest.mark.parametrize("body", CUT_SHORT_CHUNKED.values(), ids=CUT_SHORT_CHUNKED.keys())
def test_chunked_body_cut_short_is_400_json(gunicorn: Gunicorn, body: bytes) -> None:
    """Issue 12: "missing last chunk" was a 500. The client closes its half mid-body."""
    user = new_user()
    with RawConnection(gunicorn) as conn:
        conn.send(post_head(user, Transfer_Encoding="chunked", Connection="close") + body)
        conn.sock.shutdown(socket.SHUT_WR)
        response = conn.response()
    assert_error(response, 400)
    assert tasks_of(gunicorn, user) == []


# --------------------------------------------------------------------------- 413


def over_64k(framing: str) -> tuple[dict[str, str], list[bytes]]:
    """Headers and body parts of a 2 MiB create: valid JSON followed by white space, so
    that cut at 64 KiB it would still parse; chunked (64 KiB chunks) or with its length."""
    if framing == "chunked":
        piece = b" " * 65536
        parts = [b"%x\r\n%s\r\n" % (len(TITLE_JSON), TITLE_JSON)]
        parts += [b"%x\r\n%s\r\n" % (len(piece), piece)] * (BIG // len(piece))
        return {"Transfer_Encoding": "chunked"}, [*parts, b"0\r\n\r\n"]
    body = TITLE_JSON + b" " * (BIG - len(TITLE_JSON))
    parts = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    return {"Content_Length": str(len(body))}, parts


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_body_over_64k_is_413_and_the_connection_stays_usable(
    gunicorn: Gunicorn, framing: str
) -> None:
    user = new_user()
    headers, parts = over_64k(framing)
    with RawConnection(gunicorn) as conn:
        conn.send(post_head(user, **headers))
        sender = conn.send_in_background(parts)
        response = conn.response()
        sender.assert_all_sent()
        error = assert_error(response, 413)
        assert error["message"] == TOO_LARGE_MESSAGE
        assert_next_request_served(gunicorn, conn, response, user)
    assert tasks_of(gunicorn, user) == []


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize(
    "size, status", [(LIMIT, 201), (LIMIT + 1, 413)], ids=["64 KiB", "64 KiB + 1"]
)
def test_body_limit_is_64_kib_whatever_the_framing(
    gunicorn: Gunicorn, framing: str, size: int, status: int
) -> None:
    """ "413 body over 64 KiB": a body of exactly 64 KiB is accepted, one byte more is not,
    whether its length is announced (Content-Length) or not (chunked)."""
    user = new_user()
    body = TITLE_JSON + b" " * (size - len(TITLE_JSON))
    with RawConnection(gunicorn) as conn:
        if framing == "chunked":
            conn.send(post_head(user, Transfer_Encoding="chunked", Connection="close"))
            conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            conn.send(post_head(user, Content_Length=str(len(body)), Connection="close") + body)
        response = conn.response()
    assert response.status == status, response.body[:500]
    if status == 413:
        assert response.json()["message"] == TOO_LARGE_MESSAGE
    assert len(tasks_of(gunicorn, user)) == (1 if status == 201 else 0)


# --------------------------------------------------------------------------- truncated body


@pytest.mark.slow
def test_body_shorter_than_its_content_length_is_400_and_creates_nothing(
    gunicorn: Gunicorn,
) -> None:
    user = new_user()
    body = b'{"title":"short"}'
    assert len(body) == 17
    with RawConnection(gunicorn) as conn:
        conn.send(post_head(user, Content_Length="100") + body)
        conn.sock.shutdown(socket.SHUT_WR)  # the client sends nothing more
        response = conn.response()
    error = assert_error(response, 400)
    message = error["message"].lower()
    assert "ended" in message and "content-length" in message, error  # the body ended early
    assert tasks_of(gunicorn, user) == []


# --------------------------------------------------------------------------- "//" in a path


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/api/bob//tasks", "/api/bob/tasks//1"])
def test_double_slash_is_a_json_404_never_a_redirect(gunicorn: Gunicorn, path: str) -> None:
    with RawConnection(gunicorn) as conn:
        conn.send(request_head("GET", path, "bob", host="evil.example", Connection="close"))
        response = conn.response()
    assert not 300 <= response.status < 400, response.headers
    assert "location" not in response.headers, response.headers
    assert b"evil.example" not in response.body
    assert_error(response, 404)


# ---------------------------------------------------------------------- repeated names (in-process)


def hand_made_token(header_json: str, payload_json: str, secret: str = TEST_SECRET) -> str:
    """An HS256 JWT whose header and payload are exactly the JSON text given."""
    signing_input = f"{b64url(header_json.encode())}.{b64url(payload_json.encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


HEADER = '{"alg":"HS256","typ":"JWT"}'


def exp() -> int:
    return int(time.time()) + 600


def test_hand_made_token_without_repeats_is_accepted(client: Any) -> None:
    """The control: the hand-built token is valid when no name repeats."""
    token = hand_made_token(HEADER, f'{{"sub":"alice","exp":{exp()}}}')
    response = client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("path_user", ["victim", "alice"])
def test_token_repeating_a_claim_is_401(client: Any, path_user: str) -> None:
    token = hand_made_token(HEADER, f'{{"sub":"alice","sub":"victim","exp":{exp()}}}')
    response = client.get(f"/api/{path_user}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert_invalid_token(response)


def test_token_repeating_exp_is_401(client: Any) -> None:
    # An expired exp hidden behind a later, valid one (or the other way round).
    token = hand_made_token(HEADER, f'{{"sub":"alice","exp":1,"exp":{exp()}}}')
    response = client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {token}"})
    assert_invalid_token(response)


@pytest.mark.parametrize(
    "header",
    ['{"alg":"HS256","alg":"HS256","typ":"JWT"}', '{"alg":"none","alg":"HS256","typ":"JWT"}'],
    ids=["same alg twice", "none then HS256"],
)
def test_token_header_repeating_alg_is_401(client: Any, header: str) -> None:
    token = hand_made_token(header, f'{{"sub":"alice","exp":{exp()}}}')
    response = client.get("/api/alice/tasks", headers={"Authorization": f"Bearer {token}"})
    assert_invalid_token(response)
