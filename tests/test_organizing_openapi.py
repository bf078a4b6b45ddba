"""The OpenAPI document covers lists, subtasks and manual order.

Contract: docs/api.md, "Routes" (the operationIds and paths), "A task" (`list_id`,
`parent_id`, `position`; "Update": those three are not update fields), "Lists" (the list's
fields, who sets them, the two 409s), "Move" (its body, every field optional, and its 422s),
"Conditional requests (ETags)" (If-None-Match and 304 on the list GETs, If-Match and 412 on
the list writes and the move), "Errors", and "Typed clients" (every always-present field in
`required`, `readOnly` on what the service sets, nullable fields as `T | null`). As for the
seed's filters (tests/test_beyond_openapi.py): an optional query filter or header never
carries an `example` that Swagger UI's "Try it out" would send; its example is in its
description, "Example: `...`".
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from support import assert_error_body
from test_beyond_openapi import (
    assert_valid_schema_with_example,
    described_example,
    error_schema,
    header,
    parameter,
    response,
    types,
)
from test_openapi import CREATE, GET, LIST, UPDATE, operations, resolve

LIST_LISTS = ("/api/{}/lists", "get")
CREATE_LIST = ("/api/{}/lists", "post")
GET_LIST = ("/api/{}/lists/{}", "get")
UPDATE_LIST = ("/api/{}/lists/{}", "put")
DELETE_LIST = ("/api/{}/lists/{}", "delete")
MOVE_LIST = ("/api/{}/lists/{}/move", "post")
MOVE_TASK = ("/api/{}/tasks/{}/move", "post")

# operationId -> (exact path, method), as docs/api.md "Routes" lists them.
OPERATION_IDS = {
    "listLists": ("/api/{user_id}/lists", "get"),
    "createList": ("/api/{user_id}/lists", "post"),
    "getList": ("/api/{user_id}/lists/{list_id}", "get"),
    "updateList": ("/api/{user_id}/lists/{list_id}", "put"),
    "deleteList": ("/api/{user_id}/lists/{list_id}", "delete"),
    "moveList": ("/api/{user_id}/lists/{list_id}/move", "post"),
    "moveTask": ("/api/{user_id}/tasks/{task_id}/move", "post"),
}
NAMES = {
    LIST_LISTS: "listLists",
    CREATE_LIST: "createList",
    GET_LIST: "getList",
    UPDATE_LIST: "updateList",
    DELETE_LIST: "deleteList",
    MOVE_LIST: "moveList",
    MOVE_TASK: "moveTask",
}
SUCCESS = {
    LIST_LISTS: "200",
    CREATE_LIST: "201",
    GET_LIST: "200",
    UPDATE_LIST: "200",
    DELETE_LIST: "204",
    MOVE_LIST: "200",
    MOVE_TASK: "200",
}
WITH_ID = {GET_LIST, UPDATE_LIST, DELETE_LIST, MOVE_LIST, MOVE_TASK}
WITH_BODY = {CREATE_LIST, UPDATE_LIST, MOVE_LIST, MOVE_TASK}
IF_MATCH = {UPDATE_LIST, DELETE_LIST, MOVE_LIST, MOVE_TASK}
IF_NONE_MATCH = {LIST_LISTS, GET_LIST}
CONFLICTS = {CREATE_LIST, DELETE_LIST}  # a 501st list; the default list

LIST_FIELDS = {  # name -> its JSON types
    "id": {"integer"},
    "user_id": {"string"},
    "title": {"string"},
    "color": {"string", "null"},
    "is_default": {"boolean"},
    "position": {"string"},
    "open_count": {"integer"},
    "created_at": {"string"},
    "updated_at": {"string"},
}
LIST_READ_ONLY = {"id", "user_id", "is_default", "position", "open_count"}
LIST_READ_ONLY |= {"created_at", "updated_at"}
MOVE_FIELDS = {"list_id": {"integer"}, "parent_id": {"integer", "null"}}
MOVE_FIELDS |= {"after_id": {"integer", "null"}}
TREE_FIELDS = {"list_id", "parent_id", "position"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def op(document, key) -> dict[str, Any]:
    found = operations(document)
    assert key in found, (key, sorted(found))
    return found[key]


def body_schema(document, key) -> dict[str, Any]:
    request = resolve(document, op(document, key)["requestBody"])
    return resolve(document, request["content"]["application/json"]["schema"])


def success_schema(document, key) -> dict[str, Any]:
    ok = response(document, op(document, key), SUCCESS[key])
    return resolve(document, ok["content"]["application/json"]["schema"])


def the_list_schema(document) -> dict[str, Any]:
    return success_schema(document, GET_LIST)


def validator(document, schema: dict[str, Any]):
    """A JSON Schema validator for ``schema`` whose ``#/components/...`` references resolve
    against the document."""
    root = {"components": document.get("components", {}), **schema}
    return jsonschema_rs.validator_for(root)


def media_examples(document, media: dict[str, Any]) -> list[Any]:
    """Every example of a media type: ``example``, ``examples`` (by name), or its schema's."""
    found = []
    if "example" in media:
        found.append(media["example"])
    for item in (media.get("examples") or {}).values():
        item = resolve(document, item)
        if "value" in item:
            found.append(item["value"])
    schema = resolve(document, media.get("schema", {}))
    if not found and "example" in schema:
        found.append(schema["example"])
    return found


