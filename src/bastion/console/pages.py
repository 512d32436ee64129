"""The review console's pages: the queue, a task, and the forms that work them.

Plain HTML forms and POST/redirect/GET: every action works without JavaScript. The queue
service (`ServingService.review`) is synchronous, so every call runs in a worker thread.
A refused action (someone else holds the task, an unknown verdict) re-renders the page it
came from with the reason and the matching status code, instead of redirecting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bastion.console.charts import contribution_chart
from bastion.console.session import (
    CSRF_FIELD,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    ConsoleSession,
    new_presession,
    signer_for,
)
from bastion.console.templating import BASE, is_https, redirect, render, short_id
from bastion.errors import BastionError, NotFound
from bastion.review import ReviewQueue, TaskView

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: what a redirect's ``?notice=`` may say: fixed texts, so a link cannot put words on the page
NOTICES = {
    "claimed": "Task claimed. It is yours until the lease runs out.",
    "released": "Task released back to the queue.",
    "escalated": "Task escalated to a senior reviewer.",
    "resolved": "Verdict recorded. It is now a training label (source: review).",
    "empty": "Nothing to claim: no open task in this queue.",
}
#: what a task page's forms post to (``/tasks/{task_id}/<action>``)
ACTIONS = ("claim", "release", "escalate", "resolve")
#: how many tasks the queue page lists
QUEUE_LIMIT = 100


class Page:
    """What every console page needs about the request: who is reviewing, the CSRF token,
    and the pre-session cookie to set when there is no signed-in session (insecure mode)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        session: ConsoleSession | None = getattr(request.state, "console_session", None)
        self.session = session
        self.cookies: dict[str, str] = {}
        if session is not None:
            self.csrf_token = session.csrf_token
            self.reviewer = session.key_id
        else:  # insecure mode: no keys, so no session; forms still carry a CSRF token
            basis = request.cookies.get(PRESESSION_COOKIE)
            if not basis:
                basis = new_presession()
                self.cookies[PRESESSION_COOKIE] = basis
            self.csrf_token = signer_for(request.app).csrf_token(basis)
            self.reviewer = "anonymous"  # as the review API names insecure-mode callers

    @property
    def queue(self) -> ReviewQueue:
        queue: ReviewQueue = self.request.app.state.service.review
        return queue

    def render(self, name: str, status: int = 200, **context: Any) -> Response:
        context = {
            "reviewer": self.reviewer,
            "signed_in": self.session is not None,
            "csrf_token": self.csrf_token,
            "notice": NOTICES.get(self.request.query_params.get("notice", "")),
            "error": None,
            **context,
        }
        return render(
            name, context, status=status, cookies=self.cookies, secure=is_https(self.request)
        )

    async def form(self) -> FormData | None:
        """The posted form, or None when its CSRF token is missing or wrong."""
        form = await self.request.form()
        basis = (
            self.request.cookies.get(PRESESSION_COOKIE)
            if self.session is None
            else self.request.cookies.get(SESSION_COOKIE)
        )
        if not signer_for(self.request.app).csrf_ok(basis, form.get(CSRF_FIELD)):
            return None
        return form

    def refused_form(self) -> Response:
        return self.render(
            "message.html",
            status=403,
            title="Form expired",
            message="This form is out of date or did not come from this console. "
            "Reload the page and try again.",
        )


async def _call(function: Callable[..., T], *args: Any) -> T:
    return await run_in_threadpool(function, *args)


def _deployment(request: Request, value: object) -> str | None:
    """The deployment a queue filter names, if the spec has it (otherwise: every one)."""
    names = request.app.state.service.spec.deployments
    return value if isinstance(value, str) and value in names else None


async def home(request: Request) -> Response:
    """``/console``: the only console so far is the review queue."""
    return redirect(BASE)


