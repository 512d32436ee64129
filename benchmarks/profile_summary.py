"""Summarize a py-spy profile (``py-spy record --format raw --threads --full-filenames``).

Each line of such a file is one distinct stack and how often it was sampled::

    thread (1234): MainThread;run (/…/asyncio/runners.py:190);…;decide (/…/server/v1.py:35) 17

The summary gives, over all sampled (non-idle) stacks of all threads: each thread's share,
each request-path stage's *cumulative* share (a sample counts for a stage when any frame of
its stack belongs to it), and the functions with the largest cumulative and self shares.

Run alone: ``python benchmarks/profile_summary.py profile.txt``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?P<id>[^)]*)\):? ?(?P<name>.*)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @property
    def label(self) -> str:
        parts = self.file.split("/")
        for anchor in ("site-packages", "src", "lib"):
            if anchor in parts:
                index = len(parts) - 1 - parts[::-1].index(anchor)
                return f"{self.function} ({'/'.join(parts[index + 1 :])})"
        return f"{self.function} ({parts[-1]})"


@dataclass(frozen=True)
class Stack:
    thread: str
    frames: tuple[Frame, ...]
    count: int


Matcher = Callable[[Frame], bool]


def _in(path_part: str, *functions: str) -> Matcher:
    """Frames of files whose path contains `path_part` (and, if given, of these functions).

    Function names match on their last component: ``score`` matches ``ServingService.score``.
    """

    def match(frame: Frame) -> bool:
        if path_part not in frame.file:
            return False
        return not functions or frame.function.rsplit(".", 1)[-1] in functions

    return match


@dataclass(frozen=True)
class Stage:
    label: str
    match: Matcher
    #: count only samples whose innermost frame matches (self time), not any frame
    leaf: bool = False
    #: and not samples that also have a frame matching one of these
    unless: tuple[Matcher, ...] = ()


_ADAPTER_PREDICT = _in("bastion/runtime/lightgbm.py", "predict")
_RUN_ASGI = _in("uvicorn/protocols", "run_asgi")
_SEND = _in("uvicorn/protocols", "send")


def _handler(frame: Frame) -> bool:
    """Frames of Bastion's protocol handlers (not its auth middleware)."""
    names = ("v1.py", "oip.py", "body.py", "tensors.py")
    return any(f"bastion/server/{name}" in frame.file for name in names)


_BASTION_HANDLER = _handler


def _framework(frame: Frame) -> bool:
    return "starlette/" in frame.file or "uvicorn/middleware" in frame.file


#: request-path stages, roughly in request order; a sample counts for every stage it touches
STAGES: list[Stage] = [
    Stage(
        "event loop itself (uvloop C: epoll, sockets, callbacks)",
        _in("asyncio/runners.py"),
        leaf=True,
    ),
    Stage(
        "uvicorn: HTTP parsing and dispatch (outside the app)",
        _in("uvicorn/protocols"),
        unless=(_RUN_ASGI,),
    ),
    Stage(
        "ASGI middleware (incl. Bastion auth) + Starlette routing",
        _framework,
        unless=(_BASTION_HANDLER, _SEND),
    ),
    Stage("  route matching", _in("starlette/routing.py", "matches")),
    Stage("uvicorn: response send (headers, transport.write)", _SEND),
    Stage("Bastion handler (v1 decide / OIP infer, excl. send)", _BASTION_HANDLER, unless=(_SEND,)),
    Stage("  read body (request.stream)", _in("bastion/server/body.py", "read_body")),
    Stage("  JSON parse (orjson.loads)", _in("bastion/server/body.py", "parse_json")),
    Stage(
        "  OIP tensor decode and build_rows",
        _in("bastion/server/oip.py", "parse_inputs", "build_rows"),
    ),
    Stage("  input check (check_instances)", _in("bastion/serving/inputs.py", "check_instances")),
    Stage("  guard (input contract, PII), if present", _in("bastion/serving/guard.py")),
    Stage(
        "  service.score (below: batcher, interpret, log, metrics)",
        _in("bastion/serving/service.py", "score"),
    ),
    Stage("    batcher coroutines (submit, timeout timer)", _in("bastion/runtime/batcher.py")),
    Stage(
        "    interpret (probabilities to outputs)",
        _in("bastion/serving/deployment.py", "interpret"),
    ),
    Stage("    uuid4 decision ids", _in("/uuid.py")),
    Stage("    pseudonymize subject (HMAC)", _in("bastion/guard/pseudonym.py")),
    Stage(
        "    decision log record() (enqueue, await)",
        _in("bastion/serving/decision_log.py", "record"),
    ),
    Stage("    prometheus metrics", _in("prometheus_client/")),
    Stage("  JSON response (orjson.dumps, Response)", _in("bastion/server/v1.py", "json_response")),
    Stage(
        "model thread: _predict_rows (frame + predict)",
        _in("bastion/serving/deployment.py", "_predict_rows"),
    ),
    Stage(
        "  pandas DataFrame build",
        _in("bastion/serving/deployment.py", "_predict_rows"),
        unless=(_ADAPTER_PREDICT,),
    ),
    Stage("  adapter.predict (codes, matrix, booster)", _ADAPTER_PREDICT),
    Stage("    LightGBM Booster.predict", _in("lightgbm/basic.py", "predict")),
    Stage(
        "decision-log thread: _write (insert + commit)",
        _in("bastion/serving/decision_log.py", "_write"),
    ),
    Stage("  SQLAlchemy (every frame under sqlalchemy/)", _in("sqlalchemy/")),
    Stage("  sqlite3 commit", _in("sqlalchemy/engine/default.py", "do_commit")),
    Stage(
        "decision-log writer loop (_run, futures)",
        _in("bastion/serving/decision_log.py", "_run"),
        unless=(_in("bastion/serving/decision_log.py", "_write"),),
    ),
    Stage(
        "thread-pool workers between tasks (_worker self)",
        _in("concurrent/futures/thread.py", "_worker"),
        leaf=True,
    ),
]