def error_examples(document, key, status: str) -> list[dict[str, Any]]:
    """The examples of an error response, each in the contract's error shape with ``status``
    as its code and valid against the documented schema."""
    resp = response(document, op(document, key), status)
    schema = error_schema(document, resp)
    media = resp["content"]["application/json"]
    examples = media_examples(document, media)
    assert examples, (NAMES[key], status, resp)
    check = validator(document, schema)
    for example in examples:
        assert_error_body(example, int(status))
        assert check.is_valid(example), (NAMES[key], status, example)
    return examples


def query_value(param: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A query parameter's described example as a client would pass it: digits as an integer
    when the schema takes integers."""
    text = described_example(param, schema)
    if isinstance(text, str) and text.isdigit() and "integer" in types(schema):
        return int(text)
    return text


# --------------------------------------------------------------------------- operations


def test_new_operations_have_their_ids_paths_and_methods(document):
    by_id: dict[str, tuple[str, str]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                assert operation["operationId"] not in by_id, operation["operationId"]
                by_id[operation["operationId"]] = (path, method)
    for operation_id, where in OPERATION_IDS.items():
        assert by_id.get(operation_id) == where, (operation_id, by_id.get(operation_id))


@pytest.mark.parametrize("key", list(NAMES), ids=list(NAMES.values()))
def test_new_operation_documents_every_status_it_answers(document, key):
    operation = op(document, key)
    assert isinstance(operation.get("summary"), str) and operation["summary"].strip()
    responses = operation["responses"]
    success = SUCCESS[key]
    expected = {success, "401", "403", "500"}
    if key in WITH_ID:
        expected.add("404")
    if key in WITH_BODY:
        expected |= {"400", "413", "415", "422"}
    if key in IF_MATCH:
        expected.add("412")
    if key in IF_NONE_MATCH:
        expected.add("304")
    if key in CONFLICTS:
        expected.add("409")
    assert expected <= set(responses), (NAMES[key], sorted(expected - set(responses)))

    for code in expected - {success, "304"}:
        resp = resolve(document, responses[code])
        assert resp.get("description"), (NAMES[key], code)
        schema = error_schema(document, resp)
        assert {"code", "status", "message"} <= set(schema.get("required", [])), (key, code)
        error_examples(document, key, code)

    ok = resolve(document, responses[success])
    if success == "204":
        assert not ok.get("content"), ok
        return
    media = ok["content"]["application/json"]
    examples = media_examples(document, media)
    assert examples, (NAMES[key], success)
    check = validator(document, resolve(document, media["schema"]))
    for example in examples:  # the example is what the service answers: every field, typed
        assert check.is_valid(example), (NAMES[key], example)


def test_every_success_example_has_the_new_fields_its_schema_requires(document):
    """The task examples of the seed's routes too: a task now always has `list_id`,
    `parent_id` and `position`, so an example without them shows a task the API never sends."""
    stale = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, resp in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                media = resolve(document, resp).get("content", {}).get("application/json")
                if not media:
                    continue
                check = validator(document, resolve(document, media["schema"]))
                for example in media_examples(document, media):
                    if not check.is_valid(example):
                        stale.append(f"{method} {path} {status}")
    assert stale == []


@pytest.mark.parametrize("key", sorted(WITH_BODY), ids=[NAMES[k] for k in sorted(WITH_BODY)])
def test_new_request_bodies_have_an_example_their_schema_accepts(document, key):
    request = resolve(document, op(document, key)["requestBody"])
    media = request["content"]["application/json"]
    examples = media_examples(document, media)
    assert examples, NAMES[key]
    check = validator(document, resolve(document, media["schema"]))
    for example in examples:
        assert check.is_valid(example), (NAMES[key], example)


# --------------------------------------------------------------------------- the list schema


def test_list_schema_has_every_field_required_typed_and_read_only_where_the_service_sets_it(
    document,
):
    schema = the_list_schema(document)
    props = schema["properties"]
    assert set(props) == set(LIST_FIELDS), sorted(props)
    assert set(schema.get("required", [])) == set(LIST_FIELDS), schema.get("required")
    for name, expected in LIST_FIELDS.items():
        prop = resolve(document, props[name])
        assert types(prop) == expected, (name, prop)
        assert (prop.get("readOnly") is True) is (name in LIST_READ_ONLY), (name, prop)
    for name in ("created_at", "updated_at"):
        assert resolve(document, props[name]).get("format") == "date-time", name
    color = validator(document, resolve(document, props["color"]))
    assert color.is_valid("#3b82f6") and color.is_valid(None)
    assert not color.is_valid("blue")


@pytest.mark.parametrize(
    "key", [LIST_LISTS, CREATE_LIST, UPDATE_LIST, MOVE_LIST], ids=["list", "create", "put", "move"]
)
def test_every_list_route_answers_the_same_list_schema(document, key):
    expected = the_list_schema(document)
    schema = success_schema(document, key)
    if key == LIST_LISTS:
        assert types(schema) == {"array"}, schema
        schema = resolve(document, schema["items"])
    assert schema == expected


def test_create_list_body_requires_title_and_offers_only_title_and_color(document):
    body = body_schema(document, CREATE_LIST)
    assert set(body["properties"]) == {"title", "color"}, sorted(body["properties"])
    assert body.get("required") == ["title"]
    if body.get("additionalProperties") is not None:
        assert body["additionalProperties"] is False


def test_update_list_body_takes_title_or_color_at_least_one(document):
    body = body_schema(document, UPDATE_LIST)
    assert set(body["properties"]) == {"title", "color"}, sorted(body["properties"])
    assert not body.get("required")
    assert body.get("minProperties") == 1
    if body.get("additionalProperties") is not None:
        assert body["additionalProperties"] is False


@pytest.mark.parametrize("key", [CREATE_LIST, UPDATE_LIST], ids=["create", "put"])
def test_list_title_and_color_schemas_accept_and_refuse_what_the_service_does(document, key):
    props = body_schema(document, key)["properties"]
    title = validator(document, resolve(document, props["title"]))
    for good in ("a", "x" * 100, "  Groceries  ", " " * 5 + "x" * 100 + "\t", "caf\u00e9"):
        assert title.is_valid(good), good
    for bad in ("", "   ", "x" * 101, "a\x00b", None, 5):
        assert not title.is_valid(bad), bad
    color = validator(document, resolve(document, props["color"]))
    for good in ("#3b82f6", "#3B82F6", "#000000", None):
        assert color.is_valid(good), good
    for bad in ("blue", "#fff", "3b82f6", "#3b82f6ff", "#gggggg", "#3b82f6\n", ""):
        assert not color.is_valid(bad), bad


# --------------------------------------------------------------------------- the task schema


def test_task_schema_has_list_id_parent_id_and_a_read_only_position(document):
    schema = resolve(
        document,
        response(document, op(document, GET), "200")["content"]["application/json"]["schema"],
    )
    props = schema["properties"]
    assert types(resolve(document, props["list_id"])) == {"integer"}
    assert types(resolve(document, props["parent_id"])) == {"integer", "null"}
    position = resolve(document, props["position"])
    assert types(position) == {"string"}
    assert position.get("readOnly") is True
    assert position.get("maxLength") == 64
    assert TREE_FIELDS <= set(schema.get("required", [])), schema.get("required")


def test_task_create_takes_list_id_and_parent_id_but_not_position(document):
    props = body_schema(document, CREATE)["properties"]
    assert types(resolve(document, props["list_id"])) == {"integer"}
    assert types(resolve(document, props["parent_id"])) == {"integer", "null"}
    assert "position" not in props


def test_task_update_offers_none_of_list_id_parent_id_position(document):
    props = body_schema(document, UPDATE)["properties"]
    assert not TREE_FIELDS & set(props), sorted(props)


def test_move_task_body_has_three_optional_fields_and_nothing_else(document):
    body = body_schema(document, MOVE_TASK)
    props = body["properties"]
    assert set(props) == set(MOVE_FIELDS), sorted(props)
    for name, expected in MOVE_FIELDS.items():
        assert types(resolve(document, props[name])) == expected, (name, props[name])
    assert not body.get("required"), body.get("required")
    assert body.get("additionalProperties") is False
    check = validator(document, body)
    for good in ({}, {"after_id": None}, {"list_id": 7, "parent_id": None, "after_id": 43}):
        assert check.is_valid(good), good
    assert not check.is_valid({"position": "a0"})


def test_move_list_body_has_an_optional_nullable_after_id(document):
    body = body_schema(document, MOVE_LIST)
    assert set(body["properties"]) == {"after_id"}, sorted(body["properties"])
    assert types(resolve(document, body["properties"]["after_id"])) == {"integer", "null"}
    assert not body.get("required")
    if body.get("additionalProperties") is not None:
        assert body["additionalProperties"] is False


def test_move_task_answers_the_task_schema(document):
    task = resolve(
        document,
        response(document, op(document, GET), "200")["content"]["application/json"]["schema"],
    )
    assert success_schema(document, MOVE_TASK) == task


# --------------------------------------------------------------------------- errors with examples


def test_create_list_409_has_an_example_of_the_501st_list(document):
    examples = error_examples(document, CREATE_LIST, "409")
    assert any("500" in example["message"] for example in examples), examples


def test_delete_list_409_has_an_example_of_the_default_list(document):
    examples = error_examples(document, DELETE_LIST, "409")
    assert any("default" in example["message"].lower() for example in examples), examples


@pytest.mark.parametrize(
    ("key", "fields"),
    [(MOVE_TASK, set(MOVE_FIELDS)), (MOVE_LIST, {"after_id"})],
    ids=["moveTask", "moveList"],
)
def test_move_422_has_an_example_naming_a_move_field(document, key, fields):
    examples = error_examples(document, key, "422")
    named = [
        example
        for example in examples
        if fields & set((example.get("errors") or {}).get("json") or {})
    ]
    assert named, examples


# --------------------------------------------------------------------------- headers and statuses


@pytest.mark.parametrize("key", sorted(IF_MATCH), ids=[NAMES[k] for k in sorted(IF_MATCH)])
def test_if_match_routes_document_the_header_and_412(document, key):
    operation = op(document, key)
    param = parameter(operation, document, "If-Match", "header")
    schema = resolve(document, param["schema"])
    assert types(schema) == {"string"}
    assert not param.get("required", False)
    assert_valid_schema_with_example(document, param, schema, described=True)
    error_examples(document, key, "412")


@pytest.mark.parametrize(
    "key", sorted(IF_NONE_MATCH), ids=[NAMES[k] for k in sorted(IF_NONE_MATCH)]
)
def test_list_gets_document_if_none_match_and_a_304_without_body(document, key):
    operation = op(document, key)
    param = parameter(operation, document, "If-None-Match", "header")
    schema = resolve(document, param["schema"])
    assert types(schema) == {"string"}
    assert not param.get("required", False)
    assert_valid_schema_with_example(document, param, schema, described=True)
    not_modified = response(document, operation, "304")
    assert not not_modified.get("content"), not_modified
    header(document, not_modified, "ETag")


def test_create_list_documents_idempotency_key_as_create_task_does(document):
    param = parameter(op(document, CREATE_LIST), document, "Idempotency-Key", "header")
    schema = resolve(document, param["schema"])
    assert not param.get("required", False)
    assert (schema.get("minLength"), schema.get("maxLength")) == (1, 255)
    assert_valid_schema_with_example(document, param, schema, described=True)
    tasks = parameter(op(document, CREATE), document, "Idempotency-Key", "header")
    assert schema == resolve(document, tasks["schema"])


RESPONSE_HEADERS = [
    (LIST_LISTS, "200", "ETag"),
    (GET_LIST, "200", "ETag"),
    (CREATE_LIST, "201", "ETag"),
    (CREATE_LIST, "201", "Location"),
    (CREATE_LIST, "201", "Idempotent-Replayed"),
    (UPDATE_LIST, "200", "ETag"),
    (MOVE_LIST, "200", "ETag"),
    (MOVE_TASK, "200", "ETag"),
]


@pytest.mark.parametrize(
    ("key", "status", "name"),
    RESPONSE_HEADERS,
    ids=[f"{NAMES[k]}-{s}-{n}" for k, s, n in RESPONSE_HEADERS],
)
def test_new_responses_document_their_headers(document, key, status, name):
    found = header(document, response(document, op(document, key), status), name)
    assert types(resolve(document, found["schema"])) == {"string"}


def test_list_id_path_parameter_takes_an_id_or_default(document):
    for key in (GET_LIST, UPDATE_LIST, DELETE_LIST, MOVE_LIST):
        item = document["paths"][OPERATION_IDS[NAMES[key]][0]]
        params = [
            resolve(document, p)
            for p in [*item.get("parameters", []), *op(document, key).get("parameters", [])]
        ]
        [param] = [p for p in params if p["in"] == "path" and p["name"] == "list_id"]
        assert param.get("required") is True
        check = validator(document, resolve(document, param["schema"]))
        for good in (7, "default"):
            assert check.is_valid(good), (NAMES[key], good)
        for bad in (0, -1, "Default", "abc"):
            assert not check.is_valid(bad), (NAMES[key], bad)


# ------------------------------------------------------------------------- the task list's filters


def test_list_tasks_takes_list_id_parent_id_and_sort_position(document):
    operation = op(document, LIST)
    list_id = parameter(operation, document, "list_id", "query")
    schema = resolve(document, list_id["schema"])
    assert not list_id.get("required", False)
    assert types(schema) == {"integer"}, schema
    assert validator(document, schema).is_valid(query_value(list_id, schema))

    parent_id = parameter(operation, document, "parent_id", "query")
    schema = resolve(document, parent_id["schema"])
    assert not parent_id.get("required", False)
    check = validator(document, schema)
    assert check.is_valid(query_value(parent_id, schema))
    assert check.is_valid(42) and check.is_valid("none")
    assert not check.is_valid("None") and not check.is_valid("all")

    sort = resolve(document, parameter(operation, document, "sort", "query")["schema"])
    assert "position" in sort["enum"]


def test_no_optional_query_filter_or_header_carries_an_example(document):
    """Swagger UI's "Try it out" sends an optional parameter's example: it would filter the
    user's data by a made-up value. Examples go in the description instead."""
    offenders = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = operation if method == "parameters" else operation.get("parameters", [])
            for param in params:
                param = resolve(document, param)
                if param["in"] not in ("query", "header") or param.get("required"):
                    continue
                schema = resolve(document, param.get("schema", {}))
                for node in (param, schema):
                    if "example" in node or node.get("examples"):
                        offenders.append(f"{method} {path} {param['name']}")
    assert offenders == []
