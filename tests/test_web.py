"""CORS headers: the remembered ones (app/web.py) are exactly what flask-cors adds.

tests/test_browser.py checks CORS end to end in a real browser; here every kind of
request a browser or a client may send goes to two apps, one adding flask-cors's
headers as it works them out, one remembering them, and their headers must be equal,
on a first request (worked out) and on a second one (remembered).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from conftest import ALICE, TEST_SECRET, make_app
from flask import Flask

from app import web
from app.auth import create_token

ORIGINS = ["https://app.example.com", "http://localhost:3000"]
PATHS = [
    f"/api/{ALICE}/tasks",
    f"/api/{ALICE}/tasks/1",
    f"/api/{ALICE}/tasks/nope/complete",
    "/api/%61lice/tasks",
    "/openapi.json",
    "/healthz",
    "/no-such-path",
]
SENT_ORIGINS = [None, "", ORIGINS[0], ORIGINS[0].upper(), ORIGINS[1], "https://evil.example"]
PREFLIGHTS = [
    {},
    {"Access-Control-Request-Method": "PUT"},
    {"Access-Control-Request-Method": "patch", "Access-Control-Request-Headers": "authorization, content-type"},
    {"Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "X-Evil"},
    {"Access-Control-Request-Method": "TRACE"},
    {"Access-Control-Request-Method": "GET", "Access-Control-Request-Private-Network": "true"},
]
# Headers that differ between any two responses whatever CORS does.
VARYING = {"x-request-id", "date"}


def pair(database_url: str, origins: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Flask, Flask]:
    remembering = make_app(database_url, CORS_ORIGINS=origins)
    monkeypatch.setattr(web, "CORS_CACHE_SIZE", 0)
    plain = make_app(database_url, CORS_ORIGINS=origins)
    monkeypatch.undo()
    hooks = [f.__name__ for f in plain.after_request_funcs[None]]
    assert "cors_after_request" in hooks  # flask-cors's own hook, as registered
    assert "cors_after_request" not in [f.__name__ for f in remembering.after_request_funcs[None]]
    return remembering, plain


def headers_of(app: Flask, method: str, path: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    response = app.test_client().open(path, method=method, headers=headers)
    return sorted((k, v) for k, v in response.headers.items() if k.lower() not in VARYING)


@pytest.mark.parametrize("origins", [ORIGINS, ORIGINS[:1], []], ids=["two", "one", "none"])
def test_remembered_cors_headers_equal_flask_cors(
    app: Flask, database_url: str, origins: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    remembering, plain = pair(database_url, origins, monkeypatch)
    token = {"Authorization": f"Bearer {create_token(TEST_SECRET, ALICE)}"}
    checked = 0
    for path, origin, preflight in itertools.product(PATHS, SENT_ORIGINS, PREFLIGHTS):
        headers: dict[str, Any] = dict(preflight)
        if origin is not None:
            headers["Origin"] = origin
        methods = ["OPTIONS"] if preflight else ["GET", "POST", "DELETE"]
        for method in methods:
            for auth in ({}, token):
                sent = {**headers, **auth}
                expected = headers_of(plain, method, path, sent)
                first = headers_of(remembering, method, path, sent)
                second = headers_of(remembering, method, path, sent)
                assert first == expected, (method, path, sent)
                assert second == expected, (method, path, sent)
                checked += 1
    assert checked > 300


def test_the_cache_is_bounded(app: Flask, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "CORS_CACHE_SIZE", 8)
    remembering = make_app(database_url, CORS_ORIGINS=ORIGINS)
    client = remembering.test_client()
    hook = remembering.after_request_funcs[None][-1]
    cells = [c.cell_contents for c in hook.__closure__ or () if isinstance(c.cell_contents, dict)]
    assert len(cells) == 1
    cache = cells[0]
    for n in range(50):
        client.get("/healthz")
        client.get(f"/api/{ALICE}/tasks", headers={"Origin": f"https://site{n}.example"})
        assert len(cache) <= 8
    # A key too long to keep is worked out every time, and never kept.
    client.get(f"/api/{ALICE}/tasks", headers={"Origin": "https://" + "x" * 2000 + ".example"})
    assert all(len(str(key)) < 1500 for key in cache)
