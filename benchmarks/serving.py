"""Serving benchmark: Bastion against hand-written FastAPI endpoints and a hello-world ASGI app.

Systems under test, each in its own process, one at a time, one uvicorn worker with uvloop
and httptools, on a free port of 127.0.0.1:

(a)  ``bare``     a typical hand-written FastAPI endpoint around the same booster
                  (`bare_fastapi.py`): pydantic body, one-row DataFrame, one predict a request
(a') ``bare_np``  the same endpoint tuned: a numpy row with category codes, no pandas
(b)  ``decide``   Bastion ``POST /v1/deployments/credit/decide`` (``bastion serve``; the
                  decision log is always on, here SQLite in the temp folder)
(c)  ``oip``      Bastion ``POST /v2/models/credit/infer`` with per-column JSON tensors
                  (same server as (b), measured separately)
(d)  ``hello``    a raw ASGI app returning fixed JSON (`hello_asgi.py`): the ceiling
(e)  ``starlette`` on request (``--systems``): one Starlette route that parses the body and
                  answers fixed JSON (`starlette_echo.py`), the floor of Bastion's stack

wrk drives each (one thread, closed loop) at each concurrency: a warm-up run, then a measured
run, POSTing a rotating set of real request bodies built from held-out demo applications.
With two or more cores, wrk is pinned to CPU 0 and the server to CPU 1. Before each run the
benchmark waits for the rest of the machine to go quiet, and repeats a measured run during
which other processes used more than a quarter of a core.

Besides req/s, latency and errors, each row shows the server's CPU use and everyone else's
(in cores), and for Bastion the mean rows per model call (from its /metrics) and the size of
the decision log when the run started: the log grows through the Bastion runs, and its
inserts get dearer as it grows. Before measuring, every system scores the same applications
once and the scores must agree exactly; after the Bastion runs, the decision log must hold a
row for every successful response.

Run: ``.venv/bin/python benchmarks/serving.py [--seconds 15] [--concurrency 1,8,64]
[--quick] [--json out.json] [--profile profile.txt]``. Needs ``wrk`` (Debian: ``apt-get
install wrk``) and, for ``--profile``, ``py-spy`` in the venv. Exit status 1 if a run had
errors or a server failed, 2 if wrk is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from bastion.demo.run import DEPLOYMENT, prepare
from bastion.settings import Settings
from bench_harness import (
    BenchmarkError,
    CpuMeter,
    Measurement,
    Server,
    bastion_command,
    clean_env,
    free_port,
    measurement,
    pinned,
    run_wrk,
    thread_seconds,
    uvicorn_command,
    wait_for_quiet,
    wrk_command,
)
from bench_report import (
    DEFAULT_SYSTEMS,
    LABELS,
    NOISY_CORES,
    SYSTEM_ORDER,
    Results,
    machine_info,
    report,
)
from bench_workloads import Workload, probe, workloads

N_ROWS = 20_000
N_BODIES = 400
#: the machine counts as quiet below this many busy cores (our idle processes included)
QUIET_CORES = 0.15

console = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    concurrency: list[int]
    systems: list[str]
    pin: bool
    quiet_wait: float
    retries: int
    profile: Path | None
    profile_seconds: float
    bare_handler: str
    #: Bastion's SQLite database (in the temp folder, known once it exists)
    database: Path = Path("bastion.db")
    #: API keys, when this Bastion has authentication: a predict key bound to the
    #: deployment (sent with every system's traffic, so all get the same bytes) and an
    #: operate key for /metrics
    token: str | None = None
    metrics_token: str | None = None
    #: serve Bastion with ``--insecure`` (no authentication), to measure what it costs
    insecure: bool = False

    @property
    def wrk_cpu(self) -> int | None:
        return 0 if self.pin else None

    @property
    def server_cpu(self) -> int | None:
        return 1 if self.pin else None


# --- measuring -------------------------------------------------------------------------------


def quiet(options: Options, results: Results) -> None:
    def told(busy: float) -> None:
        console.print(f"[dim](waiting for other processes: {busy:.2f} cores busy)[/] ", end="")

    busy = wait_for_quiet(QUIET_CORES, options.quiet_wait, told)
    if busy >= QUIET_CORES:
        results.warnings.append(f"machine still busy ({busy:.2f} cores) after waiting")


def run_once(
    wrk: str,
    server: Server,
    system: str,
    workload: Workload,
    concurrency: int,
    seconds: float,
    options: Options,
    results: Results,
) -> Measurement:
    command = wrk_command(
        wrk, server.url, workload.path, workload.file, concurrency, seconds, options.token
    )
    bastion = system in ("decide", "oip")
    before = batch_stats(server.url, options.metrics_token) if bastion else None
    log_rows = decision_rows(options.database) if bastion else None
    meter = CpuMeter(server.pid)
    raw = run_wrk(command, seconds=seconds, cpu=options.wrk_cpu)
    m = measurement(system, concurrency, raw, meter.stop())
    results.count_ok(server.name, m.ok)
    if before is not None:
        after = batch_stats(server.url, options.metrics_token)
        calls = after[0] - before[0]
        if calls > 0:
            m = replace(
                m,
                log_rows=log_rows,
                batch_rows=round((after[1] - before[1]) / calls, 1),
                model_call_ms=round((after[2] - before[2]) / calls * 1000, 3),
            )
    return m


def batch_stats(url: str, token: str | None) -> tuple[float, float, float]:
    """Bastion's model calls so far: (calls, rows, seconds), from its /metrics."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    if response.status_code != 200:
        raise BenchmarkError(f"GET /metrics answered {response.status_code}: {response.text}")
    text = response.text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return (
        values.get("bastion_batch_size_rows_count", 0.0),
        values.get("bastion_batch_size_rows_sum", 0.0),
        values.get("bastion_model_call_duration_seconds_sum", 0.0),
    )


