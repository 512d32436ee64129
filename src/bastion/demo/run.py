"""`bastion demo`: data, model, registry, spec, a real server process and real traffic.

The spec it writes is a small but realistic credit policy: two CEL rules (an applicant
under 18 is declined, a loan larger than a year's income goes to a person), score bands,
a review queue with a capacity and a little exploration, explanations with reason codes
for every decline, and hourly drift and performance windows with an alert. The model is
registered with its held-out rows and their labels as the monitor's reference. After the
traffic it shows an explained decline, a review task and a decision made by a rule.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bastion.demo.data import LABEL, REQUEST_COLUMNS, generate_applications
from bastion.demo.train import train_model
from bastion.explain.config import ExplainConfig
from bastion.monitor.config import MonitorConfig
from bastion.policy.config import PolicyConfig
from bastion.registry import ArtifactStore, Registry
from bastion.settings import Settings
from bastion.spec import Deployment, ModelRef, Spec, dump_spec
from bastion.store import Database
from bastion.store.keys import KeyService
from bastion.store.notify import open_change_feed

MODEL_NAME = "credit-risk"
DEPLOYMENT = "credit"

#: the demo's credit policy: rules first, then score bands; declines are explained
POLICY = PolicyConfig.model_validate(
    {
        "version": "credit-demo-1",
        "rules": [
            {
                "name": "underage",
                "when": "features.age < 18.0",
                "outcome": "decline",
                "reason": "AGE_BELOW_18",
            },
            {
                "name": "loan_above_income",
                "when": "features.amount > features.income",
                "outcome": "review",
                "reason": "LOAN_TO_INCOME",
            },
        ],
        "bands": {"approve_below": 0.10, "decline_at_or_above": 0.30},
        "fallback": {"outcome": "review", "reason": "MODEL_UNAVAILABLE"},
        "review": {
            # expected loss first: the riskiest large loans are reviewed soonest
            "priority": "prediction == null ? 0.0 : prediction.score * features.amount",
            "sla_minutes": 240,
            "capacity": 100,
            "overflow": "nearest_band",
            "exploration": 0.02,
        },
    }
)
EXPLAIN = ExplainConfig.model_validate(
    {
        "mode": "adverse",
        "top_k": 3,
        "reasons": {
            "debt_ratio": {"code": "R12", "text": "Existing debt is high relative to income"},
            "utilization": {"code": "R14", "text": "Card balances are high relative to limits"},
            "income": {"code": "R03", "text": "Income is low for the amount requested"},
            "amount": {"code": "R05", "text": "The amount requested is high"},
            "employment_years": {"code": "R09", "text": "Time with the current employer is short"},
        },
    }
)

#: hourly drift and performance windows (labels arrive later through feedback)
MONITOR = MonitorConfig.model_validate(
    {
        "window_minutes": 60,
        "interval_seconds": 60,
        "min_rows": 100,
        "costs": {"fp": 1, "fn": 5, "review": 0.4},
        "alerts": [
            {
                "name": "feature_drift",
                "when": "dataset.drift_share != null && dataset.drift_share >= 0.25",
                "for_windows": 2,
                "summary": "A quarter or more of the features drifted for two hours",
            }
        ],
    }
)


@dataclass(frozen=True)
class TrafficSummary:
    sent: int
    failed: int
    latencies_ms: list[float]
    outcomes: Counter[Any]
    first_decision_id: str | None
    #: the first decision answered with each outcome
    examples: dict[Any, dict[str, Any]] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def prepare(
    console: Console, settings: Settings, n_rows: int, spec_path: Path
) -> list[dict[str, Any]]:
    """Generate data, train, register and promote the model, write the spec.

    Returns request bodies built from held-out rows.
    """
    work = settings.home / "demo"
    work.mkdir(parents=True, exist_ok=True)
    with console.status("generating credit applications…"):
        frame = generate_applications(n_rows, seed=7)
        frame.to_csv(work / "applications.csv", index=False)
    console.print(f"generated {len(frame):,} applications → {work / 'applications.csv'}")
    with console.status("training LightGBM…"):
        trained = train_model(frame, seed=7)
        artifact = trained.save(work / "credit-risk.txt")
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in trained.metrics.items())
    console.print(f"trained {MODEL_NAME}: {metrics}")
    database = Database(settings.resolved_database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    # Held-out rows with their labels: the drift reference, and the labelled scores that
    # label-free estimates (CBPE) are fitted on — training rows would flatter the model.
    version = registry.register(
        MODEL_NAME,
        artifact,
        sample=trained.test_frame,
        label_column=LABEL,
        metrics=trained.metrics,
        tags={"source": "bastion demo", "label": LABEL},
        description="Probability that a credit application defaults within 12 months.",
    )
    registry.set_stage(version.ref, "production", actor="bastion demo")
    database.dispose()
    console.print(f"registered {version.ref} and moved it to production")
    spec = Spec(
        deployments={
            DEPLOYMENT: Deployment(
                model=ModelRef(name=MODEL_NAME, stage="production"),
                description="Credit default risk for new applications.",
                policy=POLICY,
                explain=EXPLAIN,
                monitor=MONITOR,
            )
        }
    )
    spec_path.write_text(dump_spec(spec), encoding="utf-8")
    console.print(f"wrote {spec_path}")
    held_out = frame.loc[trained.test_frame.index, REQUEST_COLUMNS]
    bodies = []
    for index, row in enumerate(held_out.to_dict(orient="records")):
        features = {k: (None if _missing(v) else _plain(v)) for k, v in row.items()}
        bodies.append({"subject_id": f"applicant-{index:06d}", "features": features})
    return bodies


def create_demo_key(settings: Settings) -> str:
    """An admin key for the demo's traffic and its "Try it" commands; returns the token."""
    database = Database(settings.resolved_database_url)
    feed = open_change_feed(settings.resolved_database_url, settings.redis_url)
    try:
        database.migrate()
        created = KeyService(database, feed).create(
            "admin", description="bastion demo", actor="bastion demo"
        )
    finally:
        feed.close()
        database.dispose()
    return created.token


