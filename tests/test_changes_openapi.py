"""The changes feed in the OpenAPI document.

Contract: docs/api.md, "Routes" (`listChanges`: `GET /api/{user_id}/changes`), "Sync: GET
/api/{user_id}/changes" (the parameters `cursor` and `limit` 1-1000, default 500; the page
`{"changes", "cursor", "has_more"}`; an item `{"type", "id", "deleted", "etag", "data"}`
whose `data` is the task or list as `GET` answers it, or `{"type", "id", "deleted": true}`;
the `410` and the `422`), "Errors" (one shape) and "Typed clients" (every always-present
field in `required`; the change item a union that a generated client narrows on `type`,
then on `deleted`: one schema per kind, each with a one-value `enum`, no other properties).
As for every optional parameter (tests/test_beyond_openapi.py): no `example` that Swagger
UI's "Try it out" would send; the example is in the description, "Example: `...`".
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonschema_rs
import pytest
from conftest import ALICE, lists_url, tasks_url
from support import assert_error_body
from test_beyond_openapi import described_example, error_schema, parameter, response, types
from test_changes import changes_url, first_load, read_all
from test_openapi import operations, resolve
from test_organizing_openapi import media_examples, validator
from test_subtasks import build, new_list

from app.changes.schemas import Cursor

PATH = "/api/{user_id}/changes"
CHANGES = ("/api/{}/changes", "get")
# (type, deleted) -> the schema `data` refers to (None: a deletion has no data), and the
# GET whose answer `data` is.
KINDS: dict[tuple[str, bool], tuple[str | None, str | None]] = {
    ("list", False): ("TaskList", "/api/{user_id}/lists/{list_id}"),
    ("list", True): (None, None),
    ("task", False): ("Task", "/api/{user_id}/tasks/{task_id}"),
    ("task", True): (None, None),
}
ERRORS = {"410": "Gone", "422": "Unprocessable Entity"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def the_operation(document) -> dict[str, Any]:
    found = operations(document)
    assert CHANGES in found, sorted(found)
    return found[CHANGES]


def page_schema(document) -> dict[str, Any]:
    ok = response(document, the_operation(document), "200")
    return ok["content"]["application/json"]["schema"]


def item_schemas(document) -> dict[tuple[str, bool], dict[str, Any]]:
    """The page's item schemas by (type, deleted), each read from its one-value enums."""
    changes = resolve(document, page_schema(document))["properties"]["changes"]
    assert changes.get("type") == "array", changes
    variants = changes["items"].get("oneOf")
    assert isinstance(variants, list) and len(variants) == len(KINDS), changes["items"]
    found = {}
    for variant in variants:
        schema = resolve(document, variant)
        key = (schema["properties"]["type"]["enum"][0], schema["properties"]["deleted"]["enum"][0])
        assert key not in found, key
        found[key] = schema
    return found


# --------------------------------------------------------------------------- the operation


def test_list_changes_is_the_get_of_changes(document):
    by_id = {
        operation["operationId"]: (path, method)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert by_id.get("listChanges") == (PATH, "get"), by_id.get("listChanges")
    operation = the_operation(document)
    assert isinstance(operation.get("summary"), str) and operation["summary"].strip()
    user_id = parameter(document["paths"][PATH], document, "user_id", "path")
    assert user_id["required"] is True


PARAMETERS = {  # name -> (JSON types, what the schema states)
    "cursor": ({"string"}, {}),
    "limit": ({"integer"}, {"minimum": 1, "maximum": 1000, "default": 500}),
}


@pytest.mark.parametrize("name", PARAMETERS)
def test_cursor_and_limit_are_optional_query_parameters_without_an_example(document, name):
    param = parameter(the_operation(document), document, name, "query")
    schema = resolve(document, param["schema"])
    assert not param.get("required", False), param
    assert isinstance(param.get("description"), str) and param["description"].strip(), param
    expected_types, stated = PARAMETERS[name]
    assert types(schema) == expected_types, schema
    assert {key: schema.get(key) for key in stated} == stated, schema
    for node in (param, schema):  # Swagger UI's "Try it out" would send it
        assert "example" not in node and "examples" not in node, node


@pytest.mark.parametrize("name", PARAMETERS)
def test_cursor_and_limit_have_their_example_in_the_description(document, name):
    param = parameter(the_operation(document), document, name, "query")
    schema = resolve(document, param["schema"])
    example = described_example(param, schema)
    value = int(example) if "integer" in types(schema) else example
    assert jsonschema_rs.validator_for(schema).is_valid(value), (value, schema)


def test_every_status_the_feed_answers_is_documented(document):
    responses = the_operation(document)["responses"]
    expected = {"200", "401", "403", "410", "422", "429", "500", "503"}
    assert expected <= set(responses), sorted(expected - set(responses))


# --------------------------------------------------------------------------- the page


def test_200_is_a_changes_page_of_changes_cursor_and_has_more(document):
    ref = page_schema(document)
    assert ref.get("$ref") == "#/components/schemas/ChangesPage", ref
    schema = resolve(document, ref)
    assert schema.get("type") == "object", schema
    assert set(schema["properties"]) == {"changes", "cursor", "has_more"}, schema
    assert set(schema.get("required", [])) == {"changes", "cursor", "has_more"}, schema
    assert schema.get("additionalProperties") is False, schema
    assert types(schema["properties"]["cursor"]) == {"string"}
    assert types(schema["properties"]["has_more"]) == {"boolean"}
    assert set(item_schemas(document)) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=[f"{t}-{'deleted' if d else 'live'}" for t, d in KINDS])
