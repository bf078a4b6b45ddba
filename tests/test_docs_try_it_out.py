"""The docs page's "Try it out", as a new user presses it: Authorize with a token, then on
every ``GET`` route fill in nothing but the path, Execute, and see the user's own data.

docs/api.md, "Typed clients" (the OpenAPI document behind ``/docs``): an optional filter
has its example in its description, never as a value Swagger UI would pre-fill and send.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chromium import WAIT_MS, chromium
from conftest import ALICE, lists_url, tasks_url
from flask import Flask

try:
    from playwright.sync_api import expect
except ImportError:  # chromium() skips (or fails under TASKS_REQUIRE_ALL) with the reason
    expect = None  # type: ignore[assignment]

TITLE = "Milk from the docs page"
LIST_TITLE = "Shopping from the docs page"


@pytest.fixture
def page(live_server: str) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()


def test_every_get_route_shows_the_users_data_with_only_the_path_filled_in(
    app: Flask, client: Any, alice: dict[str, str], live_server: str, page: Any
) -> None:
    shopping = client.post(lists_url(ALICE), json={"title": LIST_TITLE}, headers=alice).get_json()
    task = client.post(
        tasks_url(ALICE),
        json={"title": TITLE, "priority": "low", "tags": ["docs"], "list_id": shopping["id"]},
        headers=alice,
    ).get_json()
    path_values = {"user_id": ALICE, "task_id": str(task["id"]), "list_id": str(shopping["id"])}
    token = app.test_cli_runner().invoke(args=["token", "create", ALICE]).output.strip()

    page.goto(live_server + "/docs", wait_until="load")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.locator(".auth-container input").first.fill(token)
    dialog.locator(".auth-btn-wrapper button.authorize").click()
    dialog.locator("button.btn-done").click()
    expect(dialog).to_have_count(0)

    operations = page.locator(".opblock.opblock-get")
    expect(operations.first).to_be_visible()
    tried = []
    for index in range(operations.count()):
        operation = operations.nth(index)
        path = operation.locator(".opblock-summary-path").first.get_attribute("data-path")
        if not path or not path.startswith("/api/"):
            continue
        operation.locator(".opblock-summary").first.click()
        operation.locator(".try-out__btn").click()
        for name, value in path_values.items():
            field = operation.locator(f"tr[data-param-name='{name}'][data-param-in='path'] input")
            if field.count():
                field.fill(value)
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status")
        expect(status.first).to_have_text("200", timeout=WAIT_MS)
        body = operation.locator(".live-responses-table .response .response-col_description").first
        expect(body).to_contain_text(LIST_TITLE if "/lists" in path else TITLE, timeout=WAIT_MS)
        request_url = operation.locator(".request-url").first.inner_text()
        tried.append((path, request_url))
    assert {path for path, _ in tried} >= {
        "/api/{user_id}/tasks",
        "/api/{user_id}/tasks/{task_id}",
        "/api/{user_id}/lists",
        "/api/{user_id}/lists/{list_id}",
    }
    # Nothing but the defaults went out: no filter the user did not ask for.
    for path, url in tried:
        query = url.partition("?")[2]
        sent = {pair.partition("=")[0] for pair in query.split("&") if pair}
        assert sent <= {"status", "sort", "order", "page", "page_size", "limit"}, (path, url)
