"""Reading request bodies and writing responses, in JSON or MessagePack."""

from __future__ import annotations

import functools
from typing import Any, Dict, Tuple, Type

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from vecdb.errors import InvalidArgumentError, InvalidDTypeError
from vecdb.wire import JSON, MSGPACK, decode_msgpack, encode_msgpack


class UnsupportedMediaTypeError(InvalidArgumentError):
    """The request body is neither JSON nor MessagePack."""

    http_status = 415


async def read_body(request: Request, model: Type[BaseModel]) -> Dict[str, Any]:
    """The body as a dict with ``model``'s defaults filled in; unknown or
    missing fields are refused here, values by the collection's checks."""
    return parse_body(await request.body(), request.headers.get("content-type", JSON), model)


def parse_body(raw: bytes, content_type: str, model: Type[BaseModel]) -> Dict[str, Any]:
    """:func:`read_body` of a body already read, sent as ``content_type``."""
    media = content_type.split(";")[0].strip().lower()
    if not raw:
        data: Any = {}
    elif media == MSGPACK:
        data = decode_msgpack(raw)
    elif media in (JSON, "", "text/plain"):  # no type, or a plain-text one: read as JSON
        try:
            data = orjson.loads(raw)  # NaN and Infinity are not JSON: refused here
        except orjson.JSONDecodeError as exc:
            hint = " (NaN and Infinity are not JSON numbers)" if b"NaN" in raw or b"Infinity" in raw else ""
            raise InvalidArgumentError(f"request body is not valid JSON{hint}: {exc}") from None
    else:
        raise UnsupportedMediaTypeError(f"Content-Type {media!r} is not supported: send {JSON} or {MSGPACK}")
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"request body must be an object, got {type(data).__name__}")
    defaults, required, flags = _shape(model)
    if not data.keys() <= defaults.keys():
        unknown = sorted(str(key) for key in data if key not in defaults)
        raise InvalidArgumentError(f"unknown field(s) {', '.join(unknown)}; this route takes {', '.join(defaults)}")
    missing = [name for name in required if name not in data]
    if missing:
        raise InvalidArgumentError(f"missing field(s): {', '.join(missing)}")
    for name in flags:
        if name in data and not isinstance(data[name], bool):
            raise InvalidDTypeError(f"{name} must be true or false, got {data[name]!r}")
    return {**defaults, **data}


@functools.lru_cache(maxsize=None)
def _shape(model: Type[BaseModel]) -> Tuple[Dict[str, Any], Tuple[str, ...], Tuple[str, ...]]:
    """A model's fields with their defaults (all immutable values), the
    required ones, and the flags (bool fields: checked here, since Python
    takes any value as true or false); read once per model (pydantic's
    accessors cost ~1 us a field, per request)."""
    fields = model.model_fields
    defaults = {name: None if field.is_required() else field.get_default(call_default_factory=True)
                for name, field in fields.items()}
    return (defaults, tuple(name for name, field in fields.items() if field.is_required()),
            tuple(name for name, field in fields.items() if field.annotation is bool))


def wants_msgpack(request: Request) -> bool:
    return MSGPACK in request.headers.get("accept", "")


def respond(request: Request, value: Any, status: int = 200) -> Response:
    """``value`` in MessagePack if the client accepts it, else JSON."""
    content, media = encode_answer(value, wants_msgpack(request))
    return Response(content, status_code=status, media_type=media)


def encode_answer(value: Any, binary: bool) -> Tuple[bytes, str]:
    """``value`` as a response body and its media type: MessagePack if
    ``binary``, else JSON."""
    if binary:
        return encode_msgpack(value), MSGPACK
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS), JSON


def documented(model: Type[BaseModel], example: Dict[str, Any]) -> Dict[str, Any]:
    """``openapi_extra`` describing ``model`` as the request body (the
    routes read bodies themselves, so FastAPI cannot infer it), with an
    example that works (Swagger UI's "Try it out" sends it)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    schema = inline(schema)
    media = {"schema": schema, "example": example}
    required = bool(_shape(model)[1])  # a body of defaults only may be left out
    return {"requestBody": {"required": required, "content": {JSON: media, MSGPACK: media}}}
