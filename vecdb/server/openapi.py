"""The API description (``GET /openapi.json``, shown at ``/docs``), made
true to what the server does.

FastAPI derives it from the routes, but the routes read their bodies
themselves and answer with :func:`vecdb.server.bodies.respond`, so what it
cannot know is added here, once per server (the description depends on its
keys and limits): the error body every refusal has and the statuses each
route can return (never FastAPI's 422), the name patterns of path
parameters, MessagePack beside JSON, the API key as a security scheme (so
Swagger UI's "Authorize" works), and ``max_k``. tests/server/test_server_schema.py
runs schemathesis against it.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, Set, Tuple

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from vecdb.server.guards import OPEN_PATHS
from vecdb.server.models import BACKUP_NAME_PATTERN, COLLECTION_NAME_PATTERN, EXAMPLE_ARCHIVE, ErrorBody
from vecdb.server.settings import ServerSettings
from vecdb.server.state import require_write
from vecdb.wire import JSON, MSGPACK

_WHY = {
    400: "invalid input: the message names the field and the problem",
    401: "no API key, or a wrong one",
    403: "the key is read-only and this route writes",
    404: "no such collection, backup or point (or route)",
    409: "it exists already",
    413: "over one of the server's limits (body size, batch, hits, payload size, upload size)",
    415: "a body that is neither JSON nor MessagePack",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# A payload index's field: dotted parts, none empty, no NUL (vecdb.payload_fields.check_field).
_FIELD_PATTERN = r"^[^.\u0000]+(\.[^.\u0000]+)*$"


def answers(model: Any, *errors: int, status: int = 200) -> Dict[str, Any]:
    """Keyword arguments of a route decorator: the model of its answer (or
    a Union of models, for a route answering in more than one shape) and
    the error statuses it may return besides those every route of its kind
    has (added by :func:`describe`)."""
    return {"response_model": model, "status_code": status,
            "responses": {code: {"description": _WHY[code], "model": ErrorBody} for code in errors}}


def describe(app: FastAPI, settings: ServerSettings) -> Dict[str, Any]:
    """The OpenAPI document of ``app`` as served with ``settings``."""
    # A copy: FastAPI's document shares dicts with the routes' declarations,
    # which every server in this process shares.
    document = copy.deepcopy(get_openapi(title=app.title, version=app.version, description=app.description,
                                         routes=app.routes))
    writes = _writing_operations(app.state.routes)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _complete(operation, path, method, settings, writes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorBody"] = error
    if settings.api_key is not None:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document


def _complete(operation: Dict[str, Any], path: str, method: str, settings: ServerSettings,
              writes: Set[Tuple[str, str]]) -> None:
    responses = operation["responses"]
    responses.pop("422", None)  # FastAPI's validation error: the routes never answer it
    for parameter in operation.get("parameters", []):
        schema = parameter["schema"]
        if parameter["name"] == "name" and path.startswith("/v1/backups/"):
            parameter["example"] = EXAMPLE_ARCHIVE
            schema["pattern"] = f"^{BACKUP_NAME_PATTERN}$"
            _add_errors(responses, 400)
        elif parameter["name"] == "name":
            parameter["example"] = "docs"  # the collection the body examples make and use
            schema["pattern"] = COLLECTION_NAME_PATTERN
            _add_errors(responses, 400)
        elif parameter["name"] == "field":
            parameter["example"] = "lang"
            schema.update(pattern=_FIELD_PATTERN, maxLength=200)
    if "requestBody" in operation:
        _add_errors(responses, 400, 415)
        _limit(operation["requestBody"], {"k": settings.max_k, "limit": settings.max_batch})
    _add_errors(responses, 413)  # the body cap applies to every request
    if path in OPEN_PATHS:
        operation["security"] = []
    elif settings.api_key is not None:
        _add_errors(responses, 401)
        responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                            "description": "Bearer"}}
        if settings.read_only_key is not None and (method.upper(), path) in writes:
            _add_errors(responses, 403)
    for response in responses.values():
        content = response.get("content", {})
        if JSON in content and MSGPACK not in content:  # with Accept: application/msgpack
            content[MSGPACK] = content[JSON]


def _add_errors(responses: Dict[str, Any], *statuses: int) -> None:
    for status in statuses:
        responses.setdefault(str(status), {"description": _WHY[status],
                                           "content": {JSON: {"schema": _ERROR_REF}, MSGPACK: {"schema": _ERROR_REF}}})


def _limit(body: Dict[str, Any], maxima: Dict[str, int]) -> None:
    """This server's limits on parameters (``--max-k``, ``--max-batch``)."""
    for media in body["content"].values():
        properties = media["schema"].get("properties", {})
        for name, maximum in maxima.items():
            if name in properties:
                properties[name]["maximum"] = maximum


def _writing_operations(routes: Iterable[Any]) -> Set[Tuple[str, str]]:
    return {(method, route.path_format) for route in routes if isinstance(route, APIRoute)
            and any(dependency.dependency is require_write for dependency in route.dependencies)
            for method in route.methods or ()}  # typed Optional; an APIRoute always has them
