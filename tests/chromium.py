"""Helpers for the tests that drive a real Chromium: the Debian ``chromium`` package through
Playwright's sync API (Playwright's own browser download is not used).

Used by test_browser.py and test_example_web.py. Without Chromium or Playwright those tests
skip with the reason, or fail under TASKS_REQUIRE_ALL=1 (conftest.require).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conftest import require

try:
    from playwright.sync_api import sync_playwright

    PLAYWRIGHT_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - depends on the environment
    PLAYWRIGHT_ERROR = f"{type(exc).__name__}: {exc}"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # every browser wait is bounded by this


def require_browser() -> None:
    require(
        os.path.exists(CHROMIUM),
        "Chromium is not installed (apt-get install chromium): browser tests need it",
    )
    require(
        PLAYWRIGHT_ERROR is None,
        f"Playwright for Python does not import ({PLAYWRIGHT_ERROR}): pip install playwright",
    )


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), closed afterwards."""
    require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS
        )
        try:
            yield browser
        finally:
            browser.close()
