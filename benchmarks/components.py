"""In-process timings of the pieces of Bastion's request path, next to cheaper alternatives.

`serving.py` says how fast the whole server is and its profile says where the time goes;
this says what each piece costs alone and what a cheaper way of doing it would cost, so an
optimisation can be sized before it is written. Everything runs in this process, pinned to
one CPU, on the demo model and held-out applications:

- input: `/decide` body parse and check vs OIP tensor decode and `build_rows`
- model: `LiveDeployment._predict_rows` (pandas frame, adapter) vs a float64 numpy row
  straight into the booster, for 1 and 64 rows
- decision log: `DecisionLog._write` of 34 records (a typical group commit at c=64) into a
  table already holding `--log-rows` rows, with random (uuid4) and with time-ordered ids,
  and the same commit through the DB-API `executemany` without SQLAlchemy

Run: ``.venv/bin/python benchmarks/components.py [--log-rows 200000]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console

from bastion.demo.run import prepare
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.registry import ArtifactStore, Registry
from bastion.registry.signature import InputSignature
from bastion.server.oip import build_rows
from bastion.server.tensors import parse_inputs
from bastion.serving.decision_log import DecisionLog, Record
from bastion.serving.deployment import LiveDeployment
from bastion.serving.inputs import check_instances
from bastion.settings import Settings
from bastion.spec import load_spec
from bastion.store import Database
from bench_workloads import oip_body

GROUP = 34

console = Console(highlight=False)


def timed(label: str, call: Callable[[], object], repeat: int) -> float:
    """Mean µs per call of `call` after a short warm-up; prints one line."""
    for _ in range(max(3, repeat // 20)):
        call()
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    micros = (time.perf_counter() - started) / repeat * 1e6
    console.print(f"  {label:<62} {micros:9.1f} µs")
    return micros


def time_ordered_id() -> str:
    """A UUIDv7-style id: 48 bits of milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    return str(uuid.UUID(int=(millis << 80) | int.from_bytes(os.urandom(10), "big")))


def random_id() -> str:
    return str(uuid.uuid4())


def decision_records(
    n: int, make_id: Callable[[], str], row: dict[str, Any], output: dict[str, Any]
) -> list[Record]:
    pseudonyms = Pseudonymizer(b"components-benchmark-key")
    now = datetime.now(UTC)
    return [
        {
            "id": make_id(),
            "created_at": now,
            "deployment": "credit",
            "model_name": "credit-risk",
            "model_version": 1,
            "subject_key": pseudonyms.pseudonymize(f"applicant-{i % 400:06d}"),
            "inputs": row,
            "outputs": output,
            "outcome": output["label"],
            "latency_ms": 1.0,
        }
        for i in range(n)
    ]


