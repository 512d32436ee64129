"""Results of `serving.py`: the machine, the table, the target checks and the JSON file."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bench_harness import Measurement

SYSTEM_ORDER = ("bare", "bare_np", "decide", "oip", "hello", "starlette")
#: run unless --systems says otherwise; `starlette` is an extra floor, on request
DEFAULT_SYSTEMS = ("bare", "bare_np", "decide", "oip", "hello")
LABELS = {
    "bare": "(a) FastAPI + DataFrame",
    "bare_np": "(a') FastAPI + numpy row",
    "decide": "(b) Bastion /decide",
    "oip": "(c) Bastion OIP infer",
    "hello": "(d) hello ASGI",
    "starlette": "(e) Starlette echo, no model",
}
LIBRARIES = ("uvicorn", "starlette", "fastapi", "pydantic", "lightgbm", "pandas", "numpy", "orjson")
#: a run during which other processes used more cores than this is marked noisy
NOISY_CORES = 0.25


@dataclass
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, system: str, concurrency: int) -> Measurement | None:
        for m in self.measurements:
            if m.system == system and m.concurrency == concurrency:
                return m
        return None

    def count_ok(self, server: str, responses: int) -> None:
        """Count successful responses of a server (to check the decision log against)."""
        counted = self.checks.setdefault("ok_responses", {})
        counted[server] = counted.get(server, 0) + responses


# --- the machine -----------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return "unknown"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version(wrk: str) -> str:
    output = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (output.stdout or output.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def _bastion_source() -> str:
    """The commit Bastion's source is at, and whether src/ has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    return head.stdout.strip() + (" + uncommitted changes in src/" if dirty.stdout.strip() else "")