def measure(
    wrk: str, server: Server, system: str, workload: Workload, options: Options, results: Results
) -> list[Measurement]:
    """Warm-up and measured run per concurrency; a noisy measured run is repeated."""
    runs = []
    for concurrency in options.concurrency:
        console.print(f"  {LABELS[system]:<26} c={concurrency:<3} ", end="")
        args = (wrk, server, system, workload, concurrency)
        quiet(options, results)
        warm = run_once(*args, options.warmup, options, results)
        m = run_once(*args, options.seconds, options, results)
        for _ in range(options.retries):
            if m.other_cpu <= NOISY_CORES:
                break
            console.print(f"[yellow](noisy: {m.other_cpu:.2f} other cores, again)[/] ", end="")
            quiet(options, results)
            m = run_once(*args, options.seconds, options, results)
        loud = f"  [bold red]{m.errors} ERRORS[/]" if m.errors else ""
        batches = (
            f"  batch {m.batch_rows:.1f} rows in {m.model_call_ms:.2f} ms, "
            f"log had {m.log_rows:,} rows"
            if m.batch_rows is not None and m.model_call_ms is not None
            else ""
        )
        console.print(
            f"{m.rps:>9,.0f} req/s  p50 {m.p50_ms:7.2f} ms  p99 {m.p99_ms:7.2f} ms  "
            f"cpu {m.server_cpu:.2f} (other {m.other_cpu:.2f}){batches}{loud}"
        )
        if m.errors or warm.errors:
            results.problems.append(
                f"{LABELS[system]} c={concurrency}: {m.non_2xx} non-2xx responses and "
                f"{m.socket_errors} socket errors (warm-up: {warm.errors}); see {server.log}"
            )
        if m.other_cpu > NOISY_CORES:
            results.warnings.append(
                f"{LABELS[system]} c={concurrency}: other processes used "
                f"{m.other_cpu:.2f} cores during the run"
            )
        runs.append(m)
    return runs


