"""Helpers for the tests that need Node.js: find node/npm, install a folder's locked packages.

Used by test_frontend_client.py, test_example_web.py and the Better Auth tests. Without
Node.js or npm those tests skip with the reason, or fail under TASKS_REQUIRE_ALL=1
(conftest.require).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import require

NPM_CI_TIMEOUT = 300  # seconds; only the first run downloads anything
# @redocly/cli 2.x refuses older versions (engines: >=20.19 on the 20 line), and Debian
# bookworm's own nodejs package is 18: CI needs NodeSource's (or a newer Debian's) Node.
MIN_NODE = (20, 19)


def _node_version(node: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        return tuple(int(part) for part in out.lstrip("v").split(".")[:2])
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def require_node(purpose: str, minimum: tuple[int, int] = MIN_NODE) -> tuple[str, str]:
    """The paths of node and npm, or skip (fail under TASKS_REQUIRE_ALL=1) naming ``purpose``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    require(node is not None, f"Node.js is not installed: {purpose} needs it")
    require(npm is not None, f"npm is not installed: {purpose} needs it")
    assert node is not None and npm is not None
    version = _node_version(node)
    wanted = ".".join(map(str, minimum))
    require(
        version is not None and version >= minimum,
        f"Node.js {wanted} or newer is needed for {purpose}; {node} is "
        f"{'.'.join(map(str, version)) if version else 'not runnable'}",
    )
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