def machine_info(wrk: str) -> dict[str, Any]:
    return {
        "bastion_source": _bastion_source(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory": _memory(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "wrk": _wrk_version(wrk),
    }


# --- the table -------------------------------------------------------------------------------


def _ratio(m: Measurement, base: Measurement | None) -> str:
    return f"{m.rps / base.rps:.2f}x" if base is not None and base.rps else "-"


def _batch(m: Measurement) -> str:
    if m.batch_rows is None or m.model_call_ms is None:
        return ""
    return f"{m.batch_rows:.1f} ({m.model_call_ms:.2f} ms)"


def table(results: Results) -> str:
    """All measurements as one Markdown table, grouped by system."""
    lines = [
        "| system | conc | req/s | p50 ms | p99 ms | errors | vs (a) | vs (a') "
        "| share of (d) | server CPU | other CPU | batch rows (call ms) | log rows at start |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for system in SYSTEM_ORDER:
        for m in (m for m in results.measurements if m.system == system):
            hello = results.get("hello", m.concurrency)
            share = (
                f"{m.rps / hello.rps:.0%}"
                if hello is not None and hello.rps and system in ("decide", "oip", "starlette")
                else ""
            )
            errors = f"**{m.errors}**" if m.errors else "0"
            other = f"**{m.other_cpu:.2f}**" if m.other_cpu > NOISY_CORES else f"{m.other_cpu:.2f}"
            lines.append(
                f"| {LABELS[system]} | {m.concurrency} | {m.rps:,.0f} | {m.p50_ms:.2f} | "
                f"{m.p99_ms:.2f} | {errors} | {_ratio(m, results.get('bare', m.concurrency))} | "
                f"{_ratio(m, results.get('bare_np', m.concurrency))} | {share} | "
                f"{m.server_cpu:.2f} | {other} | {_batch(m)} | "
                f"{'' if m.log_rows is None else f'{m.log_rows:,}'} |"
            )
    for system, reason in results.skipped.items():
        lines.append(f"| {LABELS[system]} | - | skipped: {reason[:80]} |" + " |" * 10)
    return "\n".join(lines)


# --- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    verdict: str
    detail: str


def _target(name: str, passed: bool, detail: str, *runs: Measurement) -> Target:
    if any(run.errors for run in runs):
        return Target(name, "INVALID", detail + " (a run had errors)")
    if any(run.other_cpu > NOISY_CORES for run in runs):
        detail += " (noisy: other processes used CPU during a run)"
    return Target(name, "PASS" if passed else "MISS", detail)


def targets(results: Results) -> list[Target]:
    """Bastion /decide at c=64: ≥ 3x (a) and ≥ 0.25x (d); at c=1: p50 within 1 ms of (a)."""
    decide64, bare64, hello64 = (results.get(s, 64) for s in ("decide", "bare", "hello"))
    decide1, bare1 = results.get("decide", 1), results.get("bare", 1)
    out = []
    name = "c=64: Bastion /decide >= 3x (a) req/s"
    if decide64 is not None and bare64 is not None:
        ratio = decide64.rps / bare64.rps
        detail = f"{decide64.rps:,.0f} vs {bare64.rps:,.0f} req/s = {ratio:.2f}x"
        out.append(_target(name, ratio >= 3, detail, decide64, bare64))
    else:
        out.append(Target(name, "N/A", "not measured"))
    name = "c=64: Bastion /decide >= 0.25x (d) req/s"
    if decide64 is not None and hello64 is not None:
        share = decide64.rps / hello64.rps
        detail = f"{decide64.rps:,.0f} vs {hello64.rps:,.0f} req/s = {share:.2f}x"
        out.append(_target(name, share >= 0.25, detail, decide64, hello64))
    else:
        out.append(Target(name, "N/A", "not measured"))
    name = "c=1: Bastion /decide p50 within 1 ms of (a)"
    if decide1 is not None and bare1 is not None:
        gap = decide1.p50_ms - bare1.p50_ms
        detail = f"{decide1.p50_ms:.2f} vs {bare1.p50_ms:.2f} ms ({gap:+.2f} ms)"
        out.append(_target(name, gap <= 1.0, detail, decide1, bare1))
    else:
        out.append(Target(name, "N/A", "not measured"))
    # Not targets: the same two comparisons against the tuned peer (a'), for context.
    tuned64, tuned1 = results.get("bare_np", 64), results.get("bare_np", 1)
    if decide64 is not None and tuned64 is not None:
        ratio = decide64.rps / tuned64.rps
        detail = f"{decide64.rps:,.0f} vs {tuned64.rps:,.0f} req/s = {ratio:.2f}x"
        out.append(Target("c=64: Bastion /decide vs (a') req/s", "INFO", detail))
    if decide1 is not None and tuned1 is not None:
        gap = decide1.p50_ms - tuned1.p50_ms
        detail = f"{decide1.p50_ms:.2f} vs {tuned1.p50_ms:.2f} ms ({gap:+.2f} ms)"
        out.append(Target("c=1: Bastion /decide p50 vs (a') p50", "INFO", detail))
    return out


# --- output ----------------------------------------------------------------------------------


def report(console: Console, results: Results, json_path: Path | None) -> None:
    console.print("\n[bold]results[/]")
    console.print(table(results), markup=False)
    console.print("\n[bold]targets[/]")
    checks = targets(results)
    for target in checks:
        colour = {"PASS": "green", "MISS": "red", "INFO": "dim"}.get(target.verdict, "yellow")
        console.print(f"  [{colour}]{target.verdict:<7}[/] {target.name}: {target.detail}")
    for name, value in results.checks.items():
        if name.startswith("score_gap"):
            console.print(f"  {name}: max |difference| = {value:.2g}")
    if results.warnings:
        console.print("\n[bold yellow]warnings[/]")
        for warning in results.warnings:
            console.print(f"  [yellow]*[/] {escape(warning)}")
    if results.problems:
        console.print("\n[bold red]PROBLEMS[/]")
        for problem in results.problems:
            console.print(f"  [red]*[/] {escape(problem)}")
    if json_path is not None:
        payload = {
            "machine": results.machine,
            "settings": results.settings,
            "measurements": [asdict(m) | {"errors": m.errors} for m in results.measurements],
            "skipped": results.skipped,
            "targets": [asdict(t) for t in checks],
            "checks": results.checks,
            "warnings": results.warnings,
            "problems": results.problems,
        }
        json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        console.print(f"\nwrote {json_path}")
