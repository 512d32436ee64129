"""Drift benchmark: Bastion against Evidently's DataDriftPreset on the same data, in one run.

1,000,000 current rows x (20 numeric + 5 categorical) features against a 100,000-row
reference, synthetic and seeded, with drift in some features (shifts, a changed mix, a new
category) and not in others. Both sides read the same Parquet files, each in its own
process: Bastion with this interpreter, Evidently 0.7.23 with an interpreter of its own
environment (it does not import with pandas 3)::

    python3 -m venv /work/evidently-venv
    /work/evidently-venv/bin/pip install 'evidently==0.7.23' 'pandas<3' pyarrow

Each side's wall time (process start to exit, imports and reading included) and peak
resident memory (``ru_maxrss`` of that child, from ``os.wait4``) are measured from here.
The per-feature scores are compared where both sides use the same method (they must agree
within 1e-6), and the ratios are printed against the targets: ≥ 20x faster, ≤ 1/4 memory.

Bastion's side profiles each column (reference profile, window profile) and compares them
with the raw values at hand, so K-S and Wasserstein are exact; each of its `--workers`
threads (default 2, the machine's CPUs) holds one column at a time. It runs twice: with
``statistics="chosen"`` (PSI and the chosen method, like for like with Evidently) and with
``statistics="all"`` (K-S and Wasserstein, or chi-square and Jensen-Shannon, beside it).

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--reference-rows 100000] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    FloatArray = np.ndarray[Any, np.dtype[np.float64]]

DEFAULT_EVIDENTLY = Path("/work/evidently-venv/bin/python")
HELPER = Path(__file__).with_name("drift_evidently.py")
TOLERANCE = 1e-6
SPEED_TARGET = 20.0
MEMORY_TARGET = 0.25


def generate(
    directory: Path, rows: int, reference_rows: int, numeric: int, categorical: int, seed: int
) -> None:
    """Write reference.parquet, current.parquet and meta.json (column names) to `directory`."""
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    numeric_names = [f"num_{i:02d}" for i in range(numeric)]
    categorical_names = [f"cat_{i}" for i in range(categorical)]

    def numbers(i: int, n: int, drifted: bool) -> np.ndarray[Any, Any]:
        shift = 0.25 if drifted else 0.0
        kind = i % 4
        if kind == 0:
            values = rng.normal(shift, 1.0, n)
        elif kind == 1:
            values = rng.lognormal(10 + shift, 0.8, n)
        elif kind == 2:
            values = rng.poisson(20 * (1 + shift), n).astype(np.float64)
        else:
            values = rng.uniform(0, 100 + 40 * shift, n)
        if i % 5 == 0:  # some missing values, which both sides drop
            values[rng.random(n) < 0.01] = np.nan
        return values

    def categories(i: int, n: int, drifted: bool) -> np.ndarray[Any, Any]:
        size = 3 + 6 * i
        levels = np.array([f"c{i}_{k}" for k in range(size)] + ["brand_new"])
        weights = np.linspace(1.0, 2.0, size + 1)
        weights[-1] = 0.0
        if drifted:
            weights = weights[::-1].copy()
            weights[-1], weights[0] = 0.3, 0.0  # a category the reference never saw
        return rng.choice(levels, n, p=weights / weights.sum())

    for name, n, is_current in (("reference", reference_rows, False), ("current", rows, True)):
        columns: dict[str, Any] = {}
        for i, column in enumerate(numeric_names):
            columns[column] = numbers(i, n, is_current and i % 5 == 0)
        for i, column in enumerate(categorical_names):
            columns[column] = pa.array(categories(i, n, is_current and i < 2)).dictionary_encode()
        pq.write_table(pa.table(columns), directory / f"{name}.parquet", row_group_size=250_000)
    meta = {"numeric": numeric_names, "categorical": categorical_names}
    (directory / "meta.json").write_text(json.dumps(meta))


class ParquetColumns(Mapping[str, "FloatArray"]):
    """Numeric columns of a Parquet file, read on access, so only one is in memory at a time."""

    def __init__(self, path: Path, names: list[str]) -> None:
        self._path, self._names = path, names

    def __getitem__(self, name: str) -> FloatArray:
        import numpy as np
        import pyarrow.parquet as pq

        if name not in self._names:
            raise KeyError(name)
        source = pq.ParquetFile(self._path)
        values = np.empty(source.metadata.num_rows)
        start = 0
        # batch by batch into one array, so Arrow's buffers never hold the whole column
        for batch in source.iter_batches(batch_size=65_536, columns=[name]):
            chunk = batch.column(0).to_numpy(zero_copy_only=False)
            values[start : start + len(chunk)] = chunk
            start += len(chunk)
        return values

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def bastion_side(data: Path, statistics: str, workers: int) -> dict[str, Any]:
    """Profile both files column by column, compare, and return the per-feature scores."""
    started = time.perf_counter()
    import pandas as pd
    import pyarrow.parquet as pq

    from bastion.monitor.drift import compare
    from bastion.monitor.methods import DriftConfig
    from bastion.monitor.profile import FeatureKind, Profile, Schema, Sketch, profile_frame

    meta = json.loads((data / "meta.json").read_text())
    kinds: dict[str, FeatureKind] = {name: "numeric" for name in meta["numeric"]}
    kinds.update({name: "categorical" for name in meta["categorical"]})
    reference_path, current_path = data / "reference.parquet", data / "current.parquet"
    reference_numeric = ParquetColumns(reference_path, meta["numeric"])
    current_numeric = ParquetColumns(current_path, meta["numeric"])

    def column(path: Path, name: str) -> pd.DataFrame:
        if kinds[name] == "numeric":
            source = reference_numeric if path == reference_path else current_numeric
            return pd.DataFrame({name: source[name]})
        table = pq.read_table(path, columns=[name], read_dictionary=[name])
        frame: pd.DataFrame = table.to_pandas()  # a pandas Categorical: codes, not strings
        return frame

    def sketches(name: str) -> tuple[Sketch, Sketch]:
        schema = Schema({name: kinds[name]})
        reference = profile_frame(column(reference_path, name), schema)
        window = profile_frame(column(current_path, name), schema, reference)
        return reference.features[name], window.features[name]

    with ThreadPoolExecutor(workers) as pool:
        pairs = dict(zip(kinds, pool.map(sketches, kinds), strict=True))
    reference_sketches = {name: pair[0] for name, pair in pairs.items()}
    window_sketches = {name: pair[1] for name, pair in pairs.items()}
    reference_profile = Profile(
        pq.ParquetFile(reference_path).metadata.num_rows, reference_sketches
    )
    window_profile = Profile(pq.ParquetFile(current_path).metadata.num_rows, window_sketches)
    report = compare(
        reference_profile,
        window_profile,
        DriftConfig(statistics="all" if statistics == "all" else "chosen"),
        reference_values=reference_numeric,
        current_values=current_numeric,
        workers=workers,
    )
    features = {
        f.feature: {"method": f.method, "score": f.score, "drifted": f.drifted}
        for f in report.features
    }
    return {
        "features": features,
        "drifted_share": report.share,
        "seconds": time.perf_counter() - started,
    }


def measure(command: list[str]) -> tuple[float, float]:
    """Run `command`; its wall time in seconds and its own peak RSS in MiB."""
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} exited with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024  # Linux reports KiB


def compare_scores(
    bastion: dict[str, Any], evidently: dict[str, Any]
) -> tuple[float, int, list[str]]:
    """Largest score difference over features with the same method; count; method mismatches."""
    largest, same, mismatched = 0.0, 0, []
    for name, theirs in evidently["features"].items():
        ours = bastion["features"][name]
        if ours["method"] != theirs["method"]:
            mismatched.append(f"{name}: bastion {ours['method']}, evidently {theirs['method']}")
            continue
        same += 1
        largest = max(largest, abs(ours["score"] - theirs["score"]))
    return largest, same, mismatched


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="current (window) rows")
    parser.add_argument("--reference-rows", type=int, default=100_000, help="reference rows")
    parser.add_argument("--numeric", type=int, default=20, help="numeric features")
    parser.add_argument("--categorical", type=int, default=5, help="categorical features")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument(
        "--evidently-python",
        type=Path,
        default=DEFAULT_EVIDENTLY,
        help="interpreter of an Evidently 0.7.23 env",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="threads profiling and comparing Bastion's features"
    )
    parser.add_argument("--side", choices=["bastion", "generate"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--statistics", choices=["chosen", "all"], default="chosen", help=argparse.SUPPRESS
    )
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side == "generate":
        generate(
            args.data, args.rows, args.reference_rows, args.numeric, args.categorical, args.seed
        )
        return
    if args.side == "bastion":
        args.out.write_text(json.dumps(bastion_side(args.data, args.statistics, args.workers)))
        return
    if not args.evidently_python.exists():
        raise SystemExit(
            f"no Evidently interpreter at {args.evidently_python}; create one with\n"
            "  python3 -m venv /work/evidently-venv\n"
            "  /work/evidently-venv/bin/pip install 'evidently==0.7.23' 'pandas<3' pyarrow\n"
            "or pass --evidently-python PATH"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bastion-drift-"))
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> None:
    print(
        f"data: {args.rows:,} current rows vs {args.reference_rows:,} reference rows, "
        f"{args.numeric} numeric + {args.categorical} categorical features, seed {args.seed}"
    )
    script = str(Path(__file__).resolve())
    # every child runs in its own process started from this small one: a child's peak RSS
    # includes the memory of the process it was forked from, so the data is made apart too
    sizes = [
        "--rows",
        str(args.rows),
        "--reference-rows",
        str(args.reference_rows),
        "--seed",
        str(args.seed),
    ]
    shape = ["--numeric", str(args.numeric), "--categorical", str(args.categorical)]
    measure([sys.executable, script, "--side", "generate", "--data", str(workdir), *sizes, *shape])
    load_before = os.getloadavg()
    results: dict[str, tuple[float, float, dict[str, Any]]] = {}
    for statistics in ("chosen", "all"):
        out = workdir / f"bastion-{statistics}.json"
        side = [
            sys.executable,
            script,
            "--side",
            "bastion",
            "--statistics",
            statistics,
            "--workers",
            str(args.workers),
        ]
        elapsed, rss = measure([*side, "--data", str(workdir), "--out", str(out)])
        results[f"bastion ({statistics})"] = (elapsed, rss, json.loads(out.read_text()))
    out = workdir / "evidently.json"
    elapsed, rss = measure([str(args.evidently_python), str(HELPER), str(workdir), str(out)])
    results["evidently"] = (elapsed, rss, json.loads(out.read_text()))
    load_after = os.getloadavg()
    report(results, load_before, load_after)


def report(
    results: dict[str, tuple[float, float, dict[str, Any]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    before, after = (
        "/".join(f"{x:.2f}" for x in load_before),
        "/".join(f"{x:.2f}" for x in load_after),
    )
    print(f"load average (1/5/15 min): before {before}, after {after}; {os.cpu_count()} CPUs")
    print(f"{'':20}{'wall s':>9}{'compute s':>11}{'peak MiB':>10}{'drifted share':>15}")
    for name, (elapsed, rss, data) in results.items():
        print(
            f"{name:20}{elapsed:>9.2f}{data['seconds']:>11.2f}{rss:>10.0f}{data['drifted_share']:>15.2f}"
        )
    evidently_time, evidently_rss, evidently = results["evidently"]
    for name in ("bastion (chosen)", "bastion (all)"):
        elapsed, rss, ours = results[name]
        largest, same, mismatched = compare_scores(ours, evidently)
        speedup, memory = evidently_time / elapsed, rss / evidently_rss
        agree = verdict(largest <= TOLERANCE and not mismatched)
        print(
            f"{name}: {same} features with Evidently's method, max |score difference| {largest:.2e} ({agree})"
        )
        for line in mismatched:
            print(f"  method differs: {line}")
        print(
            f"  speed: {speedup:.1f}x Evidently's (target >= {SPEED_TARGET:g}x: {verdict(speedup >= SPEED_TARGET)})"
        )
        print(
            f"  memory: {memory:.2f} of Evidently's peak (target <= {MEMORY_TARGET:g}: {verdict(memory <= MEMORY_TARGET)})"
        )


if __name__ == "__main__":
    main()
