"""The example frontend (examples/web), driven by headless Chromium: issue 13 part 5.

``examples/web/run.sh`` (the one documented command) starts Better Auth (the npm package,
``jwt()`` plugin, in memory), the API (gunicorn, ``BETTER_AUTH_URL`` only: JWKS, no shared
secret; ``CORS_ORIGINS`` = the page) and the page, on three free loopback ports. Then a
user signs up on the page, adds two tasks, has the page refresh its token ahead of expiry
(the page's clock is moved 14.5 minutes on), toggles and edits one, deletes the other
while the API refuses the first try (the page fetches a new token and retries once),
reloads and sees exactly the right list, signs out and in again; a second user sees
none of it. A screenshot of the first user's page goes to examples/web/screenshots/.

The second test opens two pages (tabs) of one signed-in user: lists, tasks, subtasks,
moves made by real HTML5 drag and drop, completion and deletes made in one tab show in
the other within 5 s (it polls the changes feed every 2 s), one ``move`` call per drop,
the API's 422 and 409 shown, a 410 from the feed answered by loading again; a screenshot
of the page with several lists and a task with subtasks goes to examples/web/screenshots/.

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
    """What the page did on the network and in its console. Chromium logs every refused
    request as a console error: those with a status in ``expected`` are not problems."""

    def __init__(self, page: Page, example: Example, expected: tuple[int, ...] = (401,)) -> None:
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
            # The refused requests a test provokes are logged by Chromium; nothing else may be.
            if message.type == "error" and not any(
                f"status of {status}" in message.text for status in expected
            ):
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


def _add(
    page: Page,
    title: str,
    description: str = "",
    *,
    priority: str = "medium",
    due: str = "",
    tags: str = "",
    under: str | None = None,
) -> None:
    form = page.locator("#add-form")
    form.get_by_label("Title").fill(title)
    form.get_by_label("Description").fill(description)
    form.get_by_label("Priority").select_option(priority)
    form.get_by_label("Due").fill(due)
    form.get_by_label("Tags").fill(tags)
    form.get_by_role("button", name="Add").click()
    said = f"Added “{title}”." if under is None else f"Added “{title}” under “{under}”."
    expect(page.locator("#status")).to_have_text(said)


def _exactly(title: str) -> re.Pattern[str]:
    return re.compile(f"^{re.escape(title)}$")


def _row(page: Page, title: str) -> Any:
    """The task's own line (its title, toggle and buttons; not its subtasks')."""
    return page.locator("li.task > .row").filter(
        has=page.locator(".title", has_text=_exactly(title))
    )


def _task(page: Page, title: str) -> Any:
    """The task's item: its line, its subtasks and its "after" drop zone."""
    own_title = page.locator(":scope > .row .title", has_text=_exactly(title))
    return page.locator("li.task").filter(has=own_title)


def _subtasks(page: Page, title: str) -> Any:
    """The titles of the task's direct subtasks, in order."""
    return _task(page, title).locator(":scope > .subtasks > li.task > .row .title")


def _top_level(page: Page) -> Any:
    return page.locator("#task-list > li.task > .row .title")


def _list(page: Page, title: str) -> Any:
    """A list in the sidebar."""
    return page.locator("#lists > li.list").filter(
        has=page.locator(".name", has_text=_exactly(title))
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
    expect(page.locator("#count")).to_have_text("2 tasks")  # counted in the page's store

    # -- the token is renewed ahead of its 15 minutes, without a request failing first --
    fetched = watch.token_fetches
    with page.expect_request(lambda r: r.url.startswith(example.auth + "/api/auth/token")):
        page.clock.fast_forward("14:30")
    assert watch.token_fetches == fetched + 1

    # -- toggle and edit the first --
    _row(page, "Buy milk").locator(".toggle").check()
    expect(page.locator("#status")).to_have_text("“Buy milk” done.")
    expect(_task(page, "Buy milk")).to_have_class(re.compile(r"\bcompleted\b"))
    _row(page, "Buy milk").get_by_role("button", name="Edit").click()
    editor = page.locator("li.task form.editor")
    editor.get_by_label("title").fill("Buy oat milk")
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("#status")).to_have_text("Saved “Buy oat milk”.")
    _expect_titles(page, ["Buy oat milk", "Walk the dog"])

    # -- delete the second, the API refusing the first try: one new token, one retry --
    spoiled: list[str] = []

    def spoil_once(route: Route) -> None:
        if spoiled or route.request.method != "DELETE":  # not the polls of the changes feed
            route.continue_()
            return
        spoiled.append(route.request.url)
        headers = {**route.request.headers, "authorization": "Bearer not-a-valid-token"}
        route.continue_(headers=headers)

    page.route(re.compile(re.escape(example.api) + r"/api/.*"), spoil_once)
    fetched = watch.token_fetches
    calls = len(watch.api_calls)
    _row(page, "Walk the dog").get_by_role("button", name="Delete").click()
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


SYNC_MS = 5_000  # another tab shows a change within this (the page polls every 2 s)


