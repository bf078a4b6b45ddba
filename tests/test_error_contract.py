"""The error contract's fixed parts: the reason phrases, spelled as shipped whatever the
Python version, and nginx's own error pages, which say what app/errors.py says.

docs/api.md, "Errors": ``status`` is the status's reason phrase, fixed (clients read
``code``); every error, the service's or nginx's, has the same shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ALICE, tasks_url
from support import REASON_PHRASES

from app import errors

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = REPO / "deploy" / "nginx.conf"

# As the service has always spelled them (Python 3.11's http.HTTPStatus); Python 3.13
# renamed 413 and 422, and the service must not follow.
SHIPPED = REASON_PHRASES


@pytest.mark.parametrize("code", sorted(SHIPPED))
def test_the_reason_phrase_of_each_status_is_pinned(code: int) -> None:
    assert errors.error_payload(code)["status"] == SHIPPED[code]


def test_a_status_without_a_phrase_still_has_the_shape() -> None:
    payload = errors.error_payload(418)
    assert payload == {"code": 418, "status": "Error", "message": "Error"}


def test_nothing_in_the_service_reads_the_python_phrase_table() -> None:
    # http.HTTPStatus(...).phrase changes with the Python version.
    readers = [
        str(path.relative_to(REPO))
        for path in (REPO / "app").rglob("*.py")
        if "HTTPStatus" in path.read_text()
    ]
    assert readers == []


def test_413_and_422_answers_say_the_shipped_phrases(client: Any, alice: dict[str, str]) -> None:
    unprocessable = client.post(tasks_url(ALICE), json={"title": ""}, headers=alice)
    assert unprocessable.status_code == 422
    assert unprocessable.get_json()["status"] == "Unprocessable Entity"
    too_large = client.post(
        tasks_url(ALICE),
        data=b'{"title": "' + b"x" * 70_000 + b'"}',
        headers={**alice, "Content-Type": "application/json"},
    )
    assert too_large.status_code == 413
    assert too_large.get_json() == {
        "code": 413,
        "status": "Request Entity Too Large",
        "message": "The request body is larger than 64 KiB.",
    }


def test_the_documented_error_examples_are_what_the_service_sends(client: Any) -> None:
    document = client.get("/openapi.json").get_json()
    examples = 0
    for name, component in document["components"]["responses"].items():
        example = component.get("content", {}).get("application/json", {}).get("example")
        if example is None:  # 304, and flask-smorest's own generic components
            continue
        examples += 1
        assert example["status"] == SHIPPED[example["code"]], name
        assert component["description"] == SHIPPED[example["code"]], name
    assert examples >= 10


# --------------------------------------------------------------------------- nginx's pages

_LOCATION = re.compile(r"location = /_errors/(\d+) \{(.*?)\n    \}", re.DOTALL)
_RETURN = re.compile(r"return (\d+) '(.*)\\n';")
_RETRY_AFTER = re.compile(r"add_header Retry-After (\d+) always;")
_ERROR_PAGE = re.compile(r"error_page ([\d ]+) /_errors/(\d+);")


def nginx_error_pages() -> dict[int, tuple[dict[str, Any], int | None]]:
    """Each of deploy/nginx.conf's own error answers: its JSON body and Retry-After."""
    pages = {}
    for code, block in _LOCATION.findall(NGINX_CONF.read_text()):
        returned = _RETURN.search(block)
        assert returned is not None, block
        assert returned.group(1) == code
        retry = _RETRY_AFTER.search(block)
        pages[int(code)] = (json.loads(returned.group(2)), int(retry.group(1)) if retry else None)
    return pages


def test_nginx_answers_each_of_its_errors_as_the_error_module_says() -> None:
    pages = nginx_error_pages()
    assert set(pages) == set(errors.PROXY_ERRORS)
    for code, (body, retry_after) in pages.items():
        message, retry = errors.PROXY_ERRORS[code]
        assert body == errors.error_payload(code, message), code
        assert list(body) == ["code", "status", "message"], code
        assert retry_after == retry, code


def test_every_status_nginx_can_answer_has_its_json_page() -> None:
    pages = nginx_error_pages()
    routed = {}
    for codes, target in _ERROR_PAGE.findall(NGINX_CONF.read_text()):
        for code in codes.split():
            routed[int(code)] = int(target)
    assert set(routed.values()) == set(pages)
    # 494 (request header too large) is nginx's own code; it answers as a 400.
    assert routed[494] == 400
    assert {code for code in routed if code != 494} == set(pages)
