"""Processes for `serving.py`: server processes, wrk runs, and CPU accounting.

Every server runs in its own session (Ctrl-C reaches the benchmark, which stops the server
with SIGTERM) and, with two or more cores, pinned to CPU 1 while wrk is pinned to CPU 0.
Because other work on the machine skews results, each run also measures how much CPU the
rest of the machine used meanwhile (`CpuMeter`), and `wait_for_quiet` holds a run back
until that is small.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk_bodies.lua"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(Exception):
    """A server or tool failed; the message says which and shows its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int | None) -> Callable[[], None] | None:
    """A `preexec_fn` pinning the child, and every thread it starts, to `cpu`."""
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


class Server:
    """One server process; `stop` sends SIGTERM and waits, then kills if it must."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log: Path, cpu: int | None
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.cpu = cpu
        self.port = int(command[command.index("--port") + 1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.log.parent,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=pinned(self.cpu),
            )

    def wait_ready(self, path: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise BenchmarkError(f"{self.name} exited at start-up\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise BenchmarkError(f"{self.name} not ready within {timeout:.0f} s\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, up to 30 s for a clean shutdown, then SIGKILL. Safe to call twice."""
        process = self.process
        if process is None:
            return self.returncode
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.returncode = process.returncode
        self.process = None
        return self.returncode

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace").splitlines()
            return "\n".join(f"  | {line}" for line in text[-lines:])
        return f"  (no log at {self.log})"


def uvicorn_command(target: str, port: int, *, factory: bool = False) -> list[str]:
    """One uvicorn worker with uvloop and httptools, as `bastion serve` runs it."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        *(["--factory"] if factory else []),
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def bastion_command(spec: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bastion",
        "serve",
        "--config",
        str(spec),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without BASTION_/BENCH_ variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "BENCH_"))}
    env.update(extra)
    return env


# --- CPU accounting --------------------------------------------------------------------------


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle since boot (all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _process_seconds(pid: int | None) -> float:
    """CPU seconds used by process `pid` (all its threads), 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_seconds(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each thread of process `pid`, by thread id."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def _own_seconds() -> float:
    """CPU seconds of this process and its waited-for children (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class CpuUse:
    """Cores used on average during a run: by the server, and by everything else."""

    server: float
    other: float


class CpuMeter:
    """Measures a run: server CPU, and CPU used by processes that are not ours."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._start = (time.monotonic(), _busy_seconds(), _process_seconds(server_pid))
        self._own = _own_seconds()

    def stop(self) -> CpuUse:
        wall = time.monotonic() - self._start[0]
        busy = _busy_seconds() - self._start[1]
        server = _process_seconds(self.server_pid) - self._start[2]
        own = _own_seconds() - self._own
        if wall <= 0:
            return CpuUse(0.0, 0.0)
        return CpuUse(round(server / wall, 2), round(max(busy - server - own, 0.0) / wall, 2))


def wait_for_quiet(
    threshold: float, max_wait: float, on_wait: Callable[[float], None] | None = None
) -> float:
    """Wait (at most `max_wait` s) until the machine uses under `threshold` cores for 1 s.

    Call it while our own processes are idle; returns the last busy level seen.
    """
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        before = _busy_seconds()
        time.sleep(1.0)
        busy = _busy_seconds() - before
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        if on_wait is not None and not told:
            on_wait(busy)
            told = True


# --- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One measured wrk run against one system at one concurrency (latencies in ms)."""

    system: str
    concurrency: int
    seconds: float
    requests: int
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu: float
    other_cpu: float
    #: Bastion only: mean rows per model call and mean model-call time during the run
    batch_rows: float | None = None
    model_call_ms: float | None = None
    #: Bastion only: rows in the decision log when the run started
    log_rows: int | None = None

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


def wrk_command(
    wrk: str,
    url: str,
    path: str,
    bodies: Path,
    concurrency: int,
    seconds: float,
    token: str | None = None,
) -> list[str]:
    """wrk, one thread, closed loop, POSTing the bodies of `bodies` (one per line) to `path`.

    With `token`, every request carries ``Authorization: Bearer <token>``.
    """
    return [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(bodies),
        path,
        *([f"Bearer {token}"] if token else []),
    ]


def run_wrk(command: list[str], *, seconds: float, cpu: int | None) -> dict[str, Any]:
    """Run wrk; its `done()` line as a dict (latencies in µs)."""
    output = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
        preexec_fn=pinned(cpu),
    )
    for line in output.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise BenchmarkError(
        f"wrk printed no result (status {output.returncode}):\n{output.stdout}\n{output.stderr}"
    )


def measurement(system: str, concurrency: int, raw: dict[str, Any], cpu: CpuUse) -> Measurement:
    seconds = raw["duration_us"] / 1e6
    socket_errors = sum(
        raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return Measurement(
        system=system,
        concurrency=concurrency,
        seconds=round(seconds, 3),
        requests=raw["requests"],
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        p50_ms=round(raw["p50_us"] / 1000, 3),
        p90_ms=round(raw["p90_us"] / 1000, 3),
        p99_ms=round(raw["p99_us"] / 1000, 3),
        max_ms=round(raw["max_us"] / 1000, 3),
        non_2xx=raw["non_2xx"],
        socket_errors=socket_errors,
        server_cpu=cpu.server,
        other_cpu=cpu.other,
    )
