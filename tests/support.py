"""Small helpers shared by tests that start real servers."""

from __future__ import annotations

import math
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bastion.demo.data import FEATURES
from bastion.demo.run import start_server, wait_ready
from bastion.demo.train import TrainedModel


def problem_body(response: Any, status: int) -> dict[str, Any]:
    """The problem+json body of `response`, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request_rows(trained: TrainedModel, n: int) -> list[dict[str, Any]]:
    """The first `n` held-out rows as request feature objects (NaN sent as null)."""
    rows = trained.test_frame[FEATURES].head(n).to_dict(orient="records")
    return [
        {str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows
    ]


@contextmanager
def running_servers(
    spec_path: Path, env: dict[str, str], log_dir: Path, count: int = 2
) -> Iterator[list[str]]:
    """`count` `bastion serve` processes on free ports; yields their base URLs, then stops them."""
    ports = [free_port() for _ in range(count)]
    processes = [
        start_server(spec_path, port, log_dir / f"replica-{i}.log", env)
        for i, port in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            wait_ready(url, process)
        yield urls
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
