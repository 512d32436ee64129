"""Explanation latency: Bastion's TreeSHAP tables against shap and LightGBM, on the demo model.

Trains the demo model (`bastion.demo.train`: LightGBM, 100 trees, 31 leaves, 8 features of
which 2 categorical) and explains held-out applications, with some fields set missing and
some categories the model never saw. Side by side, in one process, one thread each
(OpenMP limited to one thread, so LightGBM under shap does not fight for the two cores). Each method
explains runs of 25 consecutive decisions, as a serving process explains decision after
decision; the runs of the methods alternate, so that other load on the machine hits every
method alike:

- **Bastion, per decision**: ``explainer.explain([record])`` on the request's record, as the
  serving path calls it for one decision, and the same plus what the decision log stores
  (`Explanation.to_dict` and `reason_codes`);
- **Bastion, micro-batches** of 16 and 64 records (the serving path batches concurrent
  requests), reported per row;
- **shap**: ``shap.TreeExplainer(booster).shap_values(row)`` per row, given the encoded
  matrix row (the encoding is not charged to it);
- **LightGBM**: ``booster.predict(row, pred_contrib=True)`` per row, likewise.

Values: the largest |difference| between Bastion's and shap's contributions and base value
over all rows. Targets (issue 4): per-decision p50 <= 1 ms, >= 5x faster than shap per row,
values within 1e-6.

Run: ``.venv/bin/python benchmarks/explain.py [--rows 2000] [--train 20000] [--seed 7]``.
Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from bastion.demo.data import FEATURES, generate_applications
from bastion.demo.train import train_model
from bastion.explain import reason_codes
from bastion.explain.config import ExplainConfig
from bastion.explain.shap_import import shap
from bastion.explain.tree import TreeShapExplainer
from bastion.explain.trees.lightgbm import lightgbm_source
from bastion.runtime.lightgbm import LightGBMAdapter
from bench_harness import CpuMeter, wait_for_quiet

P50_TARGET_MS = 1.0
SPEEDUP_TARGET = 5.0
VALUE_TARGET = 1e-6
#: decisions each method explains in a row before the next method's turn
RUN = 25
Record = dict[str, Any]


def records(frame: Any, rng: np.random.Generator) -> list[Record]:
    """Held-out applications as request records, some with gaps and unseen categories."""
    rows: list[Record] = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame[FEATURES].to_dict("records")
    ]
    for row in rows:
        draw = rng.random()
        if draw < 0.05:
            row["channel"] = "fax"
        elif draw < 0.10:
            row["country"] = "PL"
        elif draw < 0.15:
            row["debt_ratio"] = None
    return rows


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1e3, q))


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (src/ has uncommitted changes)" if dirty else "")


def main() -> None:
    with threadpool_limits(limits=1):
        run()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="decisions to explain")
    parser.add_argument("--train", type=int, default=20_000, help="applications to train on")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    model = train_model(generate_applications(args.train, seed=args.seed), seed=args.seed)
    adapter = LightGBMAdapter(model.booster, None)
    test = generate_applications(args.rows, seed=args.seed + 1)
    rows = records(test, np.random.default_rng(args.seed))
    source = lightgbm_source(adapter)
    started = time.perf_counter()
    explainer = TreeShapExplainer(source)
    build_seconds = time.perf_counter() - started
    matrix = source.encode(rows)
    reference = shap().TreeExplainer(model.booster)
    config = ExplainConfig()
    medians = {f: float(test[f].median()) for f in ("income", "debt_ratio", "amount")}

    # values first: every row, all at once
    expected = np.asarray(reference.shap_values(matrix))
    ours = explainer.explain(rows)
    got = np.array([[e.contributions[f] for f in FEATURES] for e in ours])
    value_error = float(np.abs(got - expected).max())
    base_error = max(abs(e.base_value - float(reference.expected_value)) for e in ours)
    additivity = max(e.additivity_error for e in ours)

    def decision(row: Record) -> dict[str, Any]:
        [explanation] = explainer.explain([row])
        return explanation.to_dict() | {"reasons": reason_codes(explanation, config, row, medians)}

    quiet = wait_for_quiet(0.25, 30.0)
    meter = CpuMeter(None)
    single: list[float] = []
    stored: list[float] = []
    shap_rows: list[float] = []
    contrib_rows: list[float] = []
    methods: list[tuple[list[float], Callable[[int], Any]]] = [
        (single, lambda i: explainer.explain([rows[i]])),
        (stored, lambda i: decision(rows[i])),
        (shap_rows, lambda i: reference.shap_values(matrix[i : i + 1])),
        (
            contrib_rows,
            lambda i: model.booster.predict(matrix[i : i + 1], pred_contrib=True, num_threads=1),
        ),
    ]
    for i in range(min(50, len(rows))):  # warm-up
        for _, call in methods:
            call(i)
    for start in range(0, len(rows), RUN):
        # runs of consecutive decisions per method, the methods' runs alternating
        for samples, call in methods:
            for i in range(start, min(start + RUN, len(rows))):
                samples.append(timed(lambda call=call, i=i: call(i)))  # type: ignore[misc]
    batched: dict[int, list[float]] = {}
    for size in (16, 64):
        batched[size] = [
            timed(lambda s=start, n=size: explainer.explain(rows[s : s + n])) / size  # type: ignore[misc]
            for start in range(0, len(rows) - size + 1, size)
        ]
    cpu = meter.stop()

    p50 = percentile(single, 50)
    shap_p50 = percentile(shap_rows, 50)
    speedup = shap_p50 / p50
    print(
        f"## Explanations ({dt.date.today().isoformat()})\n\n"
        f"{os.cpu_count()} CPUs ({cpu_model()}), Python "
        f"{platform.python_version()}, shap {shap().__version__}, commit {commit()}. "
        f"Demo model: {model.booster.num_trees()} trees, 31 leaves, {len(FEATURES)} features; "
        f"{len(rows)} held-out decisions (5 % unseen channel, 5 % unseen country, 5 % missing "
        f"debt_ratio). Tables: {explainer.table_floats:,} "
        f"floats, built and checked in {build_seconds:.2f} s (incl. numba load). Other load "
        f"during the run: {cpu.other:.2f} cores (machine busy {quiet:.2f} cores before).\n"
    )
    print("| method | p50 ms/row | p99 ms/row | vs shap p50 |")
    print("|---|---:|---:|---:|")
    table = [
        ("Bastion per decision: `explain([record])`", single),
        ("Bastion per decision + stored record (to_dict, reason codes)", stored),
        ("Bastion micro-batch of 16, per row", batched[16]),
        ("Bastion micro-batch of 64, per row", batched[64]),
        ("shap `TreeExplainer.shap_values(row)`", shap_rows),
        ("LightGBM `predict(row, pred_contrib=True)`", contrib_rows),
    ]
    for label, samples in table:
        median = percentile(samples, 50)
        print(
            f"| {label} | {median:.3f} | {percentile(samples, 99):.3f} | {shap_p50 / median:.1f}x |"
        )
    print(
        f"\nmax |Bastion - shap|: contributions {value_error:.2e}, base value {base_error:.2e};"
        f" max additivity error {additivity:.2e}; method {explainer.method}\n"
    )
    checks = [
        (f"per-decision p50 {p50:.3f} ms <= {P50_TARGET_MS} ms", p50 <= P50_TARGET_MS),
        (f"{speedup:.1f}x faster than shap per row (>= {SPEEDUP_TARGET}x)", speedup >= 5.0),
        (
            f"values within {VALUE_TARGET:g} of shap ({max(value_error, base_error):.1e})",
            max(value_error, base_error) <= VALUE_TARGET,
        ),
    ]
    for label, ok in checks:
        print(f"- {'PASS' if ok else 'MISS'}: {label}")
    if not all(ok for _, ok in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
