"""Recompute a version's drift reference from new data (``bastion monitor reference``).

The artifact stays immutable; the reference is a reviewed setting next to it, so replacing
it is audited (``model.monitor_reference_set``) with digests of the old and new profile.
"""

from __future__ import annotations

import pandas as pd

from bastion.monitor.reference import Reference, build_reference
from bastion.registry.service import Registry, label_column_of
from bastion.spec import ModelRef


def set_monitor_reference(
    registry: Registry,
    ref: ModelRef | str,
    data: pd.DataFrame,
    *,
    label_column: str | None = None,
    actor: str,
) -> Reference:
    """Profile `data` as `ref`'s drift reference (scored by the version's own model) and
    store it in place of the old one."""
    version = registry.get(ref)
    labels = label_column_of(data, label_column)
    frame = data.drop(columns=[label_column]) if label_column is not None else data
    reference = build_reference(
        frame, version.input_signature, registry.load(version), labels=labels
    )
    registry.replace_setting(
        version,
        "monitor_profile",
        reference.to_dict(),
        action="model.monitor_reference_set",
        actor=actor,
        details=lambda _: {
            "rows": reference.profile.rows,
            "sample_rows": reference.sample_rows,
            "labelled": reference.labels is not None,
        },
    )
    return reference