def test_each_item_schema_has_one_type_one_deleted_and_exactly_its_fields(document, kind):
    schema = item_schemas(document)[kind]
    data_name, get_path = KINDS[kind]
    props = schema["properties"]
    assert schema.get("type") == "object", schema
    assert schema.get("additionalProperties") is False, schema
    assert props["type"].get("type") == "string" and props["type"]["enum"] == [kind[0]]
    assert props["deleted"].get("type") == "boolean" and props["deleted"]["enum"] == [kind[1]]
    assert types(props["id"]) == {"integer"}, props["id"]
    fields = {"type", "id", "deleted"} | (set() if data_name is None else {"etag", "data"})
    assert set(props) == fields, sorted(props)
    assert set(schema.get("required", [])) == fields, schema.get("required")
    if data_name is None:
        return
    assert types(props["etag"]) == {"string"}, props["etag"]
    ref = f"#/components/schemas/{data_name}"
    assert props["data"].get("$ref") == ref, props["data"]
    # The same schema as GET of that task or list answers.
    get = document["paths"][get_path]["get"]
    answered = response(document, get, "200")["content"]["application/json"]["schema"]
    assert answered.get("$ref") == ref, answered


def test_200_example_is_a_valid_page_with_a_live_item_and_a_deletion(document):
    ok = response(document, the_operation(document), "200")
    media = ok["content"]["application/json"]
    examples = media_examples(document, media)
    assert examples, ok
    check = validator(document, page_schema(document))
    for example in examples:
        assert check.is_valid(example), example
    deleted = {item["deleted"] for example in examples for item in example["changes"]}
    assert deleted == {False, True}, examples


@pytest.mark.parametrize("status", ERRORS)
def test_410_and_422_are_documented_with_examples_in_the_error_shape(document, status):
    resp = response(document, the_operation(document), status)
    assert resp.get("description"), resp
    schema = error_schema(document, resp)
    assert {"code", "status", "message"} <= set(schema.get("required", [])), schema
    examples = media_examples(document, resp["content"]["application/json"])
    assert examples, resp
    check = validator(document, schema)
    for example in examples:
        assert_error_body(example, int(status), ERRORS[status])
        assert check.is_valid(example), example
    if status == "410":
        assert all("without a cursor" in example["message"] for example in examples), examples


# --------------------------------------------------------------------------- real answers


def test_real_answers_are_valid_against_the_document_each_item_one_schema(client, alice, document):
    """A first load and a poll with every kind of item; each item valid against exactly
    one of the four schemas (what `oneOf` asks, and what lets a client narrow)."""
    work = new_list(client, alice, "Work")
    tree = build(client, alice, {"A": {"A1": {}}, "B": {}}, list_id=work)
    doomed = new_list(client, alice, "Doomed")
    loaded, cursor, pages = read_all(client, alice, limit=2)
    client.delete(tasks_url(ALICE, tree["B"]["id"]), headers=alice)
    client.delete(lists_url(ALICE, doomed), headers=alice)
    client.put(tasks_url(ALICE, tree["A"]["id"]), headers=alice, json={"title": "A2"})
    polled, _, more = read_all(client, alice, cursor)
    check_page = validator(document, page_schema(document))
    for page in pages + more:
        assert check_page.is_valid(page), page
    checks = {kind: validator(document, schema) for kind, schema in item_schemas(document).items()}
    seen = set()
    for item in loaded + polled:
        matching = [kind for kind, check in checks.items() if check.is_valid(item)]
        assert matching == [(item["type"], item["deleted"])], (item, matching)
        seen.add(matching[0])
    assert seen == set(KINDS), seen


@pytest.mark.parametrize("status", ERRORS)
def test_real_410_and_422_are_valid_against_their_documented_schema(
    client, alice, document, status
):
    cursor = first_load(client, alice)
    if status == "410":
        # A real cursor, issued in 1970.
        cursor = dataclasses.replace(Cursor.decode(cursor), issued=0).encode()
    else:
        cursor = cursor[::-1]
    resp = client.get(changes_url(ALICE, cursor), headers=alice)
    assert resp.status_code == int(status), resp.get_data(as_text=True)
    schema = error_schema(document, response(document, the_operation(document), status))
    assert validator(document, schema).is_valid(resp.get_json()), resp.get_json()
