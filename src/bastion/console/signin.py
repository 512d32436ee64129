"""Signing in to the console with an API key, and signing out.

The form posts the key once; it is checked against the server's key cache (never the
database on the request path) and exchanged for a signed session cookie that names the key
without holding it (`bastion.console.session`). Only keys whose role may work the review
queue (``review``, ``admin``) get a session. In insecure mode there are no keys: the console
is open and the sign-in page just leads to the queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from bastion.console.session import (
    CSRF_FIELD,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    new_presession,
    signer_for,
)
from bastion.console.templating import BASE, SIGN_IN, is_https, redirect, render, set_cookie

if TYPE_CHECKING:
    from bastion.server.auth import KeyCache


def may_review(role: str) -> bool:
    # Imported here, not at the top: bastion.server.auth imports this package for the
    # console's refusals, and the role table stays defined in one place.
    from bastion.server.auth import ROLE_ACTIONS, Action

    return Action.REVIEW in ROLE_ACTIONS.get(role, frozenset())


def _next_page(value: object) -> str:
    """Where to go after signing in: a console page, never another site."""
    if isinstance(value, str) and value.startswith(BASE) and "//" not in value:
        return value
    return BASE


def _form(
    request: Request, *, status: int = 200, error: str | None = None, next_page: str = BASE
) -> Response:
    basis = request.cookies.get(PRESESSION_COOKIE) or new_presession()
    context = {
        "title": "Sign in",
        "csrf_token": signer_for(request.app).csrf_token(basis),
        "error": error,
        "next": next_page,
        "reviewer": None,
        "signed_in": False,
        "notice": "You are signed out." if request.query_params.get("signed-out") else None,
    }
    secure = is_https(request)
    return render(
        "sign_in.html", context, status=status, cookies={PRESESSION_COOKIE: basis}, secure=secure
    )


async def sign_in_page(request: Request) -> Response:
    if request.app.state.keys is None:  # insecure mode: nothing to sign in to
        return redirect(BASE)
    return _form(request, next_page=_next_page(request.query_params.get("next")))


async def sign_in(request: Request) -> Response:
    keys: KeyCache | None = request.app.state.keys
    if keys is None:
        return redirect(BASE)
    form = await request.form()
    next_page = _next_page(form.get("next"))
    signer = signer_for(request.app)
    if not signer.csrf_ok(request.cookies.get(PRESESSION_COOKIE), form.get(CSRF_FIELD)):
        return _form(
            request,
            status=403,
            error="The sign-in form expired or did not come from this console. Try again.",
            next_page=next_page,
        )
    token = str(form.get("api_key") or "").strip()
    key = keys.authenticate(token) if token else None
    if key is None:
        return _form(
            request,
            status=401,
            error="That key is not valid: it is unknown, mistyped or revoked.",
            next_page=next_page,
        )
    if not may_review(key.role):
        return _form(
            request,
            status=403,
            error=f"A {key.role} key may not work the review queue: use a review key.",
            next_page=next_page,
        )
    response = redirect(next_page)
    set_cookie(response, SESSION_COOKIE, signer.issue(key), secure=is_https(request))
    response.delete_cookie(PRESESSION_COOKIE, path="/console")
    return response


async def sign_out(request: Request) -> Response:
    """End the session (POST with the session's CSRF token; a cross-site form cannot)."""
    form = await request.form()
    session = getattr(request.state, "console_session", None)
    basis = request.cookies.get(SESSION_COOKIE)
    if session is not None and not signer_for(request.app).csrf_ok(basis, form.get(CSRF_FIELD)):
        return redirect(BASE)
    response = redirect(f"{SIGN_IN}?signed-out=1")
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response