RAW_INSERT = (
    "INSERT INTO decisions (id, created_at, deployment, model_name, model_version, "
    "subject_key, inputs, outputs, outcome, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)


def raw_write(connection: sqlite3.Connection, records: list[Record]) -> None:
    """The same group commit through the DB-API, JSON columns serialized with orjson."""
    connection.executemany(
        RAW_INSERT,
        [
            (
                r["id"],
                r["created_at"].isoformat(),
                r["deployment"],
                r["model_name"],
                r["model_version"],
                r["subject_key"],
                orjson.dumps(r["inputs"]).decode(),
                orjson.dumps(r["outputs"]).decode(),
                orjson.dumps(r["outcome"]).decode(),
                r["latency_ms"],
            )
            for r in records
        ],
    )
    connection.commit()


def write_groups(write: Callable[[list[Record]], None], groups: list[list[Record]]) -> None:
    """Call `write` with the next group each time: a `timed` body that never repeats ids."""
    write(groups.pop())


def decision_log(folder: Path, log_rows: int, row: dict[str, Any], output: dict[str, Any]) -> None:
    console.print(f"\n[bold]decision log[/]: commits of {GROUP} records, {log_rows:,} rows before")
    for name, make_id in (("uuid4 ids", random_id), ("time-ordered ids", time_ordered_id)):
        database = Database(f"sqlite:///{folder / name.replace(' ', '-')}.db")
        database.migrate()
        log = DecisionLog(database, folder / "spool")
        for start in range(0, log_rows, 2000):
            log._write(decision_records(min(2000, log_rows - start), make_id, row, output))
        groups = [decision_records(GROUP, make_id, row, output) for _ in range(250)]
        timed(
            f"DecisionLog._write (SQLAlchemy), {name}",
            partial(write_groups, log._write, groups),
            200,
        )
        connection = sqlite3.connect(str(database.url.database))
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        groups = [decision_records(GROUP, make_id, row, output) for _ in range(250)]
        raw = partial(raw_write, connection)
        timed(f"DB-API executemany + commit, {name}", partial(write_groups, raw, groups), 200)
        connection.close()
        database.dispose()


def numpy_predict(adapter: Any, names: list[str], rows: list[dict[str, Any]]) -> Any:
    """What the adapter does after pandas, without pandas: codes, one float64 matrix, predict."""
    codes: dict[str, dict[Any, int]] = adapter._codes
    matrix = np.array(
        [
            [
                codes[n].get(r[n], np.nan) if n in codes else (np.nan if r[n] is None else r[n])
                for n in names
            ]
            for r in rows
        ],
        dtype=np.float64,
    )
    return adapter.booster.predict(matrix, num_threads=1)


def parse_decide(raw: bytes, signature: InputSignature) -> object:
    return check_instances([orjson.loads(raw)["features"]], signature, prefix="features")


def parse_oip(raw: bytes, signature: InputSignature) -> object:
    return build_rows(parse_inputs(orjson.loads(raw)["inputs"], b""), signature, 1000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log-rows", type=int, default=200_000, help="rows already logged")
    args = parser.parse_args(argv)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(cpus)})
    with tempfile.TemporaryDirectory(prefix="bastion-components-") as tmp:
        folder = Path(tmp)
        home = folder / ".bastion"
        settings = Settings(home=home, database_url=f"sqlite:///{home}/bastion.db")
        bodies = prepare(Console(quiet=True), settings, 20_000, folder / "bastion.yaml")
        database = Database(settings.resolved_database_url)
        registry = Registry(database, ArtifactStore(settings.artifacts_dir))
        version = registry.get("credit-risk@production")
        adapter: Any = registry.load(version)
        database.dispose()
        signature = version.input_signature
        complete = next(b for b in bodies if all(v is not None for v in b["features"].values()))

        console.print("[bold]input[/]: one application per request")
        decide_raw = orjson.dumps(complete)
        oip_raw = orjson.dumps(oip_body(complete["features"]))
        timed(
            "/decide: orjson.loads + check_instances",
            partial(parse_decide, decide_raw, signature),
            5000,
        )
        timed(
            "OIP: orjson.loads + parse_inputs + build_rows",
            partial(parse_oip, oip_raw, signature),
            5000,
        )

        console.print("\n[bold]model[/]: the demo LightGBM model")
        spec = load_spec(folder / "bastion.yaml").deployments["credit"]
        deployment = LiveDeployment("credit", spec, version, adapter, ServingMetrics())
        row = check_instances([complete["features"]], signature, prefix="features")[0]
        for n in (1, 64):
            rows = [row] * n
            timed(
                f"_predict_rows, {n} row(s): pandas frame + adapter",
                partial(deployment._predict_rows, rows),
                500,
            )
            timed(
                f"numpy float64 rows + booster.predict, {n} row(s)",
                partial(numpy_predict, adapter, signature.names, rows),
                500,
            )
        output = deployment.interpret(deployment._predict_rows([row]))[0].output
        decision_log(folder, args.log_rows, row, output)


if __name__ == "__main__":
    main()
