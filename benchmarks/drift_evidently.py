"""Evidently's side of `benchmarks/drift.py`: its DataDriftPreset on the benchmark's Parquet files.

Runs with the interpreter of a separate environment (Evidently 0.7.23 does not import with
pandas 3), so it imports nothing from Bastion. It writes, per column, the method Evidently
chose and its drift score, as JSON::

    /work/evidently-venv/bin/python benchmarks/drift_evidently.py DATA_DIR OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

#: Evidently's display names of its drift methods -> Bastion's method names
METHODS = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
}


def run(data: Path) -> dict[str, Any]:
    started = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report  # type: ignore[import-not-found]
    from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]

    meta = json.loads((data / "meta.json").read_text())
    definition = DataDefinition(
        numerical_columns=meta["numeric"], categorical_columns=meta["categorical"]
    )
    reference = Dataset.from_pandas(
        pd.read_parquet(data / "reference.parquet"), data_definition=definition
    )
    current = Dataset.from_pandas(
        pd.read_parquet(data / "current.parquet"), data_definition=definition
    )
    snapshot = Report([DataDriftPreset()]).run(current, reference).dict()
    features: dict[str, dict[str, Any]] = {}
    share = None
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            features[config["column"]] = {
                "method": METHODS.get(config["method"], config["method"]),
                "score": float(metric["value"]),
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return {"features": features, "drifted_share": share, "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(run(Path(sys.argv[1]))))
