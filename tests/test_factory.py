"""The application factory, its configuration, the WSGI entry point and the CLI.

Contract: docs/api.md, "Authentication" (tokens are always checked: the service fails closed
without a way to verify them); README.md, "Configuration" (``DATABASE_URL``: postgres:// and
postgresql:// accepted; SQLite by default).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import ALICE, BOB, TEST_SECRET, make_app, stored_user
from flask import Flask
from support import (
    GUNICORN_NAMES,
    NOT_INHERITED,
    SHIPPED_WORKERS,
    config_names,
    service_env,
    service_names,
)

from app import create_app
from app.config import ConfigError, from_env, normalize_database_url
from app.models import db

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the secret


@pytest.mark.parametrize("secret", [None, ""], ids=["unset", "empty"])
def test_refuses_to_start_without_a_secret(database_url: str, secret: str | None) -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_app(database_url, BETTER_AUTH_SECRET=secret)
    message = str(excinfo.value)
    assert "BETTER_AUTH_SECRET" in message
    assert "\n" not in message


def test_refuses_a_31_character_secret(database_url: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_app(database_url, BETTER_AUTH_SECRET="s" * 31)
    message = str(excinfo.value)
    assert "31" in message and "32" in message
    assert "s" * 31 not in message  # the secret itself is never echoed
    assert "\n" not in message


def test_starts_with_a_32_character_secret(app: Flask, database_url: str) -> None:
    secret = "k" * 32
    started = make_app(database_url, BETTER_AUTH_SECRET=secret)
    try:
        assert started.config["BETTER_AUTH_SECRET"] == secret
        client = started.test_client()
        token = jwt.encode({"sub": ALICE, "exp": 2**31 - 1}, secret, algorithm="HS256")
        resp = client.get(f"/api/{ALICE}/tasks", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200
        assert resp.get_json() == []
        # A token signed with another secret is refused.
        other = jwt.encode({"sub": ALICE, "exp": 2**31 - 1}, TEST_SECRET, algorithm="HS256")
        resp = client.get(f"/api/{ALICE}/tasks", headers={"Authorization": f"Bearer {other}"})
        assert resp.status_code == 401
        assert resp.get_json()["code"] == 401
    finally:
        with started.app_context():
            db.engine.dispose()


def test_secret_algorithms_outside_hs_family_are_refused(database_url: str) -> None:
    for algorithms in (["none"], ["RS256"], ["HS256", "ES256"]):
        with pytest.raises(ConfigError):
            make_app(database_url, JWT_SECRET_ALGORITHMS=algorithms)


def test_negative_leeway_is_refused(database_url: str) -> None:
    with pytest.raises(ConfigError):
        make_app(database_url, JWT_LEEWAY=-1)


def test_from_env_reads_the_secret_from_the_given_mapping() -> None:
    config = from_env({"BETTER_AUTH_SECRET": "x" * 40, "JWT_LEEWAY": "45"})
    assert config["BETTER_AUTH_SECRET"] == "x" * 40
    assert config["JWT_LEEWAY"] == 45
    assert config["JWT_SECRET_ALGORITHMS"] == ["HS256"]
    assert from_env({"BETTER_AUTH_SECRET": ""})["BETTER_AUTH_SECRET"] is None


def test_from_env_rejects_a_non_integer_setting() -> None:
    with pytest.raises(ConfigError) as excinfo:
        from_env({"JWT_LEEWAY": "thirty"})
    assert "JWT_LEEWAY" in str(excinfo.value)


# --------------------------------------------------------------------------- the database URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db.example.com:5432/tasks", "postgresql://u:p@db.example.com:5432/tasks"),
        (
            "postgres://u:p@ep-x.neon.tech/neondb?sslmode=require",
            "postgresql://u:p@ep-x.neon.tech/neondb?sslmode=require",
        ),
        ("postgresql://u:p@h/db", "postgresql://u:p@h/db"),
        ("postgresql+psycopg2://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
        ("sqlite:///tmp/tasks.db", "sqlite:///tmp/tasks.db"),
        ("sqlite:///postgres://odd.db", "sqlite:///postgres://odd.db"),
    ],
)
def test_normalize_database_url(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_from_env_normalises_postgres_scheme() -> None:
    config = from_env({"DATABASE_URL": "postgres://u:p@h:5432/db?sslmode=require"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql://u:p@h:5432/db?sslmode=require"


@pytest.mark.parametrize("env", [{}, {"DATABASE_URL": ""}, {"DATABASE_URL": "   "}], ids=repr)
def test_from_env_without_database_url_means_default(env: dict[str, str]) -> None:
    assert from_env(env)["SQLALCHEMY_DATABASE_URI"] is None


def test_create_app_normalises_database_url_from_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.invalid:5432/tasks?sslmode=require")
    built = create_app({"TESTING": True, "BETTER_AUTH_SECRET": TEST_SECRET})
    assert built.config["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql://u:p@db.invalid:5432/tasks?sslmode=require"
    )
    with built.app_context():
        assert db.engine.url.drivername == "postgresql"
        assert db.engine.url.query["sslmode"] == "require"
        db.engine.dispose()


def test_default_database_is_sqlite_in_instance_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    built = create_app({"TESTING": True, "BETTER_AUTH_SECRET": TEST_SECRET})
    uri = built.config["SQLALCHEMY_DATABASE_URI"]
    assert uri.startswith("sqlite:///")
    db_file = Path(uri[len("sqlite:///") :])
    assert db_file.parent == Path(built.instance_path)
    assert db_file.name == "tasks.db"
    assert Path(built.instance_path) == REPO_ROOT / "instance"
    with built.app_context():
        assert db.engine.url.drivername == "sqlite"
        db.engine.dispose()


# --------------------------------------------------------------------------- wsgi.py


def _wsgi_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Only the settings given count (support.service_env): no stray .env, no shell."""
    env = service_env(DATABASE_URL="sqlite:///" + str(tmp_path / "wsgi-test.db"), **overrides)
    return {k: v for k, v in env.items() if not k.startswith(("FLASK_", "PYTEST_"))}