def profile_bastion(
    wrk: str, server: Server, workload: Workload, options: Options, results: Results
) -> None:
    """py-spy the Bastion server while wrk drives /decide at the highest concurrency.

    Two recordings: every non-idle thread (``--profile`` file), and only the thread holding
    the GIL (the same name with ``.gil`` before the suffix).
    """
    from profile_summary import parse, render, summarize, thread_names

    if options.profile is None or server.pid is None:
        return
    venv_bin = str(Path(sys.executable).parent)
    py_spy = shutil.which("py-spy", path=venv_bin) or shutil.which("py-spy")
    if py_spy is None:
        results.problems.append("--profile needs py-spy: .venv/bin/pip install py-spy")
        return
    concurrency = max(options.concurrency)
    seconds = options.profile_seconds
    gil = options.profile.with_suffix(".gil" + options.profile.suffix)
    for output, mode in ((options.profile, "active"), (gil, "gil")):
        console.print(
            f"\n  [bold]profile[/] /decide at c={concurrency}, {seconds:g} s, py-spy "
            f"({'threads holding the GIL' if mode == 'gil' else 'all non-idle threads'})"
        )
        quiet(options, results)
        command = wrk_command(
            wrk, server.url, workload.path, workload.file, concurrency, seconds + 4, options.token
        )
        load = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pinned(options.wrk_cpu),
        )
        try:
            time.sleep(1.5)
            cpu_before, started = thread_seconds(server.pid), time.monotonic()
            recorded = subprocess.run(
                [
                    *(py_spy, "record", "--pid", str(server.pid), "--rate", "100"),
                    *("--duration", str(round(seconds)), "--format", "raw", "--output"),
                    *(str(output), "--threads", "--full-filenames"),
                    # Pausing the process hides which threads are idle, so the all-threads
                    # recording does not pause; the GIL recording does, for whole stacks.
                    *(("--gil",) if mode == "gil" else ("--nonblocking",)),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=seconds + 60,
            )
            cpu_after, wall = thread_seconds(server.pid), time.monotonic() - started
        finally:
            load.terminate()
            load.wait()
        if recorded.returncode != 0 or not output.exists():
            results.problems.append(f"py-spy failed: {recorded.stderr.strip()[-500:]}")
            return
        text = output.read_text()
        names = thread_names(text)
        cores: dict[str, float] = {}
        for tid, used in cpu_after.items():
            name = names.get(tid, "threads never sampled")
            cores[name] = cores.get(name, 0.0) + (used - cpu_before.get(tid, 0.0)) / wall
        cores = {name: round(used, 3) for name, used in cores.items()}
        summary = summarize(parse(text))
        results.checks[f"profile_{mode}"] = {
            "file": str(output),
            "concurrency": concurrency,
            "seconds": seconds,
            "thread_cores": cores,
            **asdict(summary),
        }
        console.print("| thread | CPU cores (from /proc) |\n|---|---:|", markup=False)
        for name, used in sorted(cores.items(), key=lambda kv: -kv[1]):
            console.print(f"| {name} | {used:.2f} |", markup=False)
        console.print(render(summary), markup=False)


# --- checks ----------------------------------------------------------------------------------


def decision_rows(database: Path) -> int:
    """Rows in Bastion's decision log (SQLite in WAL mode: readable while the server writes)."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return int(connection.execute("SELECT count(*) FROM decisions").fetchone()[0])


def check_decision_log(results: Results, database: Path, server: str) -> None:
    """Every successful Bastion response has its row (requests cut off by wrk may add more)."""
    stored = decision_rows(database)
    answered = results.checks.get("ok_responses", {}).get(server, 0)
    results.checks["decision_log"] = {"rows": stored, "ok_responses_counted": answered}
    verdict = "ok" if stored >= answered else "[bold red]ROWS MISSING[/]"
    console.print(f"  decision log: {stored:,} rows for {answered:,} 2xx responses ({verdict})")
    if stored < answered:
        results.problems.append(f"the decision log holds {stored} rows for {answered} responses")


def check_scores(results: Results, scores: dict[str, dict[int, float]]) -> None:
    """The peers and both Bastion routes must give the same scores for the same applications."""
    reference = scores.get("decide") or {}
    for system in ("bare", "bare_np", "oip"):
        other = scores.get(system) or {}
        shared = sorted(set(reference) & set(other))
        if not shared:
            continue
        gap = max(abs(reference[i] - other[i]) for i in shared)
        results.checks[f"score_gap_{system}_vs_decide"] = gap
        if gap > 1e-9:
            results.problems.append(
                f"{LABELS[system]} scores differ from /decide by up to {gap:.3g}"
            )


# --- the run ---------------------------------------------------------------------------------


def bastion_env(home: Path) -> dict[str, str]:
    return clean_env(BASTION_HOME=str(home), BASTION_DATABASE_URL=f"sqlite:///{home}/bastion.db")


def create_key(env: dict[str, str], role: str, deployment: str | None = None) -> str | None:
    """A new API key's token from ``bastion keys create``; None if this Bastion has no keys."""
    command = [sys.executable, "-m", "bastion", "keys", "create", "--role", role]
    command += ["--description", "serving benchmark"]
    command += ["--deployment", deployment] if deployment else []
    created = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if created.returncode != 0:
        if "No such command" in created.stderr:
            return None
        raise BenchmarkError(f"bastion keys create failed:\n{created.stdout}{created.stderr}")
    lines = created.stdout.strip().splitlines()
    if not lines:
        raise BenchmarkError(f"bastion keys create printed no token:\n{created.stderr}")
    return lines[-1].strip()


def servers(folder: Path, home: Path, spec: Path, options: Options) -> dict[str, Server]:
    model = str(home / "demo" / "credit-risk.txt")
    handler = options.bare_handler
    cpu = options.server_cpu

    def bare(mode: str) -> Server:
        return Server(
            f"fastapi-{mode}",
            uvicorn_command("bare_fastapi:create_app", free_port(), factory=True),
            clean_env(BENCH_MODEL_PATH=model, BENCH_BARE_HANDLER=handler, BENCH_BARE_MODE=mode),
            folder / f"fastapi-{mode}.log",
            cpu,
        )

    return {
        "bare": bare("frame"),
        "bare_np": bare("numpy"),
        "bastion": Server(
            "bastion",
            bastion_command(spec, free_port()) + (["--insecure"] if options.insecure else []),
            bastion_env(home),
            folder / "bastion.log",
            cpu,
        ),
        "hello": Server(
            "hello-asgi",
            uvicorn_command("hello_asgi:app", free_port()),
            clean_env(),
            folder / "hello.log",
            cpu,
        ),
        "starlette": Server(
            "starlette-echo",
            uvicorn_command("starlette_echo:app", free_port()),
            clean_env(),
            folder / "starlette.log",
            cpu,
        ),
    }


#: server, the systems it serves, its readiness path
GROUPS = [
    ("bare", ["bare"], "/health"),
    ("bare_np", ["bare_np"], "/health"),
    ("bastion", ["decide", "oip"], "/v2/health/ready"),
    ("hello", ["hello"], "/"),
    ("starlette", ["starlette"], "/health"),
]


def run(options: Options, wrk: str, results: Results, stack: contextlib.ExitStack) -> None:
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bastion-bench-")))
    home = folder / ".bastion"
    options = replace(options, database=home / "bastion.db")
    settings = Settings(home=home, database_url=f"sqlite:///{home}/bastion.db", secret_key=None)
    spec = folder / "bastion.yaml"
    console.print(f"[bold]preparing[/] in {folder}")
    bodies = prepare(console, settings, N_ROWS, spec)[:N_BODIES]
    loads = workloads(folder, bodies)
    env = bastion_env(home)
    token = None if options.insecure else create_key(env, "predict", DEPLOYMENT)
    if token is not None:
        options = replace(options, token=token, metrics_token=create_key(env, "operate"))
        console.print(
            "API keys: predict (bound to the deployment) for traffic, operate for /metrics"
        )
    results.settings["authentication"] = token is not None
    console.print(f"{len(bodies)} application bodies, {len(loads['oip'].bodies)} OIP bodies")
    processes = servers(folder, home, spec, options)
    scores: dict[str, dict[int, float]] = {}
    for key, served, ready in GROUPS:
        systems = [s for s in served if s in options.systems]
        profiling = key == "bastion" and options.profile is not None
        if not systems and not profiling:
            continue
        server = processes[key]
        stack.callback(server.stop)
        console.print(f"\n[bold]{server.name}[/] on {server.url}")
        server.start()
        server.wait_ready(ready)
        for system in systems:
            problem, scores[system] = probe(server.url, system, loads[system], options.token)
            if problem is not None:
                if system != "oip":
                    raise BenchmarkError(f"{LABELS[system]}: {problem}\n{server.log_tail()}")
                reason = f"the OIP infer route is not usable yet ({problem})"
                results.skipped[system] = reason
                console.print(f"  [yellow]skipping {LABELS[system]}: {reason}[/]")
                continue
            results.count_ok(server.name, len(scores[system]))
            results.measurements += measure(wrk, server, system, loads[system], options, results)
        if profiling:
            profile_bastion(wrk, server, loads["decide"], options, results)
        returncode = server.stop()
        # `bastion serve` exits 0 after a clean SIGTERM; bare uvicorn re-raises the signal.
        if returncode not in ((0,) if key == "bastion" else (0, -signal.SIGTERM)):
            results.problems.append(
                f"{server.name} exited with status {returncode} after SIGTERM:\n{server.log_tail()}"
            )
        if key == "bastion":
            check_decision_log(results, options.database, server.name)
    check_scores(results, scores)


# --- entry point -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(
        description="Benchmark Bastion's serving path against hand-written FastAPI endpoints."
    )
    parser.add_argument("--seconds", type=float, default=None, help="measured s (default 15)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up s (default 2)")
    parser.add_argument("--concurrency", default="1,8,64", help="comma-separated connections")
    parser.add_argument("--quick", action="store_true", help="3 s runs after 1 s warm-ups")
    parser.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, from {','.join(SYSTEM_ORDER)} (default: all but starlette)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy the Bastion server into this file"
    )
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument("--no-pin", action="store_true", help="do not pin wrk and server to CPUs")
    parser.add_argument(
        "--quiet-wait", type=float, default=120.0, help="most s to wait for a quiet machine"
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats of a noisy run")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve Bastion without authentication (bastion serve --insecure), for an A/B",
    )
    parser.add_argument(
        "--bare-handler",
        choices=["async", "sync"],
        default="async",
        help="declare the FastAPI endpoints with async def (default) or def",
    )
    args = parser.parse_args(argv)
    try:
        concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--concurrency takes numbers like 1,8,64, got {args.concurrency!r}")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEM_ORDER))
    if unknown:
        parser.error(f"--systems must name {', '.join(SYSTEM_ORDER)}; unknown: {unknown}")
    if not concurrency or min(concurrency) < 1:
        parser.error(f"--concurrency must be ≥ 1, got {args.concurrency!r}")
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 15.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    options = Options(
        seconds=seconds,
        warmup=warmup,
        concurrency=concurrency,
        systems=systems,
        pin=not args.no_pin and len(os.sched_getaffinity(0)) >= 2,
        quiet_wait=args.quiet_wait,
        retries=max(0, args.retries),
        profile=args.profile.resolve() if args.profile else None,
        profile_seconds=args.profile_seconds,
        bare_handler=args.bare_handler,
        insecure=args.insecure,
    )
    return options, args.json


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM to the benchmark unwinds like Ctrl-C, so servers and temp dirs are cleaned."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    options, json_path = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        console.print(
            "[bold red]wrk is not installed.[/] This benchmark drives the servers with wrk. "
            "On Debian or Ubuntu: [bold]apt-get update && apt-get install -y wrk[/]"
        )
        return 2
    settings = {k: v for k, v in asdict(options).items() if not k.endswith("token")}
    results = Results(machine=machine_info(wrk), settings=settings)
    machine = results.machine
    console.print(
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}; "
        f"{options.seconds:g} s runs after {options.warmup:g} s warm-ups; "
        f"pinning {'wrk to CPU 0, servers to CPU 1' if options.pin else 'off'}; "
        f"Bastion at {machine['bastion_source']}"
    )
    try:
        with sigterm_as_exit(), contextlib.ExitStack() as stack:
            run(options, wrk, results, stack)
    except BenchmarkError as exc:
        results.problems.append(str(exc))
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: servers stopped, temp files removed[/]")
        return 130
    except SystemExit as exc:
        console.print("\n[yellow]terminated: servers stopped, temp files removed[/]")
        return int(exc.code) if isinstance(exc.code, int) else 1
    report(console, results, json_path)
    return 1 if results.problems else 0


if __name__ == "__main__":
    sys.exit(main())
