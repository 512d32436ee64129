"""The peer in `serving.py`: a typical hand-written FastAPI endpoint around the same booster.

What an engineer writes without a serving framework: a pydantic model for the body, a
one-row pandas frame with the model's categories, `booster.predict` once per request, the
score back as JSON. No batching, no decision log, no metrics. Its categorical handling
equals Bastion's: the category lists come from the model file (`pandas_categorical`), and
an unseen category becomes a missing value, as in Bastion's LightGBM adapter.

``BENCH_BARE_MODE=numpy`` is the tuned variant: category codes looked up in a dict and one
float64 numpy row handed to the booster, skipping pandas (what Bastion's adapter does after
building its frame). ``BENCH_BARE_HANDLER=sync`` declares the endpoint with plain ``def``
(FastAPI runs it in its thread pool) instead of the default ``async def``.

Run by `serving.py` as ``uvicorn bare_fastapi:create_app --factory`` with the model text
path in ``BENCH_MODEL_PATH``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

MODEL_ENV = "BENCH_MODEL_PATH"
HANDLER_ENV = "BENCH_BARE_HANDLER"
MODE_ENV = "BENCH_BARE_MODE"
#: the demo model's categorical columns, in feature order (as LightGBM stores their lists)
CATEGORICAL = ["channel", "country"]


class Features(BaseModel):
    """One credit application; fields the model does not use (``note``) are ignored."""

    income: float | None
    debt_ratio: float | None
    utilization: float | None
    age: float | None
    employment_years: float | None
    channel: str | None
    country: str | None
    amount: float | None


class Application(BaseModel):
    subject_id: str
    features: Features


class Score(BaseModel):
    subject_id: str
    score: float


def load_booster(path: str) -> tuple[Any, dict[str, Any]]:
    """The booster and the dtype of each feature: float64, or its training categories."""
    booster = lightgbm.Booster(model_file=path)
    categories: list[list[Any]] = booster.pandas_categorical or []
    if len(categories) != len(CATEGORICAL):
        raise RuntimeError(
            f"expected category lists for {CATEGORICAL}, the model has {len(categories)}"
        )
    dtypes: dict[str, Any] = {name: "float64" for name in booster.feature_name()}
    for name, values in zip(CATEGORICAL, categories, strict=True):
        dtypes[name] = pd.CategoricalDtype(values)
    return booster, dtypes


def frame_scorer(booster: Any, dtypes: dict[str, Any]) -> Callable[[Features], float]:
    """The typical way: a one-row DataFrame with the training dtypes."""
    names = list(dtypes)

    def score(features: Features) -> float:
        frame = pd.DataFrame([features.model_dump()], columns=names).astype(dtypes)
        return float(booster.predict(frame, num_threads=1)[0])

    return score


def numpy_scorer(booster: Any, dtypes: dict[str, Any]) -> Callable[[Features], float]:
    """The tuned way: category codes from a dict (unseen: NaN), one float64 row."""
    codes = {
        name: {value: float(code) for code, value in enumerate(dtype.categories)}
        for name, dtype in dtypes.items()
        if isinstance(dtype, pd.CategoricalDtype)
    }
    names = list(dtypes)

    def score(features: Features) -> float:
        values = features.model_dump()
        row = [
            codes[name].get(values[name], np.nan)
            if name in codes
            else (np.nan if values[name] is None else values[name])
            for name in names
        ]
        return float(booster.predict(np.array([row], dtype=np.float64), num_threads=1)[0])

    return score


def create_app() -> FastAPI:
    booster, dtypes = load_booster(os.environ[MODEL_ENV])
    make = numpy_scorer if os.environ.get(MODE_ENV, "frame") == "numpy" else frame_scorer
    predict_one = make(booster, dtypes)

    def score(application: Application) -> Score:
        probability = predict_one(application.features)
        return Score(subject_id=application.subject_id, score=probability)

    app = FastAPI()

    if os.environ.get(HANDLER_ENV, "async") == "sync":

        @app.post("/predict")
        def predict_sync(application: Application) -> Score:
            return score(application)

    else:

        @app.post("/predict")
        async def predict(application: Application) -> Score:
            return score(application)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