WSGI_CASES = {
    "no-secret": {"BETTER_AUTH_SECRET": ""},
    "31-chars": {"BETTER_AUTH_SECRET": "s" * 31},
    "32-chars": {"BETTER_AUTH_SECRET": "v" * 32},
}


@pytest.fixture(scope="module")
def wsgi_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """``python -c "import wsgi"`` from the repository root, the cases run in parallel."""
    tmp_path = tmp_path_factory.mktemp("wsgi")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", "import wsgi"],
            cwd=REPO_ROOT,
            env=_wsgi_env(tmp_path, **overrides),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, overrides in WSGI_CASES.items()
    }
    results = {}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=120)
        results[name] = (proc.returncode, output)
    return results


def test_configuration_variables_are_discovered() -> None:
    names = config_names()
    assert {"DATABASE_URL", "BETTER_AUTH_SECRET", "JWT_LEEWAY"} <= names
    # Settings a hand-written list once missed (conftest.py now clears every recorded name).
    assert {
        "JWKS_MIN_REFRESH_SECONDS",
        "CORS_MAX_AGE",
        "DB_POOL_SIZE",
        "DB_CONNECT_TIMEOUT",
    } <= names


# os.environ.get("NAME"...), os.environ.setdefault("NAME"...), os.environ["NAME"],
# os.getenv("NAME"...), "NAME" in os.environ.
_NAME = r"""["']([A-Za-z_][A-Za-z0-9_]*)["']"""
ENV_READ = re.compile(
    rf"os\.(?:environ\.(?:get|setdefault|pop)\(|environ\[|getenv\()\s*{_NAME}"
    rf"|{_NAME}\s+(?:not\s+)?in\s+os\.environ\b"
)


def environment_reads(path: Path) -> set[str]:
    return {a or b for a, b in ENV_READ.findall(path.read_text())}


def test_gunicorn_names_are_what_gunicorn_conf_reads() -> None:
    """support.GUNICORN_NAMES, which no test's gunicorn inherits, is the file's list."""
    source = REPO_ROOT / "gunicorn.conf.py"
    assert environment_reads(source) == GUNICORN_NAMES
    # And SHIPPED_WORKERS, the workers a test's gunicorn waits for, is its default.
    assert f'os.environ.get("WEB_CONCURRENCY", "{SHIPPED_WORKERS}")' in source.read_text()


def test_every_variable_the_service_reads_is_cleared_for_tests() -> None:
    """Whatever the app or wsgi.py reads straight from the environment is a name the tests
    clear (conftest.py) and never pass on to a process of theirs (support.service_env)."""
    sources = [REPO_ROOT / "wsgi.py", *sorted((REPO_ROOT / "app").rglob("*.py"))]
    read = set().union(*(environment_reads(path) for path in sources))
    assert read <= service_names(), sorted(read - service_names())


def test_service_env_inherits_no_setting_and_loads_no_dotenv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in service_names() | NOT_INHERITED:
        monkeypatch.setenv(name, "from-the-shell")
    monkeypatch.setenv("PYTHON_DOTENV_DISABLED", "0")
    env = service_env(LOG_FORMAT="json")
    assert env["PYTHON_DOTENV_DISABLED"] == "1"
    assert env["LOG_FORMAT"] == "json"
    leaked = {k for k, v in env.items() if v == "from-the-shell"}
    assert not leaked, sorted(leaked)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no-secret", "31-chars"])
def test_wsgi_refuses_to_start_with_one_line(
    wsgi_runs: dict[str, tuple[int, str]], case: str
) -> None:
    returncode, output = wsgi_runs[case]
    assert returncode != 0, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "refusing to start" in lines[0]
    assert "BETTER_AUTH_SECRET" in lines[0]
    secret = WSGI_CASES[case]["BETTER_AUTH_SECRET"]
    if secret:
        assert secret not in output


@pytest.mark.slow
def test_wsgi_starts_with_a_valid_secret(wsgi_runs: dict[str, tuple[int, str]]) -> None:
    returncode, output = wsgi_runs["32-chars"]
    assert returncode == 0, output
    assert "Traceback" not in output
    assert "refusing" not in output


# --------------------------------------------------------------------------- flask token create


def test_cli_token_create_prints_a_working_token(runner: Any, client: Any) -> None:
    result = runner.invoke(args=["token", "create", ALICE])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    token = lines[0]
    assert token.count(".") == 2
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == ALICE
    assert claims["exp"] > claims["iat"]
    resp = client.get(f"/api/{ALICE}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert resp.get_json() == []
    # The token is for ALICE only.
    other = client.get(f"/api/{BOB}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403


def test_cli_token_create_with_claims(app: Flask, runner: Any, client: Any) -> None:
    result = runner.invoke(
        args=["token", "create", BOB, "--ttl", "120", "--email", "bob@example.com", "--name", "Bob"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 120
    resp = client.post(
        f"/api/{BOB}/tasks",
        json={"title": "From CLI"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 201
    user = stored_user(app, BOB)
    assert user is not None and (user["email"], user["name"]) == ("bob@example.com", "Bob")


def test_cli_token_with_negative_ttl_is_expired(runner: Any, client: Any) -> None:
    result = runner.invoke(args=["token", "create", ALICE, "--ttl", "-3600"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    resp = client.get(f"/api/{ALICE}/tasks", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