def _moves(watch: Watcher) -> list[tuple[str, int]]:
    """The move calls the page made: (path, status)."""
    return [
        (path, status)
        for method, path, status in watch.api_calls
        if method == "POST" and re.search(r"/(tasks|lists)/\d+/move$", path)
    ]


def _drop(page: Page, watch: Watcher, source: Any, target: Any, said: str) -> tuple[str, int]:
    """Drag ``source`` onto ``target`` (real HTML5 drag events, from Playwright's mouse):
    exactly one move call, and the page says ``said``."""
    before = len(_moves(watch))
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/move")
    ) as answer:
        source.drag_to(target)
    expect(page.locator("#status")).to_have_text(said)
    made = _moves(watch)[before:]
    assert len(made) == 1, made
    assert made[0][1] == answer.value.status, made
    return made[0]


def test_two_tabs_of_one_user_stay_in_step(
    example: Example, browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    email = f"tabs-{secrets.token_hex(4)}@example.com"
    # One browser context: both pages share Better Auth's session cookie, as two tabs do.
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    a = context.new_page()
    watch_a = Watcher(a, example, expected=(401, 409, 422))
    a.goto(example.web + "/")
    _sign_up(a, "Tab Tester", email)
    b = context.new_page()
    watch_b = Watcher(b, example, expected=(401, 410))
    b.goto(example.web + "/")
    expect(b.locator("#who-name")).to_have_text(f"Tab Tester <{email}>")  # signed in already
    for page in (a, b):  # both poll: neither is a hidden tab
        assert page.evaluate("document.visibilityState") == "visible"
    status_a = a.locator("#status")
    # Both stay "visible" whichever is in front; but headless Chromium runs animation frames
    # (which Playwright's actions wait on) briskly only in the front one: the test brings
    # the page it is about to click to the front.
    a.bring_to_front()

    # -- lists: made in A, in B's sidebar (in their order) --
    for title in ("Groceries", "Work"):
        a.get_by_label("New list title").fill(title)
        a.get_by_role("button", name="Add list").click()
        expect(status_a).to_have_text(f"Added the list “{title}”.")
    expect(b.locator("#lists .name")).to_have_text(["Tasks", "Groceries", "Work"], timeout=SYNC_MS)
    _list(a, "Tasks").locator(".select").click()  # A had selected the new list
    expect(a.locator("#list-title")).to_have_text("Tasks")

    # -- a task created in A appears in B, with its priority, due date and tags --
    _add(a, "Plan trip", priority="high", due="2030-05-01", tags="travel, family")
    trip = _row(b, "Plan trip")
    expect(trip).to_be_visible(timeout=SYNC_MS)
    expect(trip.locator(".priority")).to_have_text("high")
    expect(trip.locator(".due")).to_contain_text("2030")
    expect(trip.locator(".tag")).to_have_text(["travel", "family"])
    _add(a, "Pay rent")
    _add(a, "Call mom")
    expect(_top_level(b)).to_have_text(["Plan trip", "Pay rent", "Call mom"], timeout=SYNC_MS)

    # -- subtasks made in A show folded under their task in B --
    _row(a, "Plan trip").get_by_role("button", name="Subtask").click()
    expect(a.locator("#add-under-title")).to_have_text("Plan trip")
    _add(a, "Book flights", under="Plan trip")
    _add(a, "Pack bags", under="Plan trip")
    a.get_by_role("button", name="top level instead").click()
    expect(a.locator("#add-under")).to_be_hidden()
    expect(_subtasks(b, "Plan trip")).to_have_text(["Book flights", "Pack bags"], timeout=SYNC_MS)
    expect(_top_level(b)).to_have_text(["Plan trip", "Pay rent", "Call mom"])
    below_trip = _task(b, "Plan trip").locator(":scope > .subtasks")
    b.bring_to_front()
    _row(b, "Plan trip").get_by_role("button", name="Fold subtasks").click()
    expect(below_trip).to_be_hidden()
    _row(b, "Plan trip").get_by_role("button", name="Unfold subtasks").click()
    expect(below_trip).to_be_visible()
    a.bring_to_front()

    # -- moved in A by drag and drop, moved in B: after a sibling --
    _drop(
        a,
        watch_a,
        _row(a, "Call mom").locator(".handle"),
        _task(a, "Plan trip").locator(":scope > .drop-after"),
        "Moved “Call mom” after “Plan trip”.",
    )
    expect(_top_level(b)).to_have_text(["Plan trip", "Call mom", "Pay rent"], timeout=SYNC_MS)

    # -- into a task: its first subtask --
    _drop(
        a,
        watch_a,
        _row(a, "Pay rent").locator(".handle"),
        _row(a, "Call mom"),
        "Moved “Pay rent” under “Call mom”.",
    )
    expect(_top_level(b)).to_have_text(["Plan trip", "Call mom"], timeout=SYNC_MS)
    expect(_subtasks(b, "Call mom")).to_have_text(["Pay rent"])
    expect(b.locator("#lists .count")).to_have_text(["5", "0", "0"])  # open_count, from the feed

    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "example-web-lists.png"
    b.mouse.move(0, 0)  # no hover marks in the picture
    b.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    with capsys.disabled():
        print(f"\nscreenshot of the example page with lists and subtasks: {shot}")

    # -- onto another list in the sidebar: its top level, subtasks with it --
    _drop(
        a,
        watch_a,
        _row(a, "Call mom").locator(".handle"),
        _list(a, "Work"),
        "Moved “Call mom” to the top of “Work”.",
    )
    expect(_top_level(b)).to_have_text(["Plan trip"], timeout=SYNC_MS)
    expect(b.locator("#lists .count")).to_have_text(["3", "0", "2"])
    b.bring_to_front()
    _list(b, "Work").locator(".select").click()
    expect(_top_level(b)).to_have_text(["Call mom"])
    expect(_subtasks(b, "Call mom")).to_have_text(["Pay rent"])
    _list(b, "Tasks").locator(".select").click()
    a.bring_to_front()

    # -- a list dragged onto another takes its place --
    _drop(a, watch_a, _list(a, "Work"), _list(a, "Tasks"), "Moved the list “Work”.")
    expect(b.locator("#lists .name")).to_have_text(["Work", "Tasks", "Groceries"], timeout=SYNC_MS)

    # -- completed in A (the API completes the subtasks too), completed in B --
    _row(a, "Plan trip").locator(".toggle").check()
    expect(status_a).to_have_text("“Plan trip” done.")
    for title in ("Plan trip", "Book flights", "Pack bags"):
        expect(_task(b, title)).to_have_class(re.compile(r"\bcompleted\b"), timeout=SYNC_MS)
        expect(_row(b, title).locator(".toggle")).to_be_checked()

    # -- a drop that breaks a rule: the API's 422 message, nothing moved --
    _, status = _drop(
        a,
        watch_a,
        _row(a, "Plan trip").locator(".handle"),
        _row(a, "Book flights"),
        "Not moved: A task cannot be moved under itself or one of its subtasks.",
    )
    assert status == 422
    expect(_subtasks(a, "Plan trip")).to_have_text(["Book flights", "Pack bags"])

    # -- the default list cannot be deleted: the API's 409 message --
    a.once("dialog", lambda dialog: dialog.accept())
    _list(a, "Tasks").get_by_role("button", name="Delete list").click()
    expect(status_a).to_have_text(
        "Not deleted: The default list cannot be deleted; rename it, or delete its tasks."
    )

    # -- a list renamed and one deleted in A --
    _list(a, "Groceries").get_by_role("button", name="Rename list").click()
    a.locator("#lists form.list-editor").get_by_label("list title").fill("Shopping")
    a.locator("#lists form.list-editor").get_by_role("button", name="Save").click()
    expect(status_a).to_have_text("Renamed the list “Shopping”.")
    expect(b.locator("#lists .name")).to_have_text(["Work", "Tasks", "Shopping"], timeout=SYNC_MS)
    a.once("dialog", lambda dialog: dialog.accept())
    _list(a, "Shopping").get_by_role("button", name="Delete list").click()
    expect(status_a).to_have_text("Deleted the list “Shopping”.")
    expect(b.locator("#lists .name")).to_have_text(["Work", "Tasks"], timeout=SYNC_MS)

    # -- deleted in A (with its subtasks), gone from B --
    _row(a, "Plan trip").get_by_role("button", name="Delete").click()
    expect(status_a).to_have_text("Deleted “Plan trip” and its 2 subtasks.")
    expect(b.locator("#task-list li.task")).to_have_count(0, timeout=SYNC_MS)
    expect(b.locator("#empty")).to_be_visible()

    # -- the feed answers 410 (cursor too old): B drops its copy and loads everything again --
    changes = re.compile(re.escape(example.api) + r"/api/[^/]+/changes\?cursor=.*")
    refused: list[str] = []

    def too_old(route: Route) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        body = '{"code": 410, "status": "Gone", "message": "Start again without a cursor."}'
        headers = {"Access-Control-Allow-Origin": example.web}
        route.fulfill(status=410, body=body, content_type="application/json", headers=headers)

    b.route(changes, too_old)
    calls = len(watch_b.api_calls)
    _add(a, "After the reload")
    expect(_top_level(b)).to_have_text(["After the reload"], timeout=SYNC_MS)
    b.unroute(changes)
    feed = [(path, status) for method, path, status in watch_b.api_calls[calls:] if method == "GET"]
    assert any(status == 410 for _, status in feed), feed
    assert any(path.endswith("/changes") for path, _ in feed), feed  # loaded again, no cursor

    # -- one move call per drop, and nothing else went wrong --
    assert [status for _, status in _moves(watch_a)] == [200, 200, 200, 200, 422]
    assert _moves(watch_b) == []
    assert watch_a.problems == [], watch_a.problems
    assert watch_b.problems == [], watch_b.problems
    context.close()
