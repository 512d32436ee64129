"""A floor for Bastion's stack in `serving.py`: one Starlette route, no model, no log.

It does what every Bastion request does before and after the model: Starlette's middleware
(server errors, exceptions) and routing, reading the body, ``orjson.loads`` and an
``orjson.dumps`` response. The gap between this and `hello_asgi.py` is the framework's cost;
the gap between this and Bastion is Bastion's own. Run as ``uvicorn starlette_echo:app``.
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    body = {"subject_id": payload.get("subject_id"), "score": 0.5}
    return Response(orjson.dumps(body), media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/deployments/{deployment}/decide", echo, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)
