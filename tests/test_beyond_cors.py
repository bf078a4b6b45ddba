"""Browser access to the new headers (docs/api.md, "From a browser (CORS)": preflight allows
``If-Match``, ``If-None-Match`` and ``Idempotency-Key``; responses expose ``ETag``; the
issue adds ``Idempotent-Replayed``), without a browser: the headers a browser checks.
The headless-Chromium run is tests/test_browser.py's.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_beyond_support import create, tasks_url

ORIGIN = "https://app.example.com"


@pytest.fixture
def cors_client(extra_app: Callable[..., Flask]) -> FlaskClient:
    """A second app on the same (already migrated) database, with CORS for ORIGIN."""
    return extra_app(CORS_ORIGINS=[ORIGIN]).test_client()


def _listed(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


PREFLIGHTS = [
    ("GET", "/{id}", "authorization, if-none-match"),
    ("GET", "", "authorization, if-none-match"),
    ("PUT", "/{id}", "authorization, content-type, if-match"),
    ("PATCH", "/{id}/complete", "authorization, content-type, if-match"),
    ("DELETE", "/{id}", "authorization, if-match"),
    ("POST", "", "authorization, content-type, idempotency-key"),
]


@pytest.mark.parametrize(("method", "suffix", "requested"), PREFLIGHTS)
def test_preflight_allows_the_new_request_headers(
    cors_client, client, alice, method, suffix, requested
):
    task = create(client, alice)
    resp = cors_client.options(
        tasks_url() + suffix.format(id=task["id"]),
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": requested,
        },
    )
    assert resp.status_code in (200, 204), resp.get_data(as_text=True)
    assert resp.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert _listed(requested) <= _listed(resp.headers.get("Access-Control-Allow-Headers"))
    assert method in {m.upper() for m in _listed(resp.headers.get("Access-Control-Allow-Methods"))}


def test_responses_expose_etag_and_idempotent_replayed(cors_client, alice):
    headers = {**alice, "Origin": ORIGIN, "Idempotency-Key": "cors-key"}
    first = cors_client.post(tasks_url(), headers=headers, json={"title": "x"})
    replay = cors_client.post(tasks_url(), headers=headers, json={"title": "x"})
    got = cors_client.get(first.headers["Location"], headers={**alice, "Origin": ORIGIN})
    listed = cors_client.get(tasks_url(), headers={**alice, "Origin": ORIGIN})
    for resp in (first, replay, got, listed):
        assert resp.headers.get("Access-Control-Allow-Origin") == ORIGIN
        assert "etag" in _listed(resp.headers.get("Access-Control-Expose-Headers"))
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert "idempotent-replayed" in _listed(replay.headers.get("Access-Control-Expose-Headers"))


def test_304_and_412_carry_cors_headers(cors_client, alice):
    created = cors_client.post(tasks_url(), headers=alice, json={"title": "x"})
    url, etag = created.headers["Location"], created.headers["ETag"]
    not_modified = cors_client.get(url, headers={**alice, "Origin": ORIGIN, "If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "etag" in _listed(not_modified.headers.get("Access-Control-Expose-Headers"))
    failed = cors_client.put(
        url, headers={**alice, "Origin": ORIGIN, "If-Match": '"stale"'}, json={"title": "y"}
    )
    assert failed.status_code == 412
    assert failed.headers.get("Access-Control-Allow-Origin") == ORIGIN
