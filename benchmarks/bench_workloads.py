"""Request bodies for `serving.py`: one file per protocol for wrk, and probes of each server.

Every system gets the same held-out demo applications. `/decide` and the FastAPI peers take
them as ``{"subject_id": ..., "features": {...}}``; OIP takes one FP64 or BYTES tensor per
column. Probes send the first few once and collect the scores, so the benchmark can check
that every system computes the same thing before it measures how fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bastion.demo.data import FEATURES
from bastion.demo.run import DEPLOYMENT

PROBES = 20
FP64 = [c for c in FEATURES if c not in ("channel", "country")]


@dataclass(frozen=True)
class Workload:
    """Request bodies for one system: a file for wrk, and dicts for the probes."""

    path: str
    bodies: list[dict[str, Any]]
    file: Path
    #: index of each body in the shared list of held-out applications
    rows: list[int]


def oip_body(features: dict[str, Any]) -> dict[str, Any]:
    """One row as per-column OIP tensors: FP64 for numbers, BYTES for channel and country."""
    inputs = [
        {
            "name": name,
            "datatype": "FP64" if name in FP64 else "BYTES",
            "shape": [1],
            "data": [float(features[name]) if name in FP64 else features[name]],
        }
        for name in FEATURES
    ]
    return {"inputs": inputs}


def write_bodies(path: Path, bodies: Sequence[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(body) + b"\n" for body in bodies))
    return path


def workloads(folder: Path, bodies: list[dict[str, Any]]) -> dict[str, Workload]:
    """The same applications for every system; OIP gets those without missing values.

    JSON tensors cannot carry a missing FP64 value (JSON has no NaN), so OIP requests use the
    complete applications only.
    """
    every = list(range(len(bodies)))
    complete = [i for i in every if all(bodies[i]["features"][c] is not None for c in FEATURES)]
    tensors = [oip_body(bodies[i]["features"]) for i in complete]
    applications = write_bodies(folder / "applications.jsonl", bodies)
    tensor_file = write_bodies(folder / "oip.jsonl", tensors)
    decide = f"/v1/deployments/{DEPLOYMENT}/decide"
    return {
        "bare": Workload("/predict", bodies, applications, every),
        "bare_np": Workload("/predict", bodies, applications, every),
        "decide": Workload(decide, bodies, applications, every),
        "oip": Workload(f"/v2/models/{DEPLOYMENT}/infer", tensors, tensor_file, complete),
        "hello": Workload("/", bodies, applications, every),
        "starlette": Workload(decide, bodies, applications, every),
    }


def score_of(system: str, payload: Any) -> float | None:
    if system in ("bare", "bare_np"):
        return float(payload["score"])
    if system == "decide":
        return float(payload["prediction"]["score"])
    if system == "oip":
        outputs = {o["name"]: o for o in payload["outputs"]}
        return float(outputs["probabilities"]["data"][1])
    return None


def probe(
    url: str, system: str, workload: Workload, token: str | None
) -> tuple[str | None, dict[int, float]]:
    """Send the first bodies once: (problem or None, score per application index)."""
    scores: dict[int, float] = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        for row, body in zip(workload.rows[:PROBES], workload.bodies[:PROBES], strict=True):
            response = client.post(workload.path, json=body)
            if response.status_code != 200:
                return f"HTTP {response.status_code}: {response.text[:300]}", scores
            score = score_of(system, response.json())
            if score is not None:
                scores[row] = score
    return None, scores
