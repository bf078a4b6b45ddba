"""The example frontend (examples/web), driven by headless Chromium: issue 13 part 5.

``examples/web/run.sh`` (the one documented command) starts Better Auth (the npm package,
``jwt()`` plugin, in memory), the API (gunicorn, ``BETTER_AUTH_URL`` only: JWKS, no shared
secret; ``CORS_ORIGINS`` = the page) and the page, on three free loopback ports. Then a
user signs up on the page, adds two tasks, has the page refresh its token ahead of expiry
(the page's clock is moved 14.5 minutes on), toggles and edits one, deletes the other
while the API refuses the first try (the page fetches a new token and retries once),
reloads and sees exactly the right list, signs out and in again; a second user sees
none of it. A screenshot of the first user's page goes to examples/web/screenshots/.

Needs Node.js/npm (the first run installs examples/web from its lock file), Chromium and
Playwright; without them it skips, or fails under TASKS_REQUIRE_ALL=1.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from chromium import WAIT_MS, chromium, require_browser
from nodejs import node_env, npm_ci, require_node
from support import ProcessOutput, service_env

from app.auth import create_token

try:
    from playwright.sync_api import Browser, Page, Route, expect
except Exception:  # pragma: no cover - chromium.require_browser skips, saying why
    pass

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web"
SCREENSHOTS = EXAMPLE / "screenshots"  # git-ignored
START_TIMEOUT = 180  # seconds for run.sh to say "ready" (the first run compiles, maybe installs)
STOP_TIMEOUT = 40  # gunicorn finishes in-flight requests first
PASSWORD = "correct-horse-battery-staple-42"
READY = re.compile(r"^\[example\] ready: open (http://\S+)$")


@dataclass
class Example:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    output: ProcessOutput

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.ports['WEB_PORT']}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['API_PORT']}"

    @property
    def auth(self) -> str:
        return f"http://127.0.0.1:{self.ports['AUTH_PORT']}"

    def describe(self) -> str:
        return "run.sh output (last 60 lines):\n" + self.output.tail(60)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start() -> Example:
    ports = dict(zip(("AUTH_PORT", "API_PORT", "WEB_PORT"), _free_ports(3), strict=True))
    # The API's environment: nothing of the developer's shell or .env (run.sh sets what it
    # needs), the ports, and a readable log.
    env = service_env(
        node_env(**{name: str(port) for name, port in ports.items()}), LOG_FORMAT="text"
    )
    process = subprocess.Popen(
        ["bash", str(EXAMPLE / "run.sh")],
        cwd=EXAMPLE,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the fallback kill reaches all three
    )
    example = Example(process, ports, ProcessOutput(process, "example-web-output"))
    try:
        line = example.output.wait_for(
            lambda line: READY.match(line.strip()) is not None, START_TIMEOUT
        )
    except TimeoutError:
        _stop(example)
        pytest.fail(f"run.sh not ready within {START_TIMEOUT} s\n{example.describe()}")
    except EOFError:
        _stop(example)
        pytest.fail(f"run.sh exited with {process.wait()} before ready\n{example.describe()}")
    ready = READY.match(line.strip())
    assert ready is not None and ready.group(1) == example.web, line
    return example


def _stop(example: Example) -> int | None:
    """SIGTERM to run.sh (it stops its three servers), then SIGKILL to the group if need be."""
    process = example.process
    status = None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything left in its group
    except ProcessLookupError:
        pass
    process.wait(timeout=10)
    example.output.thread.join(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    return status


@pytest.fixture(scope="module")
def example() -> Iterator[Example]:
    require_node("the example frontend (examples/web)")
    require_browser()
    npm_ci(EXAMPLE)
    started = _start()
    try:
        yield started
    finally:
        status = _stop(started)
        left = [name for name, port in started.ports.items() if _port_open(port)]
        assert not left, f"still listening after run.sh stopped: {left}\n{started.describe()}"
        assert status == 0, f"run.sh exited with {status} on SIGTERM\n{started.describe()}"


@pytest.fixture(scope="module")
def browser(example: Example) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


class Watcher:
    """What the page did on the network and in its console."""

    def __init__(self, page: Page, example: Example) -> None:
        self.api_calls: list[tuple[str, str, int]] = []  # (method, path, status)
        self.token_fetches = 0
        self.problems: list[str] = []
        prefix = example.api

        def on_response(response: Any) -> None:
            url = response.url
            if url.startswith(prefix) and response.request.method != "OPTIONS":
                self.api_calls.append(
                    (response.request.method, url[len(prefix) :], response.status)
                )

        def on_request(request: Any) -> None:
            if request.url.startswith(example.auth + "/api/auth/token"):
                self.token_fetches += 1

        def on_console(message: Any) -> None:
            # The one refused request this test provokes is logged by Chromium; nothing else may be.
            if message.type == "error" and "status of 401" not in message.text:
                self.problems.append(f"console: {message.text}")

        page.on("response", on_response)
        page.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))


def _new_page(browser: Browser, example: Example) -> tuple[Page, Watcher]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    page = context.new_page()
    return page, Watcher(page, example)


def _sign_up(page: Page, name: str, email: str) -> None:
    form = page.locator("#sign-up-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(page.locator("#who-name")).to_have_text(f"{name} <{email}>")


def _add(page: Page, title: str, description: str = "") -> None:
    form = page.locator("#add-form")
    form.get_by_label("Title").fill(title)
    form.get_by_label("Description").fill(description)
    form.get_by_role("button", name="Add").click()
    expect(page.locator("#status")).to_have_text(f"Added “{title}”.")


def _task(page: Page, title: str) -> Any:
    return page.locator("li.task").filter(
        has=page.locator(".title", has_text=re.compile(f"^{re.escape(title)}$"))
    )


def _expect_titles(page: Page, titles: list[str]) -> None:
    """The list shows exactly these titles, in this order (waits for the page to re-render)."""
    expect(page.locator("li.task .title")).to_have_text(titles)


def test_example_page_end_to_end(
    example: Example, browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    run = secrets.token_hex(4)
    ada_email, grace_email = f"ada-{run}@example.com", f"grace-{run}@example.com"

    # The API trusts Better Auth's JWKS only: a token signed with a shared secret is refused.
    forged = create_token("a-secret-the-example-api-does-not-have-0123456789", "someone")
    resp = requests.get(
        f"{example.api}/api/someone/tasks",
        headers={"Authorization": f"Bearer {forged}"},
        timeout=10,
    )
    assert resp.status_code == 401, resp.text

    page, watch = _new_page(browser, example)
    page.clock.install()  # lets the test move the page's clock to just before the token expires
    page.goto(example.web + "/")
    expect(page.locator("#sign-up-form")).to_be_visible()

    # -- sign up, add two tasks --
    _sign_up(page, "Ada Lovelace", ada_email)
    expect(page.locator("#empty")).to_be_visible()
    _add(page, "Buy milk", "Two litres")
    _add(page, "Walk the dog")
    _expect_titles(page, ["Buy milk", "Walk the dog"])
    expect(page.locator("#count")).to_have_text("2 tasks")  # from X-Pagination

    # -- the token is renewed ahead of its 15 minutes, without a request failing first --
    fetched = watch.token_fetches
    with page.expect_request(lambda r: r.url.startswith(example.auth + "/api/auth/token")):
        page.clock.fast_forward("14:30")
    assert watch.token_fetches == fetched + 1

    # -- toggle and edit the first --
    _task(page, "Buy milk").locator(".toggle").check()
    expect(page.locator("#status")).to_have_text("“Buy milk” done.")
    expect(_task(page, "Buy milk")).to_have_class(re.compile(r"\bcompleted\b"))
    _task(page, "Buy milk").get_by_role("button", name="Edit").click()
    editor = page.locator("li.task form.editor")
    editor.get_by_label("title").fill("Buy oat milk")
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("#status")).to_have_text("Saved “Buy oat milk”.")
    _expect_titles(page, ["Buy oat milk", "Walk the dog"])

    # -- delete the second, the API refusing the first try: one new token, one retry --
    spoiled: list[str] = []

    def spoil_once(route: Route) -> None:
        if spoiled:
            route.continue_()
            return
        spoiled.append(route.request.url)
        headers = {**route.request.headers, "authorization": "Bearer not-a-valid-token"}
        route.continue_(headers=headers)

    page.route(re.compile(re.escape(example.api) + r"/api/.*"), spoil_once)
    fetched = watch.token_fetches
    calls = len(watch.api_calls)
    _task(page, "Walk the dog").get_by_role("button", name="Delete").click()
    expect(page.locator("#status")).to_have_text("Deleted “Walk the dog”.")
    page.unroute(re.compile(re.escape(example.api) + r"/api/.*"))
    deletes = [(m, s) for m, _, s in watch.api_calls[calls:] if m == "DELETE"]
    assert deletes == [("DELETE", 401), ("DELETE", 204)], watch.api_calls[calls:]
    assert watch.token_fetches == fetched + 1

    # -- reload: the server's list --
    page.reload()
    expect(page.locator("li.task")).to_have_count(1)
    only = _task(page, "Buy oat milk")
    expect(only).to_have_class(re.compile(r"\bcompleted\b"))
    expect(only.locator(".toggle")).to_be_checked()
    expect(only.locator(".description")).to_have_text("Two litres")
    expect(page.locator("#count")).to_have_text("1 task")
    page.locator("#filter").select_option("pending")
    expect(page.locator("#empty")).to_be_visible()
    page.locator("#filter").select_option("all")
    expect(page.locator("li.task")).to_have_count(1)

    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "example-web.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    with capsys.disabled():  # shown in every run's output, CI's included
        print(f"\nscreenshot of the example page: {shot}")

    # -- sign out, sign in again --
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#sign-in-form")).to_be_visible()
    expect(page.locator("li.task")).to_have_count(0)
    form = page.locator("#sign-in-form")
    form.get_by_label("Email").fill(ada_email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    _expect_titles(page, ["Buy oat milk"])
    assert watch.problems == [], watch.problems

    # -- a second user, in another browser profile, sees none of it --
    other, other_watch = _new_page(browser, example)
    other.goto(example.web + "/")
    _sign_up(other, "Grace Hopper", grace_email)
    expect(other.locator("#empty")).to_be_visible()
    expect(other.locator("#count")).to_have_text("0 tasks")
    assert other.locator("li.task").count() == 0
    other.screenshot(path=str(SCREENSHOTS / "example-web-second-user.png"), full_page=True)
    assert other_watch.problems == [], other_watch.problems
    statuses = {status for _, _, status in other_watch.api_calls}
    assert statuses <= {200}, other_watch.api_calls

    page.context.close()
    other.context.close()
