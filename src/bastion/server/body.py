"""Reading request bodies with a size limit and turning JSON errors into 4xx problems."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from bastion.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it grows past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    if not body:
        raise MalformedRequest("request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"request body is not valid JSON: {exc}") from exc


def require_json(request: Request) -> None:
    """Refuse (415) a body declared as anything but JSON; an undeclared one is read as JSON."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type = declared.partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"the request body must be application/json, got content type {declared!r}"
        )


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object: 415 unless declared JSON, 413 if too large, 400 if not JSON."""
    require_json(request)
    payload = parse_json(await read_body(request, limit))
    if not isinstance(payload, dict):
        raise MalformedRequest(f"request body must be a JSON object, got {type(payload).__name__}")
    return payload
