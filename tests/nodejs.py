"""Helpers for the tests that need Node.js: find node/npm, install a folder's locked packages.

Used by test_frontend_client.py and test_example_web.py. Without Node.js or npm those tests
skip with the reason, or fail under TASKS_REQUIRE_ALL=1 (conftest.require).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import require

NPM_CI_TIMEOUT = 300  # seconds; only the first run downloads anything


def require_node(purpose: str) -> tuple[str, str]:
    """The paths of node and npm, or skip (fail under TASKS_REQUIRE_ALL=1) naming ``purpose``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    require(node is not None, f"Node.js is not installed: {purpose} needs it")
    require(npm is not None, f"npm is not installed: {purpose} needs it")
    assert node is not None and npm is not None
    return node, npm


def node_env(**extra: str) -> dict[str, str]:
    """The environment for node tools: quiet, no telemetry, nothing of the developer's NODE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NODE_", "BETTER_AUTH_"))}
    env.update(
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        REDOCLY_TELEMETRY="off",  # @redocly/cli sends usage data unless told not to
        REDOCLY_SUPPRESS_UPDATE_NOTICE="true",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def npm_ci(directory: Path) -> None:
    """``npm ci`` in ``directory`` when node_modules is missing or older than the lock file."""
    lock = directory / "package-lock.json"
    # npm rewrites node_modules/.package-lock.json on every install: its age is the install's.
    installed = directory / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    _, npm = require_node(f"npm ci in {directory}")
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            env=node_env(),
        )
    except subprocess.TimeoutExpired:
        require(False, f"npm ci in {directory} took longer than {NPM_CI_TIMEOUT} s")
        return
    tail = (result.stdout + result.stderr)[-2000:]
    require(result.returncode == 0, f"npm ci in {directory} failed:\n{tail}")
