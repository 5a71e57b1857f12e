"""Validation of requests and responses against incident.io's OpenAPI document (unmodified).

The client and the sandbox never share code; this is where they meet: every request the client
sends and every response the sandbox returns in the tests is checked here.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

# The status-page subset of incident.io's OpenAPI document (origin and sha256: tests/fixtures/README.md).
SPEC_PATH = Path(__file__).resolve().parent / "fixtures" / "openapi" / "incidentio-status-pages.openapi.json"


@cache
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text()))


def _inline(node: Any, schemas: dict[str, Any], depth: int = 0) -> Any:
    if depth > 50:
        raise RecursionError("recursive $ref")
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline(schemas[name], schemas, depth + 1)
        return {
            k: _inline(v, schemas, depth + 1) for k, v in node.items() if k not in ("example", "examples")
        }
    if isinstance(node, list):
        return [_inline(v, schemas, depth + 1) for v in node]
    return node


@cache
def _routes() -> list[tuple[re.Pattern[str], str, str]]:
    out = []
    for template in spec()["paths"]:
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$")
        for method in spec()["paths"][template]:
            out.append((pattern, method.upper(), template))
    return out


def operation(method: str, path: str) -> dict[str, Any] | None:
    for pattern, m, template in _routes():
        if m == method.upper() and pattern.match(path):
            return dict(spec()["paths"][template][method.lower()])
    return None


def _schema_problems(schema: dict[str, Any], body: Any, where: str) -> list[str]:
    schemas = spec()["components"]["schemas"]
    validator = OAS30Validator(_inline(schema, schemas))
    return [
        f"{where}: {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(body)
    ]


def validate_request(method: str, path: str, query: dict[str, str], body: bytes) -> list[str]:
    op = operation(method, path)
    if op is None:
        return [f"{method} {path}: no such operation in the spec"]
    problems = []
    for param in op.get("parameters", []):
        if param["in"] == "query" and param.get("required") and param["name"] not in query:
            problems.append(f"{method} {path}: missing required query parameter {param['name']}")
        if param["in"] == "query" and param["name"] in query and param["schema"].get("type") == "integer":
            if not re.fullmatch(r"-?\d+", query[param["name"]]):
                problems.append(f"{method} {path}: query {param['name']} is not an integer")
    rb = op.get("requestBody")
    if rb is not None:
        schema = rb["content"]["application/json"]["schema"]
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            return [*problems, f"{method} {path}: request body is not JSON"]
        problems += _schema_problems(schema, parsed, f"{method} {path} request")
    elif body:
        problems.append(f"{method} {path}: a body was sent to an operation that takes none")
    return problems


def validate_response(
    method: str, path: str, status: int, body: bytes, content_type: str | None
) -> list[str]:
    op = operation(method, path)
    if op is None:
        return []
    where = f"{method} {path} -> {status}"
    responses = op["responses"]
    resp = responses.get(str(status))
    if resp is None and status >= 500:
        # Gateways in front of the API answer 502/503/504 too; the body is still an ErrorResponse.
        resp = responses.get("500")
    if resp is None:
        return [f"{where}: status not declared in the spec ({sorted(responses)})"]
    content = resp.get("content")
    if content is None:
        return [] if not body else [f"{where}: body sent where the spec declares none"]
    if not (content_type or "").startswith("application/json"):
        return [f"{where}: content type {content_type!r} is not application/json"]
    try:
        parsed = json.loads(body)
    except ValueError:
        return [f"{where}: response body is not JSON"]
    return _schema_problems(content["application/json"]["schema"], parsed, where)
