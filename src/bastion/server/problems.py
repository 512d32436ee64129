"""RFC 9457 problem documents: the one place errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bastion.errors import BastionError

logger = logging.getLogger(__name__)

PROBLEM_BASE = "https://bastion.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(
    status: int,
    type_: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_ if type_ == "about:blank" else PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    if instance is not None and instance.startswith("/v2/"):
        # Open Inference Protocol clients (tritonclient) read the message from "error".
        body["error"] = detail
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers
    )


def error_response(exc: BastionError, instance: str) -> Response:
    """The problem document for a `BastionError`, also used by middleware outside routing."""
    headers = None
    if exc.status in (429, 503):
        retry_after = getattr(exc, "retry_after", 1)
        headers = {"Retry-After": str(max(1, int(retry_after)))}
    elif exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return problem_response(
        exc.status,
        exc.type,
        exc.title,
        exc.message,
        instance=instance,
        errors=[e.as_dict() for e in exc.errors],
        headers=headers,
    )


async def handle_bastion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BastionError)
    if exc.status >= 500:
        logger.warning("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.type)
    return error_response(exc, request.url.path)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem_response(
        exc.status_code,
        slug,
        "Not found" if exc.status_code == 404 else "HTTP error",
        str(exc.detail),
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "an unexpected error occurred; it has been logged",
        instance=request.url.path,
    )


EXCEPTION_HANDLERS = {
    BastionError: handle_bastion_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}
