"""What the API sends for a task is what its documented schema says.

docs/api.md, "A task" and "Typed clients": every field always present, in its order, of
its documented type; nullable exactly where the document says so; read-only exactly the
fields a create refuses. The document (``/openapi.json``) and the bytes of the answers
come from one definition, and this test keeps them from drifting apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from conftest import ALICE, tasks_url

JSON_TYPES = {
    "integer": int,
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def task_schema(document: dict[str, Any]) -> dict[str, Any]:
    get_task = document["paths"]["/api/{user_id}/tasks/{task_id}"]["get"]
    content = get_task["responses"]["200"]["content"]["application/json"]
    return resolve(document, content["schema"])


def allowed_types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, list):
        return set(declared)
    if declared is not None:
        return {declared}
    return {t for option in schema.get("anyOf", []) for t in allowed_types(option)}


def assert_matches(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str):
    schema = resolve(document, schema)
    types = allowed_types(schema)
    if value is None:
        assert "null" in types, f"{where} is null, which the document does not allow"
        return
    kind = next(t for t in types if t != "null")
    assert type(value) is JSON_TYPES[kind], f"{where}: {value!r} is not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], where
    if schema.get("format") == "date-time":
        assert datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None, where
    if kind == "array":
        for i, item in enumerate(value):
            assert_matches(document, schema["items"], item, f"{where}[{i}]")


# One task with every nullable field set, one with each of them null.
FULL = {
    "title": "Buy milk",
    "description": "Two litres",
    "completed": True,
    "priority": "high",
    "due_date": "2026-12-24T17:00:00+01:00",
    "tags": ["errands", "home"],
}
BARE = {"title": "Call mum"}


@pytest.mark.parametrize("body", [FULL, BARE], ids=["every-field-set", "nullable-fields-null"])
def test_a_task_as_sent_is_a_task_as_documented(
    client: Any, alice: dict[str, str], body: dict[str, Any]
) -> None:
    document = client.get("/openapi.json").get_json()
    schema = task_schema(document)
    created = client.post(tasks_url(ALICE), json=body, headers=alice)
    assert created.status_code == 201, created.get_json()
    answers = {
        "create": created.get_json(),
        "get": client.get(tasks_url(ALICE, created.get_json()["id"]), headers=alice).get_json(),
        "list": client.get(tasks_url(ALICE), headers=alice).get_json()[0],
    }
    for route, task in answers.items():
        # The same names, in the documented order, always all of them.
        assert list(task) == list(schema["properties"]), route
        assert set(schema["required"]) == set(task), route
        for name, value in task.items():
            assert_matches(document, schema["properties"][name], value, f"{route}: {name}")


def test_nullable_in_the_document_means_null_is_sent_for_some_task(
    client: Any, alice: dict[str, str]
) -> None:
    document = client.get("/openapi.json").get_json()
    schema = task_schema(document)
    nullable = {
        name
        for name, prop in schema["properties"].items()
        if "null" in allowed_types(resolve(document, prop))
    }
    created = client.post(tasks_url(ALICE), json=BARE, headers=alice).get_json()
    assert {name for name, value in created.items() if value is None} == nullable


def test_read_only_in_the_document_means_a_create_refuses_it(
    client: Any, alice: dict[str, str]
) -> None:
    document = client.get("/openapi.json").get_json()
    schema = task_schema(document)
    sample = client.post(tasks_url(ALICE), json=FULL, headers=alice).get_json()
    for name, prop in schema["properties"].items():
        read_only = resolve(document, prop).get("readOnly", False)
        response = client.post(
            tasks_url(ALICE), json={"title": "t", name: sample[name]}, headers=alice
        )
        if read_only:
            assert response.status_code == 422, name
            assert name in response.get_json()["errors"]["json"], name
        else:
            assert response.status_code == 201, (name, response.get_json())
