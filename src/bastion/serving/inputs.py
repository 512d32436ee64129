"""The minimal signature check: the right columns with values of usable types.

The request path now uses the full input contract instead (`bastion.guard.contract`, wired
in `bastion.serving.guard`); `check_instances` stays as the baseline the component
benchmark measures against.
"""

from __future__ import annotations

import math
from typing import Any

from bastion.errors import FieldError, InvalidInput
from bastion.registry.signature import ColumnSignature, InputSignature

Instance = dict[str, Any]


def _check_value(column: ColumnSignature, value: Any) -> str | None:
    """Why `value` cannot be used for `column`, or None when it can."""
    if value is None:
        return None
    if column.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {type(value).__name__}"
        if isinstance(value, float) and math.isinf(value):
            return "must be finite"
        return None
    if column.kind == "boolean":
        return (
            None
            if isinstance(value, bool)
            else f"must be true or false, got {type(value).__name__}"
        )
    if column.kind == "text":
        return None if isinstance(value, str) else f"must be a string, got {type(value).__name__}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"must be a category (string or number), got {type(value).__name__}"
    return None


def check_instances(
    instances: list[Any], signature: InputSignature, *, prefix: str = "instances"
) -> list[Instance]:
    """Return the instances as model rows, or raise `InvalidInput` listing every problem.

    Fields the model does not use are dropped; missing fields are errors.
    """
    errors: list[FieldError] = []
    rows: list[Instance] = []
    columns = signature.columns
    single = len(instances) == 1 and prefix == "features"
    for index, instance in enumerate(instances):
        where = prefix if single else f"{prefix}[{index}]"
        if not isinstance(instance, dict):
            errors.append(FieldError(where, "must be an object of feature values"))
            continue
        row: Instance = {}
        for column in columns:
            if column.name not in instance:
                errors.append(FieldError(f"{where}.{column.name}", "is required", column.kind))
                continue
            value = instance[column.name]
            problem = _check_value(column, value)
            if problem is not None:
                errors.append(FieldError(f"{where}.{column.name}", problem, column.kind))
            row[column.name] = value
        rows.append(row)
    if errors:
        shown = "; ".join(f"{e.field} {e.message}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InvalidInput(f"{len(errors)} invalid field(s): {shown}{more}", errors=errors)
    return rows
