"""The review console: server-rendered pages under ``/console/review`` for reviewers.

Plain HTML forms over the review queue (`bastion.review.ReviewQueue`), rendered with Jinja2
and working without JavaScript; a small script only adds keyboard shortcuts and refreshes
the queue. People sign in with a review (or admin) API key and get a session cookie; the
auth middleware (`bastion.server.auth`) checks that cookie on every ``/console`` request.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bastion.console import pages, signin
from bastion.console.templating import BASE, CONSOLE, SIGN_IN, STATIC, STATIC_DIR

routes: list[BaseRoute] = [
    Route(CONSOLE, pages.home, methods=["GET"]),
    Route(SIGN_IN, signin.sign_in_page, methods=["GET"]),
    Route(SIGN_IN, signin.sign_in, methods=["POST"]),
    Route(f"{BASE}/sign-out", signin.sign_out, methods=["POST"]),
    Route(BASE, pages.queue_page, methods=["GET"]),
    Route(f"{BASE}/claim-next", pages.claim_next, methods=["POST"]),
    Route(BASE + "/tasks/{task_id}", pages.task_page, methods=["GET"]),
    *(
        Route(BASE + "/tasks/{task_id}/" + action, pages.task_action, methods=["POST"])
        for action in pages.ACTIONS
    ),
    Mount(STATIC, StaticFiles(directory=STATIC_DIR), name="console-static"),
]
