"""End to end in a real browser: a reviewer signs in, claims a task, sees its explanation,
resolves it, and the verdict is stored as feedback with source ``review``.

A real `bastion serve` process serves the demo credit model with a policy that routes the
middle of the score range to review and explains every decision; headless Debian chromium,
driven by Playwright, does what a reviewer does. Without chromium the test is skipped,
except under CI=true, where it fails (`.ci/run` installs chromium).

Set BASTION_SCREENSHOT=docs/review-task.png to save the task page (how the committed
screenshot was made).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from bastion.demo.train import TrainedModel
from bastion.registry import ArtifactStore, Registry
from bastion.settings import Settings
from bastion.store import Database
from bastion.store.tables import FeedbackRow
from tests.conftest import IN_CI
from tests.credentials import bearer, create_key
from tests.support import request_rows, running_servers

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("BASTION_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_ENV = "BASTION_SCREENSHOT"
SPEC = """
deployments:
  credit:
    model: credit-risk@production
    description: Credit default risk for new applications.
    policy:
      rules:
        - {name: tiny_amount, when: "double(features.amount) < 10.0", outcome: approve, reason: R_TINY}
      bands: {approve_below: 0.04, decline_at_or_above: 0.5}
      review:
        priority: "prediction.score * double(features.amount)"
        sla_minutes: 240
        verdicts: {approve: 0, decline: 1}
    explain:
      mode: all
      adverse_outcomes: [decline, review]
      reasons:
        debt_ratio: {code: DEBT_RATIO, text: Debt is high relative to income}
        utilization: {code: UTILIZATION, text: Credit lines are heavily used}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        message = f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Server:
    url: str
    database_url: str
    #: a predict key (to post decisions) and a review key (for the reviewer)
    tokens: dict[str, str]


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, credit_model: tuple[Path, TrainedModel]
) -> Iterator[Server]:
    """One `bastion serve` process with the demo model registered, and keys made before it
    started (so its key cache has them from the first request)."""
    path, trained = credit_model
    settings = Settings(home=tmp_path / ".bastion", database_url=database_url)
    database = Database(database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    version = registry.register("credit-risk", path, sample=trained.train_frame)
    registry.set_stage(version.ref, "production")
    database.dispose()
    tokens = {role: create_key(database_url, role) for role in ("predict", "review")}
    spec_path = tmp_path / "bastion.yaml"
    spec_path.write_text(SPEC, encoding="utf-8")
    env = {
        **os.environ,
        "BASTION_HOME": str(settings.home),
        "BASTION_DATABASE_URL": database_url,
    }
    env.pop("BASTION_REDIS_URL", None)
    with running_servers(spec_path, env, tmp_path, count=1) as (url,):
        yield Server(url, database_url, tokens)


def _decide_until_reviews(url: str, token: str, rows: list[dict[str, Any]], n: int) -> set[str]:
    """Post decisions until `n` are routed to review; their decision ids."""
    routed: set[str] = set()
    with httpx.Client(base_url=url, headers=bearer(token), timeout=10) as client:
        for index, row in enumerate(rows):
            body = {"subject_id": f"applicant-{index}", "features": row}
            response = client.post("/v1/deployments/credit/decide", json=body)
            assert response.status_code == 200, response.text
            if response.json()["outcome"] == "review":
                routed.add(response.json()["decision_id"])
                if len(routed) == n:
                    return routed
    raise AssertionError(f"only {len(routed)} of {len(rows)} decisions were routed to review")


def _sign_in(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/console/review")
    expect(page.get_by_role("heading", name="Sign in to review")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_reviewer_claims_sees_the_explanation_and_resolves_in_a_browser(
    browser: Browser,
    server: Server,
    credit_model: tuple[Path, TrainedModel],
) -> None:
    url, database_url, review_key = server.url, server.database_url, server.tokens["review"]
    routed = _decide_until_reviews(
        url, server.tokens["predict"], request_rows(credit_model[1], 300), 3
    )

    # the whole flow with JavaScript off: plain forms and redirects must be enough
    context = browser.new_context(
        viewport={"width": 1360, "height": 860}, java_script_enabled=False
    )
    page = context.new_page()
    _sign_in(page, url, review_key)

    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.locator("table.tasks tbody tr")).not_to_have_count(0)
    page.get_by_role("button", name="Claim next").click()

    expect(page.get_by_text("Task claimed.")).to_be_visible()
    expect(page.get_by_text("Yours for")).to_be_visible()
    bars = page.locator("table.chart tbody tr")
    expect(bars.first).to_be_visible()
    assert bars.count() >= 5
    assert page.locator("table.chart rect.up").count() >= 1
    task_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    if screenshot := os.environ.get(SCREENSHOT_ENV):
        page.screenshot(path=screenshot, full_page=True)

    page.get_by_label("Notes").fill("Payslips checked: income is confirmed.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Verdict recorded.")).to_be_visible()
    context.close()

    with httpx.Client(base_url=url, headers=bearer(review_key), timeout=10) as client:
        task = client.get(f"/v1/review/tasks/{task_id}").json()
    assert (task["status"], task["verdict"]) == ("resolved", "approve")
    database = Database(database_url)
    try:
        with database.transaction() as session:
            feedback = session.scalars(
                select(FeedbackRow).where(FeedbackRow.decision_id == task["decision_id"])
            ).all()
    finally:
        database.dispose()
    assert task["decision_id"] in routed
    assert [(f.source, f.label) for f in feedback] == [("review", 0)]

    # with JavaScript on, the keyboard shortcut claims the next task and the lease counts down
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, url, review_key)
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    page.keyboard.press("n")
    expect(page.get_by_text("Task claimed.")).to_be_visible()
    expect(page.locator(".lease")).to_have_text(re.compile(r"^Yours for 1[0-4]m \d\ds$"))
    assert page.url.rsplit("/", 1)[-1].split("?")[0] != task_id
    context.close()
