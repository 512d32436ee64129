"""`WindowResult`: one window of decisions compared with its reference, as computed or stored.

A stored window (``monitor_windows``) keeps the profile (mergeable), the drift report,
label-based performance and the label-free estimate as JSON; :meth:`WindowResult.from_row`
reads them back into the same objects :meth:`WindowService.compute` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from bastion.monitor.columns import Statistic
from bastion.monitor.drift import DriftReport, FeatureDrift
from bastion.monitor.profile import Profile
from bastion.store.tables import MonitorWindowRow


@dataclass(frozen=True)
class WindowResult:
    """Drift, performance and the estimate of one deployment's window, for one model version.

    ``drift`` is None when the window has fewer than ``monitor.min_rows`` decisions (stored,
    not judged). ``performance`` is label-based (decisions with feedback; it holds the
    ``label_coverage``), ``estimated`` the CBPE estimate (``"estimate": True``); each None
    when it cannot be computed. ``sampling`` says how many rows' raw values the exact
    K-S and Wasserstein statistics used on each side (see :mod:`bastion.monitor.windows`).
    """

    deployment: str
    model_name: str
    model_version: int
    started_at: datetime
    ended_at: datetime
    rows: int
    profile: Profile
    drift: DriftReport | None
    performance: dict[str, Any] | None
    estimated: dict[str, Any] | None
    sampling: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: datetime | None = None

    @property
    def model_ref(self) -> str:
        return f"{self.model_name}:{self.model_version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN or infinity): what the API and ``--json`` print."""
        return {
            "id": self.id,
            "deployment": self.deployment,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "rows": self.rows,
            "drift": None if self.drift is None else self.drift.to_dict(),
            "performance": self.performance,
            "estimated": self.estimated,
            "sampling": self.sampling,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
        }

    def to_row(self, created_at: datetime) -> MonitorWindowRow:
        profile = self.profile.to_dict()
        profile["metadata"] = {**profile.get("metadata", {}), "sampling": self.sampling}
        return MonitorWindowRow(
            deployment=self.deployment,
            model_name=self.model_name,
            model_version=self.model_version,
            started_at=self.started_at,
            ended_at=self.ended_at,
            rows=self.rows,
            profile=profile,
            drift=None if self.drift is None else self.drift.to_dict(),
            performance=self.performance,
            estimated=self.estimated,
            created_at=created_at,
        )

    @classmethod
    def from_row(cls, row: MonitorWindowRow) -> WindowResult:
        profile = Profile.from_dict(row.profile)
        return cls(
            deployment=row.deployment,
            model_name=row.model_name,
            model_version=row.model_version,
            started_at=row.started_at,
            ended_at=row.ended_at,
            rows=row.rows,
            profile=profile,
            drift=None if row.drift is None else report_from_dict(row.drift),
            performance=row.performance,
            estimated=row.estimated,
            sampling=dict(profile.metadata.get("sampling") or {}),
            id=row.id,
            created_at=row.created_at,
        )


_FEATURE_FIELDS = [f.name for f in fields(FeatureDrift) if f.name != "statistics"]


def feature_from_dict(data: dict[str, Any]) -> FeatureDrift:
    """The inverse of :meth:`FeatureDrift.to_dict`."""
    statistics = tuple(Statistic(**s) for s in data["statistics"])
    return FeatureDrift(**{k: data[k] for k in _FEATURE_FIELDS if k in data}, statistics=statistics)


def report_from_dict(data: dict[str, Any]) -> DriftReport:
    """The inverse of :meth:`DriftReport.to_dict` (a stored window's drift)."""
    prediction = data.get("prediction")
    return DriftReport(
        features=tuple(feature_from_dict(f) for f in data["features"]),
        prediction=None if prediction is None else feature_from_dict(prediction),
        drifted_features=int(data["drifted_features"]),
        total_features=int(data["total_features"]),
        drift_share=float(data["drift_share"]),
        dataset_drift=bool(data["dataset_drift"]),
        embeddings=dict(data.get("embeddings") or {}),
    )
