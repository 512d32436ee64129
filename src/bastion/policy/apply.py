"""Write tuned thresholds into the spec file: a minimal, validated, atomic and audited edit.

The spec is the reviewed source of truth, so the edit must read like one a person made:
when ``deployments.NAME.policy.bands`` exists, only the two numbers change and every other
byte stays; when the ``bands`` or ``policy`` section is missing it is inserted as new lines
at the end of the block mapping, again leaving the rest untouched. Only a flow-style mapping on
the way (``credit: {model: …}``) makes ruamel re-emit the file (comments kept, layout
normalised).

The edited text must parse (`parse_spec`) to exactly the old spec with the new bands, or
nothing is written. The file is replaced atomically and the ``policy.thresholds.applied``
audit event is appended in the same step: if the audit transaction fails, the old text is
put back.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from bastion.errors import Conflict, InvalidInput, NotFound, SpecError
from bastion.policy.bands import ScoreBands
from bastion.policy.config import PolicyConfig
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from bastion.store.audit import AuditLog, state_digest

ACTION = "policy.thresholds.applied"

#: a YAML scalar as written: double-quoted, single-quoted or plain
_SCALAR = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s,}\]#]+")


@dataclass(frozen=True)
class AppliedThresholds:
    """What `apply_thresholds` did. `changed` is False when the spec already had these bands."""

    path: Path
    deployment: str
    before: ScoreBands | None
    after: ScoreBands
    before_digest: str
    after_digest: str
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": str(self.path),
            "deployment": self.deployment,
            "before": None if self.before is None else self.before.model_dump(),
            "after": self.after.model_dump(),
            "before_digest": self.before_digest,
            "after_digest": self.after_digest,
            "changed": self.changed,
        }


def _number(value: float) -> str:
    """Shortest text that reads back as the same float, so the bands split cases exactly."""
    return repr(float(value))


def _spec_state(spec: Spec) -> dict[str, Any]:
    return spec.model_dump(mode="json")


def _with_bands(spec: Spec, deployment: str, bands: ScoreBands) -> Spec:
    current = spec.deployments[deployment]
    policy = current.policy or PolicyConfig()
    updated = current.model_copy(update={"policy": policy.model_copy(update={"bands": bands})})
    return spec.model_copy(update={"deployments": {**spec.deployments, deployment: updated}})


def _offset(lines: list[str], line: int, column: int) -> int:
    return sum(len(text) for text in lines[:line]) + column


def _replace_values(text: str, bands_node: CommentedMap, bands: ScoreBands) -> str:
    """Swap the two scalars in place; every other character stays."""
    lines = text.splitlines(keepends=True)
    edits = []
    for key, value in (
        ("approve_below", bands.approve_below),
        ("decline_at_or_above", bands.decline_at_or_above),
    ):
        start = _offset(lines, *bands_node.lc.value(key))
        match = _SCALAR.match(text, start)
        if match is None:
            raise SpecError(f"cannot find the value of policy.bands.{key} in the spec text")
        edits.append((match.start(), match.end(), _number(value)))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _block_lines(indent: int, key: str, body: dict[str, Any]) -> str:
    """``key:`` and a nested block mapping of scalars or one more level, as YAML lines."""
    pad = " " * indent
    out = [f"{pad}{key}:\n"]
    for name, value in body.items():
        if isinstance(value, dict):
            out.append(_block_lines(indent + 2, name, value))
        else:
            out.append(f"{pad}  {name}: {value}\n")
    return "".join(out)


def _mapping_end(lines: list[str], first_line: int, column: int) -> int:
    """The index of the line after the block mapping whose keys sit at `column`.

    The mapping runs on while lines are blank, comments, or indented at least `column`;
    comments and blank lines at its very end are left to what follows them.
    """
    end = first_line + 1
    last_content = first_line
    while end < len(lines):
        stripped = lines[end].strip()
        if stripped and not stripped.startswith("#"):
            indent = len(lines[end]) - len(lines[end].lstrip(" "))
            if indent < column:
                break
            last_content = end
        end += 1
    return last_content + 1


def _insert_key(text: str, mapping: CommentedMap, key: str, body: dict[str, Any]) -> str | None:
    """Append ``key: body`` as new lines at the end of a block mapping, leaving every other
    line as it was. None when the mapping is flow style, empty or shares its first line
    with something else (the caller falls back to ruamel)."""
    if mapping.fa.flow_style() or not mapping:
        return None
    lines = text.splitlines(keepends=True)
    line, column = mapping.lc.key(next(iter(mapping)))
    if lines[line][:column].strip():
        return None
    at = _mapping_end(lines, line, column)
    if lines[at - 1] and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, _block_lines(column, key, body))
    return "".join(lines)


def _bands_body(bands: ScoreBands) -> dict[str, Any]:
    return {
        "approve_below": _number(bands.approve_below),
        "decline_at_or_above": _number(bands.decline_at_or_above),
    }


def _edit(text: str, tree: CommentedMap, deployment: str, bands: ScoreBands) -> str | None:
    """The smallest text edit that sets the bands; None when only a re-emit can do it."""
    node = tree["deployments"][deployment]
    policy = node.get("policy")
    if policy is None:
        return _insert_key(text, node, "policy", {"bands": _bands_body(bands)})
    existing = policy.get("bands")
    if existing is None:
        return _insert_key(text, policy, "bands", _bands_body(bands))
    return _replace_values(text, existing, bands)


def _reemit(tree: CommentedMap, deployment: str, bands: ScoreBands) -> str:
    node = tree["deployments"][deployment]
    if node.get("policy") is None:
        node["policy"] = CommentedMap()
    node["policy"]["bands"] = CommentedMap(
        approve_below=bands.approve_below, decline_at_or_above=bands.decline_at_or_above
    )
    yaml = YAML(typ="rt")
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(tree, buffer)
    return buffer.getvalue()


def edited_spec_text(text: str, deployment: str, bands: ScoreBands, *, source: str) -> str:
    """`text` with ``deployments.<deployment>.policy.bands`` set to `bands`, validated.

    Raises `NotFound` for an unknown deployment, `InvalidInput` when it uses value bands,
    and `SpecError` when the spec is invalid before or after.
    """
    spec = parse_spec(text, source=source)
    if deployment not in spec.deployments:
        known = ", ".join(sorted(spec.deployments)) or "none"
        raise NotFound(f"no deployment {deployment!r} in {source} (deployments: {known})")
    policy = spec.deployments[deployment].policy
    if policy is not None and policy.value_bands is not None:
        raise InvalidInput(
            f"deployment {deployment!r} uses value_bands (a regressor); score thresholds do not apply"
        )
    expected = _spec_state(_with_bands(spec, deployment, bands))
    tree = YAML(typ="rt").load(io.StringIO(text))
    for candidate in (_edit(text, tree, deployment, bands), _reemit(tree, deployment, bands)):
        if candidate is not None and _spec_state(parse_spec(candidate, source=source)) == expected:
            return candidate
    raise SpecError(f"{source}: could not write the bands without changing anything else")


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def apply_thresholds(
    path: Path,
    deployment: str,
    bands: ScoreBands,
    *,
    database: Database,
    actor: str,
    details: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AppliedThresholds:
    """Write `bands` into the spec at `path` for `deployment` and audit the change.

    `details` (e.g. costs, capacity, expected cost, model version) goes into the audit event
    next to the old and new thresholds. Nothing is written or recorded when the spec already
    has these bands.
    """
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from exc
    before_spec = parse_spec(original, source=str(path))
    new_text = edited_spec_text(original, deployment, bands, source=str(path))
    after_spec = parse_spec(new_text, source=str(path))
    old_policy = before_spec.deployments[deployment].policy
    before = None if old_policy is None else old_policy.bands
    result = AppliedThresholds(
        path=path,
        deployment=deployment,
        before=before,
        after=bands,
        before_digest=state_digest(_spec_state(before_spec)) or "",
        after_digest=state_digest(_spec_state(after_spec)) or "",
        changed=before != bands,
    )
    if not result.changed:
        return result
    event_details = {
        "spec": str(path),
        "deployment": deployment,
        "before": None if before is None else before.model_dump(),
        "after": bands.model_dump(),
        **(details or {}),
    }
    written = False
    try:
        with database.transaction() as session:
            AuditLog.append(
                session,
                actor=actor,
                action=ACTION,
                target=deployment,
                before=_spec_state(before_spec),
                after=_spec_state(after_spec),
                details=event_details,
                at=clock(),
            )
            if path.read_text(encoding="utf-8") != original:
                raise Conflict(f"{path} changed while the thresholds were computed; run again")
            _write_atomic(path, new_text)
            written = True
    except BaseException:
        if written:
            _write_atomic(path, original)
        raise
    return result
