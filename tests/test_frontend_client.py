"""What a TypeScript frontend developer does with the API, done for real.

Issue 13 part 2 (and issue 14's OpenAPI part): from the live service's ``/openapi.json``,
generate the types with ``openapi-typescript`` (default options, as its README runs it),
type-check ``tests/frontend/client-check.ts`` (an ``openapi-fetch`` program) with
``tsc --strict``, lint the document with ``@redocly/cli``, then run the program with node
against the live service.

The npm packages are pinned by ``tests/frontend/package-lock.json``; the first run installs
them (``npm ci``, needs the npm registry). Without Node.js the tests skip, or fail under
TASKS_REQUIRE_ALL=1. Everything generated goes to a temp folder, never into the tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import ALICE, TEST_SECRET, serving
from flask import Flask
from nodejs import node_env, npm_ci, require_node

from app.auth import create_token

pytestmark = pytest.mark.slow

FRONTEND = Path(__file__).resolve().parent / "frontend"
STEP_TIMEOUT = 180  # seconds for any one tool run
# The program's sources; the generated schema.d.ts joins them in the work folder.
SOURCES = ("client-check.ts", "tsconfig.json", "package.json")

# Warnings of `redocly lint` (its built-in "recommended" rules) that are accepted, each
# with the reason. Errors are never accepted.
ACCEPTED_LINT_WARNINGS: dict[str, str] = {
    # The service is not published under a licence; there is none to name.
    "info-license": "no licence to state",
}


class Workspace:
    """A temp folder holding the fetched document, the generated types and the program."""

    def __init__(self, root: Path, api_url: str) -> None:
        self.root = root
        self.api_url = api_url
        self.node, self.npm = require_node("the typed-client check")

    def npx(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        npx = shutil.which("npx")
        assert npx is not None, "npx is missing although npm is installed"
        # --no: use the locked local packages, never download one on the fly.
        return self.run(npx, "--no", "--", *args, timeout=timeout)

    def run(
        self, *args: str, timeout: float = STEP_TIMEOUT, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=node_env(**env),
            stdin=subprocess.DEVNULL,
        )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}".strip()


def _expect_ok(result: subprocess.CompletedProcess[str], what: str) -> None:
    """Fail with the tool's own output (the compiler's errors, say), not a repr of it."""
    if result.returncode != 0:
        pytest.fail(f"{what}:\n{_output(result)}", pytrace=False)


@pytest.fixture(scope="module")
def api_url(app: Flask) -> Iterator[str]:
    """The app behind a real threaded HTTP server, for the whole module (like live_server)."""
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def workspace(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Document fetched, types generated: what `npx openapi-typescript URL -o schema.d.ts` gives."""
    require_node("the typed-client check")
    npm_ci(FRONTEND)
    work = Workspace(tmp_path_factory.mktemp("frontend"), api_url)
    for name in SOURCES:
        shutil.copy(FRONTEND / name, work.root / name)
    (work.root / "node_modules").symlink_to(FRONTEND / "node_modules", target_is_directory=True)

    resp = requests.get(f"{api_url}/openapi.json", timeout=10)
    assert resp.status_code == 200, resp.text
    (work.root / "openapi.json").write_bytes(resp.content)

    result = work.npx("openapi-typescript", "openapi.json", "-o", "schema.d.ts")
    _expect_ok(result, "openapi-typescript failed")
    assert (work.root / "schema.d.ts").stat().st_size > 0
    return work


def test_generated_client_compiles_under_tsc_strict(workspace: Workspace) -> None:
    result = workspace.npx("tsc", "--noEmit", "-p", "tsconfig.json")
    _expect_ok(
        result,
        "client-check.ts does not compile against the types generated from /openapi.json"
        " (tsc --strict)",
    )


def test_openapi_document_lints_without_errors(workspace: Workspace) -> None:
    result = workspace.npx("redocly", "lint", "openapi.json", "--format=json")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"redocly lint gave no JSON report:\n{_output(result)}")
    problems = [
        f"{p['severity']} {p['ruleId']}: {p['message']} at "
        + ", ".join(loc.get("pointer", "?") for loc in p.get("location", []))
        for p in report["problems"]
    ]
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    if report["totals"]["errors"] or errors:
        pytest.fail("redocly lint found errors:\n" + "\n".join(problems), pytrace=False)
    unexplained = [
        line
        for p, line in zip(report["problems"], problems, strict=True)
        if p["severity"] == "warn" and p["ruleId"] not in ACCEPTED_LINT_WARNINGS
    ]
    assert not unexplained, "redocly lint warnings not accepted:\n" + "\n".join(unexplained)


def test_client_program_runs_against_the_live_service(workspace: Workspace, app: Flask) -> None:
    # The same program, compiled for node (Node 20 cannot run TypeScript itself).
    result = workspace.npx("tsc", "-p", "tsconfig.json", "--noEmitOnError")
    _expect_ok(result, "client-check.ts does not compile, so it cannot run")
    program = workspace.root / "out" / "client-check.js"
    assert program.exists(), sorted(p.name for p in (workspace.root / "out").iterdir())

    result = workspace.run(
        workspace.node,
        str(program),
        API_URL=workspace.api_url,
        USER_ID=ALICE,
        TOKEN=create_token(TEST_SECRET, ALICE),
    )
    _expect_ok(result, "client-check against the live service")
    assert "checks passed" in result.stdout, _output(result)
