"""The OpenAPI document, the docs page, and a property-based run against the document.

Contract: docs/api.md, "Typed clients" (and its opening): /openapi.json and /docs are
generated from the code, with title, description, version, every route, schemas, examples,
every error response and the bearer JWT scheme; the page works with no internet access.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from conftest import ALICE, TEST_SECRET, make_app
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import insert

from app.auth import create_token
from app.models import Task, db, utcnow

# The six operations, by path shape ({} is any path parameter) and method.
LIST = ("/api/{}/tasks", "get")
CREATE = ("/api/{}/tasks", "post")
GET = ("/api/{}/tasks/{}", "get")
UPDATE = ("/api/{}/tasks/{}", "put")
DELETE = ("/api/{}/tasks/{}", "delete")
TOGGLE = ("/api/{}/tasks/{}/complete", "patch")
OPERATIONS = {LIST: "200", CREATE: "201", GET: "200", UPDATE: "200", DELETE: "204", TOGGLE: "200"}
WITH_TASK_ID = {GET, UPDATE, DELETE, TOGGLE}
WITH_INPUT = {LIST, CREATE, UPDATE, TOGGLE}  # query or body that can be invalid
WITH_BODY = {CREATE, UPDATE, TOGGLE}
JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = document
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path, item in document["paths"].items():
        shape = re.sub(r"\{[^}]+\}", "{}", path)
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found[(shape, method)] = operation
    return found


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if "example" in media or media.get("examples"):
        return True
    schema = resolve(document, media.get("schema", {}))
    if "example" in schema or schema.get("examples"):
        return True
    items = resolve(document, schema.get("items", {}))
    properties = schema.get("properties") or items.get("properties") or {}
    return bool(properties) and all(
        "example" in p or p.get("examples") for p in properties.values()
    )


def test_info(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    info = document["info"]
    for key in ("title", "version", "description"):
        assert isinstance(info.get(key), str) and info[key].strip(), key


def test_bearer_jwt_security_applies_everywhere(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"].lower() == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert {"bearerAuth": []} in document["security"]
    for key, operation in operations(document).items():
        # No operation opts out of the global requirement (`security: []` would).
        if "security" in operation:
            assert {"bearerAuth": []} in operation["security"], key


def test_every_operation_is_documented(document: dict[str, Any]) -> None:
    documented = operations(document)
    assert set(OPERATIONS) <= set(documented), sorted(documented)
    for key, success in OPERATIONS.items():
        operation = documented[key]
        assert isinstance(operation.get("summary"), str) and operation["summary"].strip(), key
        responses = operation["responses"]
        expected = {success, "401", "403", "500"}
        if key in WITH_TASK_ID:
            expected.add("404")
        if key in WITH_INPUT:
            expected.add("422")
        if key in WITH_BODY:
            expected |= {"400", "413", "415"}  # unreadable, too large, not JSON
        assert expected <= set(responses), (key, sorted(responses))

        for code in expected - {success}:
            response = resolve(document, responses[code])
            assert response.get("description"), (key, code)
            schema = resolve(document, response["content"]["application/json"]["schema"])
            assert {"code", "status", "message"} <= set(schema["properties"]), (key, code)
            assert {"code", "status", "message"} <= set(schema.get("required", [])), (key, code)

        ok = resolve(document, responses[success])
        if success == "204":
            assert not ok.get("content"), key
        else:
            media = ok["content"]["application/json"]
            assert _has_example(document, media), (key, success)

        if key in WITH_BODY:
            body = resolve(document, operation["requestBody"])
            media = body["content"]["application/json"]
            assert _has_example(document, media), key
            # Nothing the server assigns may be sent.
            schema = resolve(document, media["schema"])
            for name, prop in schema["properties"].items():
                if name in ("id", "user_id", "created_at", "updated_at"):
                    assert prop.get("readOnly") is True, (key, name)
        if key == TOGGLE:
            assert body.get("required") is not True  # the body is optional

    # Path parameters are declared with their types.
    for path, item in document["paths"].items():
        declared = {
            p["name"]
            for p in item.get("parameters", [])
            + [p for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]
            if p.get("in") == "path"
        }
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), path


def test_list_parameters_are_documented(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in operations(document)[LIST].get("parameters", [])}
    assert set(parameters["status"]["schema"]["enum"]) == {"all", "pending", "completed"}
    assert set(parameters["sort"]["schema"]["enum"]) == {
        "created",
        "updated",
        "title",
        "due_date",
        "priority",
        "position",
    }
    assert set(parameters["order"]["schema"]["enum"]) == {"asc", "desc"}
    assert parameters["page"]["schema"]["minimum"] == 1
    assert parameters["page_size"]["schema"]["minimum"] == 1
    assert parameters["page_size"]["schema"]["maximum"] == 500


def _invalid_schemas(document: dict[str, Any]) -> list[str]:
    """Every Schema Object in the document checked against the JSON Schema 2020-12 meta-schema
    (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""
    schemas = {f"components/schemas/{n}": s for n, s in document["components"]["schemas"].items()}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            parameters = operation if method == "parameters" else operation.get("parameters", [])
            for parameter in parameters:
                schemas[f"{path} {method} {parameter['name']}"] = parameter["schema"]
    invalid = []
    for where, schema in schemas.items():
        try:
            jsonschema_rs.meta.validate({"$schema": JSON_SCHEMA_2020_12, **schema})
        except jsonschema_rs.ValidationError as exc:
            invalid.append(f"{where}: {exc.message} at {list(exc.instance_path)}")
    return invalid


def test_document_schemas_are_valid_json_schema(document: dict[str, Any]) -> None:
    assert _invalid_schemas(document) == []


def test_update_body_requires_a_field(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["TaskUpdate"]["minProperties"] == 1


class _AssetCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href"):
            if attributes.get(name):
                self.assets.append(attributes[name])  # type: ignore[arg-type]


def test_docs_page_works_offline(client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/openapi.json" in html

    collector = _AssetCollector()
    collector.feed(html)
    assert collector.scripts and collector.assets
    for url in collector.assets:
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|//)", url, re.IGNORECASE), (
            f"/docs loads {url} from elsewhere; it must work with no internet access"
        )
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.data, url


# ---------------------------------------------------------------------------
# Property-based: schemathesis against the service's own document.
# ---------------------------------------------------------------------------

# Seeded tasks get fixed ids, far above anything a sequence hands out during the tests,
# so the (import-time) configuration below can point generated task ids at them.
SEEDED_IDS = [4_000_000_001 + i for i in range(6)]

CONFIG = {
    "headers": {"Authorization": f"Bearer {create_token(TEST_SECRET, ALICE, ttl=6 * 3600)}"},
    "parameters": {
        # Always ALICE's own path: any other user_id only ever gets its 403.
        "path.user_id": ALICE,
        # Half of the generated task ids are ALICE's existing (seeded) tasks.
        "path.task_id": {"dictionary": "seeded_task_ids", "probability": 0.5},
    },
    "dictionaries": {"seeded_task_ids": {"values": SEEDED_IDS}},
}

# Schemathesis needs the schema when the module is collected, before any fixture runs.
# The document does not depend on the database, so a throwaway app serves it here;
# every request is then sent to the session `app` fixture (`case.call_and_validate(app=app)`).
_DOCUMENT_APP = make_app("sqlite://")
schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", _DOCUMENT_APP, config=schemathesis.Config.from_dict(CONFIG)
)


# The default response checks, minus positive_data_acceptance / negative_data_rejection:
# the API rejects some schema-valid input on purpose (a title of white space only is empty
# once trimmed; NUL characters and lone surrogates cannot be stored),
# so "valid by the schema" does not imply 2xx, and a 422 for such input is the contract.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

HYPOTHESIS_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def seeded_tasks(app: Flask, make_task) -> list[dict[str, Any]]:
    """ALICE's tasks with the ids in SEEDED_IDS, top level in her default list after the
    task make_task adds (which also adds her users row and default list)."""
    first = make_task(ALICE, "Seeded by make_task")
    now = utcnow()
    rows = [
        {
            "id": task_id,
            "user_id": ALICE,
            "title": f"Seeded task {i}",
            "description": None if i % 2 else f"Notes {i}",
            "completed": i == 0,
            "list_id": first["list_id"],
            "position": f"a{i + 1}",  # after make_task's first key, a0
            "created_at": now,
            "updated_at": now,
        }
        for i, task_id in enumerate(SEEDED_IDS)
    ]
    with app.app_context():
        db.session.execute(insert(Task.__table__), rows)
        db.session.commit()
        db.session.remove()
    return rows


def _call_and_validate(case: schemathesis.Case, app: Flask, seeded: list[dict[str, Any]]) -> None:
    assert case.path_parameters["user_id"] == ALICE
    assert case.headers["Authorization"].startswith("Bearer ")
    response = case.call_and_validate(app=app, checks=CHECKS)
    if case.method.upper() == "DELETE" and response.status_code == 204:
        _restore(app, seeded, case.path_parameters["task_id"])


def _restore(app: Flask, seeded: list[dict[str, Any]], task_id: Any) -> None:
    """Put a deleted seeded task back, same id, so later cases can still find it."""
    for task in seeded:
        if str(task["id"]) == str(task_id):
            with app.app_context():
                db.session.execute(insert(Task.__table__).values(**task))
                db.session.commit()
                db.session.remove()


@schema.parametrize()
@HYPOTHESIS_SETTINGS
def test_api_conforms_to_its_document(
    case: schemathesis.Case, app: Flask, seeded_tasks: list[dict[str, Any]]
) -> None:
    _call_and_validate(case, app, seeded_tasks)