async def queue_page(request: Request) -> Response:
    page = Page(request)
    spec = request.app.state.service.spec
    deployment = _deployment(request, request.query_params.get("deployment"))
    tasks = await _call(page.queue.list, deployment, None, QUEUE_LIMIT)
    stats = await _call(page.queue.stats, deployment)
    return page.render(
        "queue.html",
        title="Review queue",
        tasks=tasks,
        stats=stats,
        deployments=sorted(spec.deployments),
        deployment=deployment,
        limit=QUEUE_LIMIT,
        now=page.queue.clock(),
    )


async def claim_next(request: Request) -> Response:
    page = Page(request)
    form = await page.form()
    if form is None:
        return page.refused_form()
    deployment = _deployment(request, form.get("deployment"))
    view = await _call(page.queue.claim_next, page.reviewer, deployment)
    if view is None:
        query = {"notice": "empty", **({"deployment": deployment} if deployment else {})}
        return redirect(f"{BASE}?{urlencode(query)}")
    return redirect(f"{BASE}/tasks/{view.task_id}?notice=claimed")


async def _explanation(request: Request, view: TaskView) -> dict[str, Any] | None:
    """The stored explanation, or (explain mode ``on_request``) one computed now."""
    decision = view.decision or {}
    stored: dict[str, Any] | None = decision.get("explanation")
    if stored or not decision:
        return stored
    try:
        computed: dict[str, Any] = await request.app.state.service.explanation(
            decision["decision_id"]
        )
    except BastionError as exc:
        logger.info("no explanation for decision %s: %s", decision["decision_id"], exc)
        return None
    return computed


async def _task_page(
    page: Page, task_id: str, *, status: int = 200, error: str | None = None
) -> Response:
    try:
        view = await _call(page.queue.get, task_id)
    except NotFound:
        return page.render(
            "message.html", status=404, title="No such task", message="No task has this id."
        )
    decision = view.decision or {}
    explanation = await _explanation(page.request, view)
    lease, now = view.task.lease_expires_at, page.queue.clock()
    return page.render(
        "task.html",
        status=status,
        error=error,
        title=f"Task {short_id(view.task_id)}",
        view=view,
        task=view.task,
        decision=decision,
        inputs=decision.get("inputs") or {},
        prediction=decision.get("prediction") or {},
        policy=decision.get("policy") or {},
        explanation=explanation,
        reasons=(explanation or {}).get("reasons") or [],
        chart=contribution_chart(explanation, decision.get("inputs")),
        mine=view.task.claimed_by == page.reviewer,
        lease_seconds=None if lease is None else (lease - now).total_seconds(),
        due_seconds=(view.task.due_at - now).total_seconds(),
    )


async def task_page(request: Request) -> Response:
    return await _task_page(Page(request), request.path_params["task_id"])


async def task_action(request: Request) -> Response:
    """POST claim, release, escalate or resolve; redirect to what the reviewer sees next."""
    page = Page(request)
    task_id: str = request.path_params["task_id"]
    action = request.url.path.rsplit("/", 1)[-1]
    form = await page.form()
    if form is None:
        return page.refused_form()
    notes = str(form.get("notes") or "").strip() or None
    queue = page.queue
    try:
        if action == "claim":
            await _call(queue.claim, task_id, page.reviewer)
            return redirect(f"{BASE}/tasks/{task_id}?notice=claimed")
        if action == "release":
            await _call(queue.release, task_id, page.reviewer)
            return redirect(f"{BASE}?notice=released")
        if action == "escalate":
            await _call(queue.escalate, task_id, page.reviewer, notes)
            return redirect(f"{BASE}?notice=escalated")
        verdict = str(form.get("verdict") or "")
        await _call(queue.resolve, task_id, page.reviewer, verdict, notes)
        return redirect(f"{BASE}?notice=resolved")
    except NotFound:
        return page.render(
            "message.html", status=404, title="No such task", message="No task has this id."
        )
    except BastionError as refusal:
        return await _task_page(page, task_id, status=refusal.status, error=refusal.message)
