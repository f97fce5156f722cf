"""The SDK against the OpenAPI document the real keyward serves: fails when they drift apart.

Every operation the client calls must exist with the same method, path,
operationId, request schema, query parameters and result schema; every field
of every result type must be a property of its schema with a matching type,
and every property of the schema a field (a field the server adds is drift
too: the SDK would not expose it); every argument a method sends must be a
property of the request schema with a matching type; the enumerations
(decisions, roles, error codes) must be the server's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import re
import typing
import urllib.request
from typing import Any, Dict, List, Set

import pytest

import keyward
from keyward import _types as t
from keyward._operations import OPERATIONS

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def doc(server) -> dict:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(server.url + "/openapi.json") as r:
        return json.load(r)


def resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema and not schema.get("properties"):
        schema = doc["components"]["schemas"][schema["$ref"][len(REF):]]
    return schema


def properties(doc: dict, name: str) -> Dict[str, dict]:
    """The properties of a schema, with those of a schema it extends by $ref."""
    s = doc["components"]["schemas"][name]
    props: Dict[str, dict] = {}
    if "$ref" in s:
        props.update(properties(doc, s["$ref"][len(REF):]))
    props.update(s.get("properties", {}))
    return props


def json_types(doc: dict, prop: dict) -> Set[str]:
    s = resolve(doc, prop)
    tp = s.get("type", "object" if "properties" in s else None)
    return set(tp) if isinstance(tp, list) else {tp}


def type_problems(doc: dict, where: str, tp: Any, prop: dict, seen: Set[type]) -> List[str]:
    """How python type tp disagrees with the schema of prop."""
    if typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    want = json_types(doc, prop) - {"null"}
    origin = typing.get_origin(tp)
    if origin in (tuple, list, typing.get_origin(typing.Sequence[int])):
        if want != {"array"}:
            return [f"{where}: an array in the SDK, {want} in the API"]
        items = resolve(doc, prop).get("items", {})
        return type_problems(doc, where + "[]", typing.get_args(tp)[0], items, seen)
    if origin is dict:
        return [] if want == {"object"} else [f"{where}: an object in the SDK, {want} in the API"]
    if dataclasses.is_dataclass(tp):
        if want != {"object"}:
            return [f"{where}: an object in the SDK, {want} in the API"]
        ref = prop.get("$ref", "")
        name = ref[len(REF):] if ref.startswith(REF) else ""
        if name != tp.__name__:
            return [f"{where}: {tp.__name__} in the SDK, schema {name or prop} in the API"]
        return dataclass_problems(doc, tp, seen)
    simple = {str: "string", int: "integer", bool: "boolean", dt.datetime: "string"}
    if tp not in simple:
        return [f"{where}: the SDK's type {tp!r} has no JSON form"]
    if want != {simple[tp]}:
        return [f"{where}: {simple[tp]} in the SDK, {want} in the API"]
    if tp is dt.datetime and resolve(doc, prop).get("format") != "date-time":
        return [f"{where}: a time in the SDK, not a date-time in the API"]
    return []


def dataclass_problems(doc: dict, cls: type, seen: Set[type]) -> List[str]:
    if cls in seen:
        return []
    seen.add(cls)
    props = properties(doc, cls.__name__)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    out = [f"{cls.__name__}.{p}: in the API, not in the SDK" for p in sorted(set(props) - fields)]
    out += [f"{cls.__name__}.{f}: in the SDK, not in the API" for f in sorted(fields - set(props))]
    for f in sorted(fields & set(props)):
        out += type_problems(doc, f"{cls.__name__}.{f}", hints[f], props[f], seen)
    return out


def operation(doc: dict, op) -> dict:  # type: ignore[no-untyped-def]
    return doc["paths"].get(op.path, {}).get(op.method.lower())


def test_operations_exist(doc: dict) -> None:
    problems = []
    for op in OPERATIONS.values():
        o = operation(doc, op)
        if o is None:
            problems.append(f"{op.method} {op.path}: not in the API")
            continue
        if o.get("operationId") != op.id:
            problems.append(f"{op.method} {op.path}: operationId {o.get('operationId')}, the SDK says {op.id}")
        body = o.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        if body != (REF + op.body if op.body else None):
            problems.append(f"{op.id}: request body {body} in the API, {op.body} in the SDK")
        ok = {code: r for code, r in o["responses"].items() if code.startswith("2")}
        schemas = {r.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") for r in ok.values()}
        want = {REF + op.result.__name__} if op.result else {None}
        if schemas != want:
            problems.append(f"{op.id}: 2xx bodies {schemas} in the API, {want} in the SDK")
        params = []
        for p in doc["paths"][op.path].get("parameters", []) + o.get("parameters", []):
            if "$ref" in p:
                p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
            params.append(p)
        query = {p["name"] for p in params if p["in"] == "query"}
        for q in set(op.query) - query:
            problems.append(f"{op.id}: query parameter {q} is not in the API")
        placeholders = set(re.findall(r"{(\w+)}", op.path))
        if placeholders != {p["name"] for p in params if p["in"] == "path"}:
            problems.append(f"{op.id}: path parameters differ")
    assert not problems, "\n".join(problems)


def test_methods_send_what_the_api_takes(doc: dict) -> None:
    problems = []
    methods = {name: m for name, m in inspect.getmembers(keyward.Client) if hasattr(m, "_keyward_route")}
    assert {m._keyward_route.op.id for m in methods.values()} == set(OPERATIONS), "an operation without a method"
    for name, m in methods.items():
        route = m._keyward_route
        op = route.op
        if set(route.path_params.values()) != set(re.findall(r"{(\w+)}", op.path)):
            problems.append(f"Client.{name}: does not fill every placeholder of {op.path}")
        body = properties(doc, op.body) if op.body else {}
        hints = typing.get_type_hints(m)
        for p in list(route.signature.parameters)[1:]:
            if p in route.path_params:
                continue
            if p in op.query:
                continue
            if p not in body:
                problems.append(f"Client.{name}({p}=...): not a field of {op.body} in the API")
                continue
            problems += type_problems(doc, f"Client.{name}({p}=)", hints[p], body[p], set())
        required = set(doc["components"]["schemas"][op.body].get("required", [])) if op.body else set()
        for r in required:
            param = route.signature.parameters.get(r)
            if param is None or param.default is not inspect.Parameter.empty:
                problems.append(f"Client.{name}: {op.body}.{r} is required by the API, optional in the SDK")
    assert not problems, "\n".join(problems)


def test_result_types_match_their_schemas(doc: dict) -> None:
    problems: List[str] = []
    seen: Set[type] = set()
    for op in OPERATIONS.values():
        if op.result is not None:
            problems += dataclass_problems(doc, op.result, seen)
    assert not problems, "\n".join(problems)


def test_enumerations(doc: dict) -> None:
    schemas = doc["components"]["schemas"]
    assert list(t.Decision.ALL) == schemas["Decision"]["enum"]
    roles = [v for k, v in vars(t.Role).items() if k.isupper()]
    assert sorted(roles) == sorted(schemas["Role"]["enum"])
    codes = [v for k, v in vars(keyward.ErrorCode).items() if k.isupper()]
    assert sorted(codes) == sorted(schemas["ErrorCode"]["enum"])