#: frames every sample of a thread passes through; left out of the cumulative function list
_ROOTS = (
    "runpy",
    "typer/",
    "click/",
    "threading.py",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "bastion/cli",
    "bastion/__main__.py",
    "concurrent/futures/thread.py",
)


def _frame(text: str) -> Frame:
    match = _FRAME.match(text)
    if match is None:
        return Frame(text, "")
    return Frame(match["function"], match["file"])


def parse(text: str) -> list[Stack]:
    """The stacks of a raw (collapsed) py-spy profile."""
    stacks = []
    for line in text.splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        parts = body.split(";")
        thread = "?"
        thread_match = _THREAD.match(parts[0])
        if thread_match is not None:
            thread = thread_match["name"] or thread_match["id"]
            parts = parts[1:]
        stacks.append(Stack(thread, tuple(_frame(p) for p in parts), int(count)))
    return stacks


def thread_names(text: str) -> dict[int, str]:
    """Thread id to thread name (without a ``_N`` suffix), from a raw ``--threads`` profile."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        match = _THREAD.match(line.split(";", 1)[0])
        if match is not None and match["id"].isdigit():
            names[int(match["id"])] = _thread_group(match["name"] or match["id"])
    return names


def _thread_group(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


#: where a sample lands: the innermost frame that belongs to one of these, checked in order
COMPONENTS: list[tuple[str, Matcher]] = [
    ("event loop itself (uvloop C code)", _in("asyncio/runners.py")),
    ("LightGBM", _in("lightgbm/")),
    ("pandas", _in("pandas/")),
    ("numpy", _in("numpy/")),
    ("SQLAlchemy + sqlite3", _in("sqlalchemy/")),
    ("prometheus_client", _in("prometheus_client/")),
    ("logging", _in("logging/")),
    ("uuid, hmac, hashlib", lambda f: f.file.endswith(("uuid.py", "hmac.py", "hashlib.py"))),
    ("Bastion auth middleware", _in("bastion/server/auth.py")),
    ("Bastion guard (input contract, PII, pseudonyms)", _in("bastion/guard")),
    ("Bastion guard (input contract, PII, pseudonyms)", _in("bastion/serving/guard.py")),
    ("Bastion server handlers (v1, OIP, body, tensors)", _handler),
    ("Bastion decision log", _in("bastion/serving/decision_log.py")),
    ("Bastion batcher", _in("bastion/runtime/batcher.py")),
    ("Bastion other (service, deployment, inputs, adapters)", _in("bastion/")),
    ("Starlette", _in("starlette/")),
    ("uvicorn", _in("uvicorn/")),
    ("thread-pool workers (between tasks)", _in("concurrent/futures/")),
    ("asyncio, threading (Python parts)", lambda f: "asyncio/" in f.file or "threading" in f.file),
]


def component(frames: tuple[Frame, ...]) -> str:
    """The component a sample's time belongs to: the innermost frame one of them claims."""
    for frame in reversed(frames):
        for label, match in COMPONENTS:
            if match(frame):
                return label
    return "other"


@dataclass(frozen=True)
class Summary:
    samples: int
    threads: list[tuple[str, float]]
    stages: list[tuple[str, float]]
    components: list[tuple[str, float]]
    cumulative: list[tuple[str, float]]
    self_time: list[tuple[str, float]]


def _counts(stage: Stage, frames: tuple[Frame, ...]) -> bool:
    if not frames:
        return False
    hit = stage.match(frames[-1]) if stage.leaf else any(stage.match(f) for f in frames)
    return hit and not any(unless(f) for unless in stage.unless for f in frames)


def summarize(stacks: Sequence[Stack], top: int = 15) -> Summary:
    total = sum(s.count for s in stacks) or 1
    threads: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    components: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for stack in stacks:
        threads[_thread_group(stack.thread)] += stack.count
        for stage in STAGES:
            if _counts(stage, stack.frames):
                stages[stage.label] += stack.count
        for name in {f.label for f in stack.frames if not any(r in f.file for r in _ROOTS)}:
            cumulative[name] += stack.count
        if stack.frames:
            self_time[stack.frames[-1].label] += stack.count
        components[component(stack.frames)] += stack.count

    def shares(counter: Counter[str], limit: int | None = None) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in counter.most_common(limit)]

    return Summary(
        samples=total,
        threads=shares(threads),
        stages=[(stage.label, stages[stage.label] / total) for stage in STAGES],
        components=shares(components),
        cumulative=shares(cumulative, top),
        self_time=shares(self_time, top),
    )


def render(summary: Summary) -> str:
    """The summary as Markdown tables."""
    lines = [f"{summary.samples:,} samples of non-idle threads.", ""]
    sections = [
        ("thread", summary.threads),
        ("component (exclusive: where each sample lands)", summary.components),
        ("request-path stage (cumulative)", summary.stages),
        ("function (cumulative)", summary.cumulative),
        ("function (self)", summary.self_time),
    ]
    for title, rows in sections:
        lines += [f"| {title} | share |", "|---|---:|"]
        lines += [f"| {name.replace('|', '/')} | {share:6.1%} |" for name, share in rows]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy raw output")
    parser.add_argument("--top", type=int, default=15, help="functions to list")
    args = parser.parse_args(argv)
    print(render(summarize(parse(args.profile.read_text()), top=args.top)))


if __name__ == "__main__":
    main()
