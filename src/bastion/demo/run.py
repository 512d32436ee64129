"""`bastion demo`: data, model, registry, spec, a real server process and real traffic."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bastion.demo.data import LABEL, REQUEST_COLUMNS, generate_applications
from bastion.demo.train import train_model
from bastion.registry import ArtifactStore, Registry
from bastion.settings import Settings
from bastion.spec import Deployment, ModelRef, Spec, dump_spec
from bastion.store import Database
from bastion.store.keys import KeyService
from bastion.store.notify import open_change_feed

MODEL_NAME = "credit-risk"
DEPLOYMENT = "credit"


@dataclass(frozen=True)
class TrafficSummary:
    sent: int
    failed: int
    latencies_ms: list[float]
    outcomes: Counter[Any]
    first_decision_id: str | None

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
    version = registry.register(
        MODEL_NAME,
        artifact,
        sample=trained.train_frame,
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
            if not first:
                first.append(decision["decision_id"])

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return TrafficSummary(len(bodies), failed, latencies, outcomes, first[0] if first else None)


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
        "  models:    .venv/bin/bastion models list",
        "  keys:      .venv/bin/bastion keys list",
    ]
    if summary.first_decision_id:
        decision = f"{url}/v1/decisions/{summary.first_decision_id}"
        lines.insert(2, f"  decision:  curl -s {auth} {decision}")
    console.print("\n[bold]Try it[/]")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)


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
