"""What the project's own documents say about the code, checked against the code: the
README's layout names every module, bench/README.md names every benchmark route, and
.env.example documents every variable the service, gunicorn.conf.py and nginx's template
read.
"""

from __future__ import annotations

import importlib.util
import re
import sys

from support import GUNICORN_NAMES, REPO, config_names

README = (REPO / "README.md").read_text()


def test_the_readme_layout_names_every_module_of_the_app() -> None:
    modules = {
        str(path.relative_to(REPO))
        for path in (REPO / "app").rglob("*.py")
        if path.stem != "__init__"
    }
    packages = {f"{path.parent.relative_to(REPO)}/" for path in (REPO / "app").rglob("__init__.py")}
    layout = README[README.index("- Layout") :]
    layout = layout[: layout.index("\n- ", 1)]
    named = set(re.findall(r"`(app/[\w/]*(?:\.py)?)`", layout))
    for package in sorted(packages - {"app/"}):
        # A package named as a whole names its modules, as their bare file names.
        if package in named:
            described = layout[layout.index(f"`{package}`") :].split("\n  - ")[0]
            named |= {package + name for name in re.findall(r"`(\w+\.py)`", described)}
    missing = {module for module in modules if module not in named}
    assert not missing, f"README.md's layout does not name: {sorted(missing)}"
    assert "app/__init__.py" in named


def _bench_run_routes() -> tuple[str, ...]:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return tuple(module.ROUTES)
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_the_benchmark_readme_names_every_route() -> None:
    text = (REPO / "bench" / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `--routes LIST`"))
    documented = re.search(r"subset of `([^`]+)`", row)
    assert documented is not None, row
    assert tuple(documented.group(1).split(",")) == _bench_run_routes()


def test_env_example_documents_every_variable() -> None:
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    template = (REPO / "deploy" / "nginx.conf").read_text()
    # nginx's placeholders an operator sets (NGINX_REAL_IP_FROM is made from
    # NGINX_TRUSTED_PROXIES; TASKS_API_SERVERS and NGINX_LISTEN by whoever starts nginx).
    nginx = {"NGINX_CONN_PER_ADDRESS", "NGINX_TRUSTED_PROXIES"}
    assert all(f"${{{name}}}" in template for name in nginx - {"NGINX_TRUSTED_PROXIES"})
    wanted = set(config_names()) | set(GUNICORN_NAMES) | nginx
    assert not wanted - documented, f".env.example misses: {sorted(wanted - documented)}"
