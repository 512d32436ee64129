"""The review console through the real app, as a browser without JavaScript uses it:
sign-in, the queue, a task, and the plain forms that claim and decide it."""

from __future__ import annotations

import logging
import re
import time
from importlib import resources

import pytest
from httpx2 import Response
from sqlalchemy import select, update
from starlette.testclient import TestClient

from bastion.console.session import PRESESSION_COOKIE, SESSION_COOKIE
from bastion.server.app import app_for
from bastion.spec import parse_spec
from bastion.store.keys import KeyService
from bastion.store.notify import open_change_feed
from bastion.store.tables import DecisionRow, ReviewTaskRow
from tests.console.conftest import SPEC, Console, csrf_of
from tests.credentials import bearer

QUEUE = "/console/review"


def _task_url(task_id: str) -> str:
    return f"{QUEUE}/tasks/{task_id}"


def _post(console: Console, path: str, page: str, **data: str) -> Response:
    """Submit a form the way the browser would: with the CSRF token of the page it is on."""
    html = console.client.get(page).text
    return console.client.post(
        path, data={"csrf_token": csrf_of(html), **data}, follow_redirects=False
    )


def test_console_without_a_session_redirects_to_sign_in(console: Console) -> None:
    response = console.client.get(_task_url(console.tasks[0]), follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"{QUEUE}/sign-in?next={_task_url(console.tasks[0])}"


def test_bearer_token_does_not_open_the_console(console: Console) -> None:
    response = console.client.get(
        QUEUE, headers=bearer(console.tokens["review"]), follow_redirects=False
    )

    assert response.status_code == 303
    assert "/sign-in" in response.headers["location"]


def test_sign_in_sets_a_strict_httponly_cookie_that_does_not_hold_the_key(
    console: Console,
) -> None:
    response = console.sign_in("review")

    assert response.status_code == 303
    assert response.headers["location"] == QUEUE
    header = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in header
    assert "SameSite=strict" in header
    assert "Path=/console" in header
    secret = console.tokens["review"].split("_", 2)[2]
    assert secret not in header
    assert console.tokens["review"] not in header


def test_sign_in_returns_to_the_page_asked_for(console: Console) -> None:
    target = _task_url(console.tasks[1])
    page = console.client.get(f"{QUEUE}/sign-in?next={target}")

    response = console.client.post(
        f"{QUEUE}/sign-in",
        data={
            "api_key": console.tokens["review"],
            "csrf_token": csrf_of(page.text),
            "next": target,
        },
        follow_redirects=False,
    )

    assert response.headers["location"] == target


def test_sign_in_never_redirects_off_the_console(console: Console) -> None:
    page = console.client.get(f"{QUEUE}/sign-in")

    response = console.client.post(
        f"{QUEUE}/sign-in",
        data={
            "api_key": console.tokens["review"],
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/console/review",
        },
        follow_redirects=False,
    )

    assert response.headers["location"] == QUEUE


def test_sign_in_refuses_an_unknown_key(console: Console) -> None:
    page = console.client.get(f"{QUEUE}/sign-in")
    wrong = console.tokens["review"][:-1] + ("A" if console.tokens["review"][-1] != "A" else "B")

    response = console.client.post(
        f"{QUEUE}/sign-in", data={"api_key": wrong, "csrf_token": csrf_of(page.text)}
    )

    assert response.status_code == 401
    assert "That key is not valid" in response.text
    assert SESSION_COOKIE not in console.client.cookies


def test_sign_in_refuses_a_role_that_may_not_review(console: Console) -> None:
    response = console.sign_in("predict")

    assert response.status_code == 403
    assert "A predict key may not work the review queue" in response.text
    assert SESSION_COOKIE not in console.client.cookies


def test_sign_in_without_the_form_token_is_refused(console: Console) -> None:
    console.client.get(f"{QUEUE}/sign-in")

    response = console.client.post(
        f"{QUEUE}/sign-in", data={"api_key": console.tokens["review"]}, follow_redirects=False
    )

    assert response.status_code == 403
    assert SESSION_COOKIE not in console.client.cookies


def test_admin_keys_may_review_too(console: Console) -> None:
    console.sign_in("admin")

    assert console.client.get(QUEUE).status_code == 200


def test_revoked_key_loses_its_session_on_a_following_request(console: Console) -> None:
    console.sign_in("review")
    assert console.client.get(QUEUE).status_code == 200
    key_id = console.tokens["review"].split("_")[1]
    feed = open_change_feed(console.database_url, None)  # as `bastion keys revoke` does
    try:
        KeyService(console.database, feed).revoke(key_id, actor="tests")
    finally:
        feed.close()

    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        response = console.client.get(QUEUE, follow_redirects=False)
        if response.status_code == 303:
            break
        time.sleep(0.05)
    assert response.status_code == 303
    assert "/sign-in" in response.headers["location"]


def test_sign_out_ends_the_session(console: Console) -> None:
    console.sign_in("review")

    response = _post(console, f"{QUEUE}/sign-out", QUEUE)

    assert response.status_code == 303
    assert console.client.get(QUEUE, follow_redirects=False).status_code == 303


def test_queue_lists_unresolved_tasks_by_priority(console: Console) -> None:
    console.sign_in("review")

    page = console.client.get(QUEUE)

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    shown = re.findall(r'href="/console/review/tasks/([0-9a-f-]{36})"', page.text)
    assert shown == console.tasks  # priorities 3, 2, 1
    assert "Claim next" in page.text


def test_queue_filters_by_deployment(console: Console) -> None:
    console.sign_in("review")

    page = console.client.get(f"{QUEUE}?deployment=other")

    assert "/console/review/tasks/" not in page.text
    assert "No unresolved tasks for other" in page.text


def test_claim_next_then_resolve_records_the_verdict_as_review_feedback(
    console: Console,
) -> None:
    console.sign_in("review")

    claimed = _post(console, f"{QUEUE}/claim-next", QUEUE)
    assert claimed.status_code == 303
    task_url = claimed.headers["location"].split("?")[0]
    assert task_url == _task_url(console.tasks[0])  # the highest priority first
    page = console.client.get(claimed.headers["location"])
    assert "Task claimed" in page.text
    assert "Yours for" in page.text

    resolved = _post(
        console, f"{task_url}/resolve", task_url, verdict="decline", notes="income unverified"
    )

    assert resolved.status_code == 303
    assert resolved.headers["location"] == f"{QUEUE}?notice=resolved"
    row = console.task(console.tasks[0])
    assert (row.status, row.verdict) == ("resolved", "decline")
    (feedback,) = console.feedback()
    assert (feedback.decision_id, feedback.source, feedback.label) == (row.decision_id, "review", 1)
    assert console.tasks[0] not in console.client.get(QUEUE).text


def test_task_page_shows_the_explanation_bars_sorted_and_escaped(console: Console) -> None:
    console.sign_in("review")

    page = console.client.get(_task_url(console.tasks[0])).text

    chart = page[page.index('class="chart"') :]
    fields = re.findall(r'<th scope="row">([^<]*(?:&lt;[^<]*)*)</th>', chart)
    assert fields == ["debt_ratio", "income", "utilization", "&lt;b&gt;injected&lt;/b&gt;", "age"]
    assert "<b>injected</b>" not in page
    assert page.count('<rect class="up"') == 3
    assert page.count('<rect class="down"') == 2
    assert "DEBT_HIGH" in page
    assert "Claim" in page  # not claimed yet: no verdict buttons
    assert 'value="decline"' not in page


def test_form_without_its_token_changes_nothing(console: Console) -> None:
    console.sign_in("review")

    response = console.client.post(f"{QUEUE}/claim-next", data={}, follow_redirects=False)
    forged = console.client.post(
        f"{QUEUE}/claim-next", data={"csrf_token": "0" * 40}, follow_redirects=False
    )

    assert response.status_code == forged.status_code == 403
    with console.database.transaction() as session:
        statuses = set(session.scalars(select(ReviewTaskRow.status)))
    assert statuses == {"open"}


def test_another_reviewers_claim_is_respected(console: Console) -> None:
    console.sign_in("review")
    _post(console, f"{_task_url(console.tasks[0])}/claim", _task_url(console.tasks[0]))
    console.client.cookies.clear()
    console.sign_in("admin")

    page = console.client.get(_task_url(console.tasks[0])).text
    refused = _post(
        console,
        f"{_task_url(console.tasks[0])}/resolve",
        _task_url(console.tasks[0]),
        verdict="approve",
    )

    assert "claimed by" in page
    assert refused.status_code == 409  # the page again, with the reason
    assert 'role="alert"' in refused.text
    assert console.feedback() == []


def test_release_and_escalate_return_the_task_to_the_queue(console: Console) -> None:
    console.sign_in("review")
    first, second = console.tasks[0], console.tasks[1]
    _post(console, f"{_task_url(first)}/claim", _task_url(first))
    _post(console, f"{_task_url(second)}/claim", _task_url(second))

    released = _post(console, f"{_task_url(first)}/release", _task_url(first))
    escalated = _post(
        console, f"{_task_url(second)}/escalate", _task_url(second), notes="needs a senior"
    )

    assert released.headers["location"] == f"{QUEUE}?notice=released"
    assert escalated.headers["location"] == f"{QUEUE}?notice=escalated"
    assert console.task(first).status == "open"
    assert console.task(second).status == "escalated"
    assert "needs a senior" in (console.task(second).notes or "")


def test_unknown_task_is_a_404_page(console: Console) -> None:
    console.sign_in("review")

    response = console.client.get(_task_url("00000000-0000-0000-0000-000000000000"))

    assert response.status_code == 404
    assert "No such task" in response.text


def test_stylesheet_is_served_before_sign_in(console: Console) -> None:
    response = console.client.get("/console/static/console.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_templates_and_static_files_ship_inside_the_package() -> None:
    package = resources.files("bastion.console")
    for name in ("base.html", "sign_in.html", "queue.html", "task.html"):
        assert (package / "templates" / name).is_file()
    assert (package / "static" / "console.css").is_file()


def test_sign_in_page_sets_only_the_pre_session_cookie(console: Console) -> None:
    response = console.client.get(f"{QUEUE}/sign-in")

    assert response.status_code == 200
    assert PRESESSION_COOKIE in response.headers["set-cookie"]
    assert 'type="password"' in response.text


def test_insecure_mode_opens_the_console_but_still_checks_form_tokens(console: Console) -> None:
    app = app_for(parse_spec(SPEC), console.settings, insecure=True)
    with TestClient(app) as client:
        assert client.get(f"{QUEUE}/sign-in", follow_redirects=False).status_code == 303
        page = client.get(QUEUE)
        refused = client.post(f"{QUEUE}/claim-next", data={}, follow_redirects=False)
        claimed = client.post(
            f"{QUEUE}/claim-next", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
        )

    assert page.status_code == 200
    assert refused.status_code == 403
    assert claimed.status_code == 303
    assert console.task(console.tasks[0]).claimed_by == "anonymous"


def test_console_root_leads_to_the_queue(console: Console) -> None:
    console.sign_in("review")

    response = console.client.get("/console", follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (303, QUEUE)


def test_session_cookie_is_secure_over_https(console: Console) -> None:
    client = TestClient(console.client.app, base_url="https://testserver")
    page = client.get(f"{QUEUE}/sign-in")

    response = client.post(
        f"{QUEUE}/sign-in",
        data={"api_key": console.tokens["review"], "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_access_log_names_the_console_route_not_the_task(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    console.sign_in("review")
    with caplog.at_level(logging.INFO, logger="bastion.access"):
        console.client.get(_task_url(console.tasks[0]))

    (line,) = (r.getMessage() for r in caplog.records if r.name == "bastion.access")
    key_id = console.tokens["review"].split("_")[1]
    assert f"key={key_id} role=review method=GET path=/console/review/tasks/{{task_id}}" in line
    assert console.tasks[0] not in line


def test_task_page_explains_a_decision_stored_without_an_explanation(console: Console) -> None:
    task = console.task(console.tasks[2])
    with console.database.transaction() as session:
        session.execute(
            update(DecisionRow).where(DecisionRow.id == task.decision_id).values(explanation=None)
        )
    console.sign_in("review")

    page = console.client.get(_task_url(console.tasks[2])).text

    assert "No explanation was stored" not in page
    assert page.count("<rect ") == 8  # one bar per model input of the demo model
    assert "debt_ratio" in page[page.index('class="chart"') :]


def test_claim_next_in_an_empty_deployment_says_so(console: Console) -> None:
    console.sign_in("review")

    response = _post(
        console, f"{QUEUE}/claim-next", f"{QUEUE}?deployment=other", deployment="other"
    )

    assert response.headers["location"] == f"{QUEUE}?notice=empty&deployment=other"
    page = console.client.get(response.headers["location"]).text
    assert "Nothing to claim" in page