def _missing(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def start_server(
    spec_path: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`bastion serve` in its own process, its output appended to `log`."""
    command = [
        sys.executable,
        "-m",
        "bastion",
        "serve",
        "--config",
        str(spec_path),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log.open("ab") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll OIP readiness until the server answers; fail fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become ready within {timeout:.0f} s")


async def send_traffic(
    url: str, bodies: list[dict[str, Any]], token: str, concurrency: int = 8
) -> TrafficSummary:
    latencies: list[float] = []
    outcomes: Counter[Any] = Counter()
    examples: dict[Any, dict[str, Any]] = {}
    failed = 0
    first: list[str] = []
    queue = list(reversed(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failed
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            response = await client.post(f"{url}/v1/deployments/{DEPLOYMENT}/decide", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                failed += 1
                continue
            decision = response.json()
            outcomes[decision["outcome"]] += 1
            examples.setdefault(decision["outcome"], decision)
            if not first:
                first.append(decision["decision_id"])

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return TrafficSummary(
        len(bodies), failed, latencies, outcomes, first[0] if first else None, examples
    )


def print_summary(
    console: Console, summary: TrafficSummary, url: str, example: dict[str, Any], token: str
) -> None:
    table = Table(title="demo traffic", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("requests", f"{summary.sent:,}")
    table.add_row("failed", f"{summary.failed:,}")
    table.add_row("p50 latency", f"{summary.percentile(50):.2f} ms")
    table.add_row("p99 latency", f"{summary.percentile(99):.2f} ms")
    for outcome, count in sorted(summary.outcomes.items(), key=lambda kv: str(kv[0])):
        table.add_row(f"outcome {outcome}", f"{count:,}")
    console.print(table)
    body = json.dumps(example)
    # Commands are printed unwrapped (soft_wrap) so they can be copied and pasted whole.
    # The demo's admin key is shown once, in the export line; the commands refer to it.
    auth = '-H "Authorization: Bearer $BASTION_KEY"'
    lines = [
        f"  key:       export BASTION_KEY={token}",
        f"  decide:    curl -s -X POST {url}/v1/deployments/{DEPLOYMENT}/decide {auth} "
        f"-H 'content-type: application/json' -d '{body}'",
        f"  OIP model: curl -s {auth} {url}/v2/models/{DEPLOYMENT}",
        f"  metrics:   curl -s {auth} {url}/metrics",
        "  drift:     .venv/bin/bastion monitor drift credit --since 1h",
        "  report:    .venv/bin/bastion monitor report credit --window 1h -o report.html",
        "  models:    .venv/bin/bastion models list",
        "  keys:      .venv/bin/bastion keys list",
    ]
    if summary.first_decision_id:
        decision = f"{url}/v1/decisions/{summary.first_decision_id}"
        lines.insert(2, f"  decision:  curl -s {auth} {decision}")
    decline = summary.examples.get("decline")
    if decline is not None:
        explanation = f"{url}/v1/decisions/{decline['decision_id']}/explanation"
        lines.insert(3, f"  explain:   curl -s {auth} {explanation}")
    lines.insert(-2, f"  review:    curl -s {auth} {url}/v1/review/tasks")
    console.print("\n[bold]Try it[/]")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def _json(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON body; a clear error naming the request when it is not a 200."""
    if response.status_code != 200:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


def show_decisions(
    console: Console, url: str, token: str, summary: TrafficSummary, example: dict[str, Any]
) -> None:
    """An explained decline, a review task and a rule's decision, fetched from the server."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        decline = summary.examples.get("decline")
        if decline is not None:
            explanation = _json(client.get(f"/v1/decisions/{decline['decision_id']}/explanation"))
            console.print(
                f"\n[bold]An explained decline[/] {decline['decision_id']} "
                f"(score {decline['prediction']['score']:.3f}, "
                f"{explanation['method']}, additivity error "
                f"{explanation['additivity_error']:.1e}):",
                highlight=False,
            )
            for reason in decline.get("reasons", []):
                console.print(
                    f"  {reason['code']:<6} {reason['text']} "
                    f"(+{reason['contribution']:.3f} {explanation['output']})",
                    highlight=False,
                    markup=False,
                )
        review = summary.examples.get("review")
        routed = None if review is None else review["policy"]["review"]
        if review is not None and routed is not None:
            task = _json(client.get(f"/v1/review/tasks/{routed['task_id']}"))
            policy = review["policy"]
            sent_by = f"rule {policy['rule']}" if policy["rule"] else f"{policy['band']} band"
            console.print(
                f"\n[bold]A review task[/] {task['task_id']} for decision {task['decision_id']}: "
                f"sent by the {sent_by}, priority {task['priority']:.1f}, due {task['due_at']}, "
                f"status {task['status']}",
                highlight=False,
            )
        minor = {**example, "features": {**example["features"], "age": 17}}
        decided = _json(client.post(f"/v1/deployments/{DEPLOYMENT}/decide", json=minor))
        console.print(
            f"\n[bold]A rule's decision[/] for a 17-year-old applicant: {decided['outcome']} "
            f"by rule {decided['policy']['rule']} (reason {decided['policy']['reason']})",
            highlight=False,
        )


def run_demo(console: Console, *, port: int, n_requests: int, n_rows: int, wait: bool) -> None:
    settings = Settings()
    spec_path = Path("bastion.yaml")
    bodies = prepare(console, settings, n_rows, spec_path)
    token = create_demo_key(settings)
    url = f"http://127.0.0.1:{port}"
    log = settings.home / "demo" / "server.log"
    process = start_server(spec_path, port, log)
    summary = TrafficSummary(0, 0, [], Counter(), None)
    try:
        wait_ready(url, process)
        console.print(f"server ready at {url} (log: {log})")
        traffic = (bodies * (n_requests // len(bodies) + 1))[:n_requests]
        summary = asyncio.run(send_traffic(url, traffic, token))
        print_summary(console, summary, url, traffic[0], token)
        show_decisions(console, url, token, summary, traffic[0])
        if wait:
            console.print("\nserving until Ctrl-C …")
            while process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping …")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    if process.returncode != 0:
        raise RuntimeError(f"the demo server exited with status {process.returncode}; see {log}")
    if summary.failed:
        raise RuntimeError(f"{summary.failed} demo requests failed; see {log}")
