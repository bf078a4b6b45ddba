"""The OpenAPI document covers everything new (contract: docs/api.md, "Typed clients").

"Every new field, parameter, header and status is in the OpenAPI document with its type,
enum, format and an example (for an optional query filter or header, in its description,
so that the docs page's "Try it out" does not send it), so a generated client types it
exactly: nullable where it can be null, unions for enums." Each documented schema must also
be a valid JSON Schema (ECMA-262 patterns, as generated clients and validators read them)
that its own example satisfies.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
import pytest
from test_openapi import CREATE, DELETE, GET, LIST, TOGGLE, UPDATE, operations, resolve

CLEAR = ("/api/{}/tasks", "delete")
PRIORITIES = ["low", "medium", "high"]
NAMES = {LIST: "list", CREATE: "create", CLEAR: "clear", GET: "get", UPDATE: "put"}
NAMES |= {DELETE: "delete", TOGGLE: "toggle"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema allows (3.1 ``type`` lists, 3.0 ``nullable``, ``anyOf``)."""
    if "anyOf" in schema or "oneOf" in schema:
        return set().union(*(types(s) for s in schema.get("anyOf", schema.get("oneOf"))))
    declared = schema.get("type")
    found = set(declared) if isinstance(declared, list) else {declared}
    if schema.get("nullable"):
        found.add("null")
    return found


