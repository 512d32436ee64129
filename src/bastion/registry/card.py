"""Model cards: a Markdown page describing one version, written only from what is stored.

The card states facts the registry recorded at registration (framework, task, signature,
hashes, library versions, metrics) and what happened since (stage moves). It never guesses:
what was not recorded is shown as "—".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bastion.registry.signature import ColumnSignature
from bastion.registry.versions import ModelVersion, StageTransition

#: categories listed per column before the rest are summarised as "… +N more"
MAX_CATEGORIES_SHOWN = 10

_MISSING = "—"


def render_card(version: ModelVersion, history: list[StageTransition]) -> str:
    """A Markdown model card for `version`.

    `history` is the model's stage transitions (as `Registry.stage_history` returns them);
    only those of this version are shown.
    """
    sections = [
        f"# Model card: {version.ref}",
        _summary(version),
        _libraries(version.library_versions),
        _inputs(version),
        _outputs(version),
        _metrics(version.metrics),
        _tags(version.tags),
        _description(version.description),
        _history(version, history),
    ]
    return "\n\n".join(sections) + "\n"


def _summary(version: ModelVersion) -> str:
    output = version.output_signature
    classes = ", ".join(_code(c) for c in output.classes) if output.classes else _MISSING
    rows = [
        ("Framework", version.framework),
        ("Task", output.task),
        ("Classes", classes),
        ("Stage", version.stage),
        ("SHA-256", _code(version.digest)),
        ("Author", _text(version.author)),
        ("Created", _time(version.created_at)),
        (
            "Data fingerprint",
            _code(version.data_fingerprint) if version.data_fingerprint else _MISSING,
        ),
        ("Score calibration", _calibration(version.calibration)),
    ]
    return "## Summary\n\n" + _table(("Field", "Value"), [(k, v) for k, v in rows])


def _calibration(calibration: dict[str, Any] | None) -> str:
    """The method, and the ECE it was fitted to fix when recorded (see `policy tune`)."""
    if calibration is None:
        return "none (scores served as the model gives them)"
    info = calibration.get("info") or {}
    method = str(calibration.get("method"))
    if "ece_before" in info and "ece_after" in info:
        return (
            f"{method} (ECE {_number(info['ece_before'])} → {_number(info['ece_after'])}, "
            "cross-validated)"
        )
    return method


def _libraries(versions: dict[str, str]) -> str:
    if not versions:
        return "## Library versions\n\nNone recorded."
    rows = [(_escape(name), _code(value)) for name, value in sorted(versions.items())]
    return "## Library versions\n\n" + _table(("Library", "Version"), rows)


def _inputs(version: ModelVersion) -> str:
    signature = version.input_signature
    if not signature.columns:
        return "## Input signature\n\nNo columns recorded."
    seen = (
        f"Inferred from {signature.rows_seen} sample rows."
        if signature.rows_seen
        else "Column names only: no sample was given at registration."
    )
    rows = [
        (
            _code(c.name),
            c.kind,
            _code(c.dtype),
            "yes" if c.nullable else "no",
            _values(c),
        )
        for c in signature.columns
    ]
    table = _table(("Column", "Kind", "Dtype", "Nullable", "Values"), rows)
    return f"## Input signature\n\n{seen}\n\n{table}"


def _values(column: ColumnSignature) -> str:
    """What the sample showed about a column's values, in one cell."""
    if column.kind == "numeric":
        parts = []
        if column.min is not None and column.max is not None:
            parts.append(f"range {_number(column.min)} … {_number(column.max)}")
        if column.quantiles and "p05" in column.quantiles and "p95" in column.quantiles:
            low, high = column.quantiles["p05"], column.quantiles["p95"]
            parts.append(f"p05-p95 {_number(low)} … {_number(high)}")
        return "; ".join(parts) or _MISSING
    if column.kind == "categorical":
        return _categories(column.categories or [])
    if column.kind == "text":
        return f"max length {column.max_length}" if column.max_length is not None else _MISSING
    return "true / false"


def _categories(categories: Sequence[Any]) -> str:
    if not categories:
        return _MISSING
    shown = ", ".join(_code(c) for c in categories[:MAX_CATEGORIES_SHOWN])
    hidden = len(categories) - MAX_CATEGORIES_SHOWN
    return f"{shown}, … +{hidden} more" if hidden > 0 else shown


def _outputs(version: ModelVersion) -> str:
    output = version.output_signature
    if output.task == "classification":
        classes = ", ".join(_code(c) for c in output.classes)
        body = (
            f"Classification: one probability per class, in this order: {classes}."
            if output.classes
            else "Classification: no class labels recorded."
        )
    else:
        body = "Regression: one predicted value per row."
    return f"## Output signature\n\n{body}"


def _metrics(metrics: dict[str, float]) -> str:
    if not metrics:
        return "## Metrics\n\nNone recorded."
    rows = [(_escape(name), _number(value)) for name, value in sorted(metrics.items())]
    return "## Metrics\n\n" + _table(("Metric", "Value"), rows)


def _tags(tags: dict[str, str]) -> str:
    if not tags:
        return "## Tags\n\nNone."
    rows = [(_escape(key), _escape(str(value))) for key, value in sorted(tags.items())]
    return "## Tags\n\n" + _table(("Tag", "Value"), rows)


def _description(description: str | None) -> str:
    return f"## Description\n\n{description.strip() if description else 'None given.'}"


def _history(version: ModelVersion, history: list[StageTransition]) -> str:
    own = [t for t in history if t.name == version.name and t.version == version.version]
    if not own:
        return f"## Stage history\n\nNo stage changes: the version is in stage {version.stage}."
    rows = [(_time(t.at), t.from_stage, t.to_stage, _text(t.actor)) for t in own]
    return "## Stage history\n\n" + _table(("When", "From", "To", "By"), rows)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines.extend(_row(row) for row in rows)
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _escape(text: str) -> str:
    """Text safe inside a table cell: pipes escaped, line breaks flattened."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _text(value: str | None) -> str:
    return _escape(value) if value else _MISSING


def _code(value: Any) -> str:
    text = _escape(str(value))
    return f"`{text}`" if "`" not in text else text


def _number(value: float) -> str:
    return f"{value:.6g}"


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
