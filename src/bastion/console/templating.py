"""Rendering console pages: one Jinja2 environment (autoescaped), strict security headers,
and the two refusals the auth middleware answers console requests with.

Templates and the stylesheet live next to this module, so they ship inside the package
(the wheel includes ``src/bastion`` whole) and load from wherever it is installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bastion.console.session import ConsoleSession

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
CONSOLE = "/console"
STATIC = f"{CONSOLE}/static"
BASE = f"{CONSOLE}/review"
SIGN_IN = f"{BASE}/sign-in"

#: pages show (redacted) personal data: never cached, never framed, no inline script
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def humanize_seconds(seconds: float) -> str:
    """``42s``, ``7m``, ``3h 05m``, ``2d 4h``: an age or a time left, to the useful unit."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h {rest // 60:02d}m"
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d {rest // 3600}h"


def short_id(task_id: str) -> str:
    """The last 8 hex digits of a UUIDv7: its leading digits are the creation time, shared
    by every task made in the same millisecond, while its tail is random."""
    return task_id.replace("-", "")[-8:]


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["duration"] = humanize_seconds
environment.filters["when"] = _when
environment.filters["number"] = _number
environment.filters["short_id"] = short_id
environment.globals["BASE"] = BASE
environment.globals["STATIC"] = STATIC


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    cookies: Mapping[str, str] | None = None,
    secure: bool = False,
) -> HTMLResponse:
    """The template `name` rendered with `context`, with the console's security headers;
    `cookies` are set HttpOnly and SameSite=Strict (Secure over https)."""
    body = environment.get_template(name).render(**context)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    for cookie, value in (cookies or {}).items():
        set_cookie(response, cookie, value, secure=secure)
    return response


def set_cookie(response: Response, name: str, value: str, *, secure: bool) -> None:
    response.set_cookie(
        name, value, path="/console", httponly=True, samesite="strict", secure=secure
    )


def redirect(location: str) -> RedirectResponse:
    """303 See Other: after a POST the browser GETs the next page (POST/redirect/GET)."""
    response = RedirectResponse(location, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def sign_in_redirect(request: Request) -> Response:
    """Where a console request without a valid session goes: the sign-in page, remembering
    the page asked for (a GET), so the reviewer lands there after signing in."""
    target = request.url.path if request.method == "GET" else BASE
    return redirect(f"{SIGN_IN}?next={quote(target, safe='/')}")


def forbidden_page(session: ConsoleSession) -> Response:
    """A signed-in key whose role may not work the review queue (it may still sign out)."""
    context = {
        "title": "Not allowed",
        "role": session.role,
        "csrf_token": session.csrf_token,
        "reviewer": session.key_id,
        "signed_in": True,
        "notice": None,
        "error": None,
    }
    return render("forbidden.html", context, status=403)


def is_console_path(path: str) -> bool:
    return path == CONSOLE or path.startswith(CONSOLE + "/")


def is_open_console_path(path: str) -> bool:
    """The pages a browser must reach before signing in: the form and the stylesheet."""
    return path == SIGN_IN or path.startswith(STATIC + "/")