def example_of(holder: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The example given on a parameter, header or property, or on its schema."""
    for node in (holder, schema):
        if "example" in node:
            return node["example"]
        examples = node.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]
        if isinstance(examples, dict) and examples:
            return next(iter(examples.values())).get("value")
    raise AssertionError(f"no example: {holder}")


_DESCRIBED_EXAMPLE = re.compile(r"Example: `([^`]+)`")


def described_example(holder: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The example of an optional parameter: in its description ("Example: `...`"), never as
    a value of the parameter or its schema, which Swagger UI's "Try it out" would send.
    A repeatable parameter's example is a query string (``priority=high&priority=low``)."""
    for node in (holder, schema):
        assert "example" not in node and "examples" not in node, node
    found = _DESCRIBED_EXAMPLE.search(holder.get("description", ""))
    assert found is not None, f"no example in the description: {holder}"
    text = found.group(1)
    if holder.get("in") == "query" and types(schema) == {"array"}:
        return [value for _, value in parse_qsl(text)]
    if types(schema) == {"boolean"}:
        return json.loads(text)
    return text


def assert_valid_schema_with_example(
    document, holder: dict[str, Any], schema: dict[str, Any], *, described: bool = False
):
    """The schema compiles as JSON Schema and its documented example satisfies it;
    ``described``: the example is in the description (an optional parameter)."""
    schema = resolve(document, schema)
    try:
        validator = jsonschema_rs.validator_for(schema)
    except Exception as exc:  # noqa: BLE001 - any compile error is the finding
        raise AssertionError(f"not a valid JSON Schema: {schema}: {exc}") from None
    example = described_example(holder, schema) if described else example_of(holder, schema)
    assert validator.is_valid(example), (example, schema)
    return validator


def parameter(operation: dict[str, Any], document, name: str, where: str) -> dict[str, Any]:
    for param in operation.get("parameters", []):
        param = resolve(document, param)
        if param["name"].lower() == name.lower() and param["in"] == where:
            return param
    raise AssertionError(f"{where} parameter {name} missing: {operation.get('parameters')}")


def response(document, operation: dict[str, Any], status: str) -> dict[str, Any]:
    responses = operation["responses"]
    assert status in responses, (status, sorted(responses))
    return resolve(document, responses[status])


def header(document, resp: dict[str, Any], name: str) -> dict[str, Any]:
    headers = {key.lower(): value for key, value in resp.get("headers", {}).items()}
    assert name.lower() in headers, (name, resp)
    return resolve(document, headers[name.lower()])


def error_schema(document, resp: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(document, resp["content"]["application/json"]["schema"])
    assert {"code", "status", "message"} <= set(schema["properties"]), schema
    return schema


# --------------------------------------------------------------------------- fields


def _check_field_types(props: dict[str, Any], document, request: bool) -> None:
    priority = resolve(document, props["priority"])
    assert types(priority) == {"string"}, priority  # never null
    assert priority["enum"] == PRIORITIES
    due = resolve(document, props["due_date"])
    assert types(due) == {"string", "null"}, due
    assert due.get("format") == "date-time"
    tags = resolve(document, props["tags"])
    assert types(tags) == {"array"}, tags  # never null
    assert tags.get("maxItems") == 20
    items = resolve(document, tags["items"])
    assert types(items) == {"string"}
    # 1-50 characters once trimmed, no NUL: however it is written (lengths or a pattern),
    # the item schema must accept and refuse what the service does.
    item = jsonschema_rs.validator_for(items)
    for good in ("a", "x" * 50, "caf\u00e9 \u4e2d", "a b"):
        assert item.is_valid(good), good
    for bad in ("", "   ", "x" * 51, "a\x00b"):
        assert not item.is_valid(bad), bad
    if request:  # sent with surrounding white space, stored trimmed
        assert item.is_valid("  " + "x" * 50 + "\t"), items
    for name in ("priority", "due_date", "tags"):
        assert_valid_schema_with_example(document, props[name], props[name])


def test_task_schema_has_every_new_field_typed_with_an_example(document):
    operation = operations(document)[GET]
    schema = resolve(
        document, response(document, operation, "200")["content"]["application/json"]["schema"]
    )
    props = schema["properties"]
    _check_field_types(props, document, request=False)
    completed_at = resolve(document, props["completed_at"])
    assert types(completed_at) == {"string", "null"}, completed_at
    assert completed_at.get("format") == "date-time"
    assert completed_at.get("readOnly") is True
    assert_valid_schema_with_example(document, completed_at, completed_at)
    # Always sent: a generated client types them as present, not optional.
    assert {"priority", "due_date", "tags", "completed_at"} <= set(schema.get("required", []))


@pytest.mark.parametrize("key", [CREATE, UPDATE], ids=["create", "update"])
def test_request_bodies_take_the_writable_new_fields_only(document, key):
    operation = operations(document)[key]
    body = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    props = body["properties"]
    _check_field_types(props, document, request=True)
    assert "completed_at" not in props  # read-only
    if body.get("additionalProperties") is not None:
        assert body["additionalProperties"] is False


def test_toggle_body_takes_no_new_field(document):
    operation = operations(document)[TOGGLE]
    body = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert not {"priority", "due_date", "tags", "completed_at"} & set(body.get("properties", {}))


# --------------------------------------------------------------------------- list parameters

LIST_PARAMS = {  # name -> the JSON types of its schema
    "q": {"string"},
    "priority": {"array"},
    "tag": {"array"},
    "due_before": {"string"},
    "due_after": {"string"},
    "overdue": {"boolean"},
    "updated_since": {"string"},
}


@pytest.mark.parametrize("name", LIST_PARAMS)
def test_list_parameter_is_documented_with_type_and_an_example_to_read(document, name):
    param = parameter(operations(document)[LIST], document, name, "query")
    schema = resolve(document, param["schema"])
    assert types(schema) == LIST_PARAMS[name], schema
    assert not param.get("required", False)
    if name == "q":
        assert (schema.get("minLength"), schema.get("maxLength")) == (1, 200)
    if name == "priority":  # repeatable: an array of the enum, exploded (?priority=a&priority=b)
        assert resolve(document, schema["items"])["enum"] == PRIORITIES
        assert param.get("explode", True) is True and param.get("style", "form") == "form"
    if name == "tag":
        assert types(resolve(document, schema["items"])) == {"string"}
        assert param.get("explode", True) is True and param.get("style", "form") == "form"
    if name in ("due_before", "due_after", "updated_since"):
        assert schema.get("format") == "date-time"
    assert_valid_schema_with_example(document, param, schema, described=True)


def test_list_sort_takes_due_date_and_priority(document):
    param = parameter(operations(document)[LIST], document, "sort", "query")
    enum = resolve(document, param["schema"])["enum"]
    assert {"created", "updated", "title", "due_date", "priority", "position"} == set(enum)


# --------------------------------------------------------------------------- headers and statuses

REQUEST_HEADERS = [
    (GET, "If-None-Match"),
    (LIST, "If-None-Match"),
    (UPDATE, "If-Match"),
    (TOGGLE, "If-Match"),
    (DELETE, "If-Match"),
    (CREATE, "Idempotency-Key"),
]


@pytest.mark.parametrize(
    ("key", "name"), REQUEST_HEADERS, ids=[f"{NAMES[k]}-{n}" for k, n in REQUEST_HEADERS]
)
def test_request_headers_are_documented_with_type_and_an_example_to_read(document, key, name):
    param = parameter(operations(document)[key], document, name, "header")
    schema = resolve(document, param["schema"])
    assert types(schema) == {"string"}, schema
    assert not param.get("required", False)
    assert_valid_schema_with_example(document, param, schema, described=True)


def test_idempotency_key_schema_matches_the_rule(document):
    param = parameter(operations(document)[CREATE], document, "Idempotency-Key", "header")
    schema = resolve(document, param["schema"])
    assert (schema.get("minLength"), schema.get("maxLength")) == (1, 255)
    validator = assert_valid_schema_with_example(document, param, schema, described=True)
    for good in ("a", "x" * 255, "a b~!", "5f0c6a4e-1d2b-4c8e-9f3a-7b6d5e4c3b2a", "endsWithZ"):
        assert validator.is_valid(good), good
    for bad in ("", "x" * 256, "caf\u00e9", "a\tb", "a\x7fb"):
        assert not validator.is_valid(bad), bad


RESPONSE_HEADERS = [
    (GET, "200", "ETag"),
    (LIST, "200", "ETag"),
    (CREATE, "201", "ETag"),
    (UPDATE, "200", "ETag"),
    (TOGGLE, "200", "ETag"),
    (GET, "304", "ETag"),
    (LIST, "304", "ETag"),
    (CREATE, "201", "Idempotent-Replayed"),
]


@pytest.mark.parametrize(
    ("key", "status", "name"),
    RESPONSE_HEADERS,
    ids=[f"{NAMES[k]}-{s}-{n}" for k, s, n in RESPONSE_HEADERS],
)
def test_response_headers_are_documented_with_type_and_example(document, key, status, name):
    resp = response(document, operations(document)[key], status)
    found = header(document, resp, name)
    schema = resolve(document, found["schema"])
    assert types(schema) == {"string"}, schema
    assert_valid_schema_with_example(document, found, schema)


def test_new_statuses_are_documented(document):
    ops = operations(document)
    for key in (GET, LIST):
        not_modified = response(document, ops[key], "304")
        assert not not_modified.get("content"), not_modified  # no body
    conflict = response(document, ops[CREATE], "409")
    error_schema(document, conflict)
    retry_after = resolve(document, header(document, conflict, "Retry-After")["schema"])
    assert types(retry_after) & {"integer", "string"}
    for key in (UPDATE, TOGGLE, DELETE):
        error_schema(document, response(document, ops[key], "412"))
    for key in (CREATE, UPDATE):
        error_schema(document, response(document, ops[key], "422"))


def test_clear_completed_is_documented(document):
    operation = operations(document).get(CLEAR)
    assert operation is not None, sorted(operations(document))
    status = parameter(operation, document, "status", "query")
    assert status.get("required") is True
    assert resolve(document, status["schema"])["enum"] == ["completed"]
    ok = response(document, operation, "200")
    media = ok["content"]["application/json"]
    schema = resolve(document, media["schema"])
    assert types(resolve(document, schema["properties"]["deleted"])) == {"integer"}
    assert schema.get("required") == ["deleted"]
    assert_valid_schema_with_example(document, media, schema)
    for code in ("401", "403", "422"):
        error_schema(document, response(document, operation, code))
