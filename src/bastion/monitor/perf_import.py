"""Import late labels from a CSV or Parquet file, keyed by decision id or by subject and time.

Columns (names fixed; others are ignored):

``decision_id``
    The decision the label is for.
``subject_id`` and ``at``
    Or: the subject's id as callers sent it, and a time; the label goes to the subject's
    latest decision at or before ``at`` (of ``--deployment`` only, when given). The subject
    id is turned into its pseudonyms under every known key (`Pseudonymizer.pseudonymize_all`),
    exactly as erasure finds a subject, and never stored or printed.
``label``
    Required; checked against the matched decision's model (`perf_labels.normalise_label`).
``observed_at``
    Optional: when the outcome was observed (default: the time of the import). The latest
    observation of a decision wins.

Times are ISO 8601; a time without an offset is read as UTC. The file is read in chunks
(bounded memory) and stored in one transaction: either the whole import is stored or none
of it. Rows are counted as matched (stored, or would be with ``dry_run``), unmatched (no
such decision) or invalid (a label or time that does not fit), each with a reason.
"""

from __future__ import annotations

import bisect
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import BastionError, InvalidInput
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.perf_labels import (
    DecisionRef,
    Signatures,
    check_observed_at,
    normalise_label,
    parse_time,
)
from bastion.registry import Registry
from bastion.review.feedback import add_feedback_rows
from bastion.store import Database
from bastion.store.tables import DecisionRow

Clock = Callable[[], datetime]

CHUNK_ROWS = 5_000
#: problems listed one by one in the summary (all are counted)
MAX_LISTED = 50
#: what a label needs of its decision, in `DecisionRef`'s field order (not the inputs)
REF_COLUMNS = (
    DecisionRow.id,
    DecisionRow.deployment,
    DecisionRow.model_name,
    DecisionRow.model_version,
    DecisionRow.subject_key,
    DecisionRow.created_at,
)


@dataclass(frozen=True)
class RowProblem:
    """Why one row (1 = the first data row) was not stored."""

    row: int
    kind: str  # "unmatched" or "invalid"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "kind": self.kind, "reason": self.reason}


@dataclass
class ImportSummary:
    """What an import did (or, with ``dry_run``, would do)."""

    rows: int = 0
    matched: int = 0
    unmatched: int = 0
    invalid: int = 0
    dry_run: bool = False
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[RowProblem] = field(default_factory=list)

    def problem(self, row: int, kind: str, reason: str) -> None:
        if kind == "unmatched":
            self.unmatched += 1
        else:
            self.invalid += 1
        self.reasons[f"{kind}: {reason}"] += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(RowProblem(row, kind, reason))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "matched": self.matched,
            "stored": 0 if self.dry_run else self.matched,
            "unmatched": self.unmatched,
            "invalid": self.invalid,
            "dry_run": self.dry_run,
            "reasons": dict(self.reasons.most_common()),
            "problems": [p.to_dict() for p in self.problems],
        }


def read_chunks(path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The file in frames of at most `chunk_rows`; CSV cells as text (empty: missing)."""
    if not path.is_file():
        raise InvalidInput(f"no feedback file at {path}")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InvalidInput(f"{path} is not a readable Parquet file: {exc}") from exc
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)
        yield from reader
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not a readable CSV file: {exc}") from exc


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    columns = set(frame.columns)
    if "label" not in columns or not ("decision_id" in columns or {"subject_id", "at"} <= columns):
        raise InvalidInput(
            f"{path} needs a label column and either decision_id or subject_id and at; "
            f"it has {', '.join(map(str, frame.columns)) or 'no columns'}"
        )


def _cell(record: dict[str, Any], name: str) -> Any:
    """A cell's value; missing, NaN and empty text are None."""
    value = record.get(name)
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


class FeedbackImporter:
    """Match a file's rows to decisions and store their labels (source ``import``)."""

    def __init__(
        self,
        database: Database,
        registry: Registry,
        pseudonymizer: Pseudonymizer,
        clock: Clock,
    ) -> None:
        self.database = database
        self.signatures = Signatures(registry)
        self.pseudonymizer = pseudonymizer
        self.clock = clock

    def run(
        self,
        path: Path,
        *,
        actor: str,
        deployment: str | None = None,
        dry_run: bool = False,
        chunk_rows: int | None = None,
    ) -> ImportSummary:
        """Import `path` (see the module docstring); `chunk_rows` rows are read at a time."""
        summary = ImportSummary(dry_run=dry_run)
        now = self.clock()
        with self.database.transaction() as session:
            for frame in read_chunks(path, chunk_rows or CHUNK_ROWS):
                _check_columns(frame, path)
                records = [
                    {str(k): v for k, v in record.items()} for record in frame.to_dict("records")
                ]
                first = summary.rows + 1
                summary.rows += len(records)
                found = self._match(session, records, deployment)
                rows = []
                for offset, (record, match) in enumerate(zip(records, found, strict=True)):
                    row = self._row(first + offset, record, match, now, actor, summary)
                    if row is not None:
                        rows.append(row)
                summary.matched += len(rows)
                if not dry_run:
                    add_feedback_rows(session, rows)
        return summary

    def _row(
        self,
        number: int,
        record: dict[str, Any],
        match: DecisionRef | str,
        now: datetime,
        actor: str,
        summary: ImportSummary,
    ) -> dict[str, Any] | None:
        """The feedback row for one file row, or None after recording its problem."""
        if isinstance(match, str):
            kind, _, reason = match.partition(":")
            summary.problem(number, kind, reason.strip())
            return None
        try:
            signature = self.signatures.get(match.model_name, match.model_version)
            label = normalise_label(_cell(record, "label"), signature)
            observed_raw = _cell(record, "observed_at")
            observed = now if observed_raw is None else parse_time(observed_raw, "observed_at")
            check_observed_at(observed, match, now)
        except BastionError as exc:
            summary.problem(number, "invalid", exc.message)
            return None
        return {
            "decision_id": match.id,
            "deployment": match.deployment,
            "model_name": match.model_name,
            "model_version": match.model_version,
            "subject_key": match.subject_key,
            "label": label,
            "source": "import",
            "sampling_probability": None,
            "actor": actor,
            "created_at": observed,
        }

    def _match(
        self, session: Session, records: list[dict[str, Any]], deployment: str | None
    ) -> list[DecisionRef | str]:
        """Each record's decision, or ``"kind: reason"`` when there is none."""
        out: list[DecisionRef | str] = []
        by_id: dict[int, str] = {}
        by_subject: dict[int, tuple[list[str], datetime]] = {}
        for i, record in enumerate(records):
            decision_id, subject = _cell(record, "decision_id"), _cell(record, "subject_id")
            out.append("")
            if decision_id is not None:
                text = str(decision_id).strip()
                try:
                    uuid.UUID(text)
                except ValueError:
                    out[i] = "invalid: decision_id is not a decision id"
                    continue
                by_id[i] = text
            elif subject is not None:
                try:
                    at = parse_time(_cell(record, "at"), "at")
                except InvalidInput as exc:
                    out[i] = f"invalid: {exc.message}"
                    continue
                by_subject[i] = (self.pseudonymizer.pseudonymize_all(str(subject)), at)
            else:
                out[i] = "invalid: needs a decision_id, or a subject_id and at"
        decisions = self._by_ids(session, sorted(set(by_id.values())))
        for i, decision_id in by_id.items():
            found = decisions.get(decision_id)
            if found is None:
                out[i] = "unmatched: no decision with this id"
            elif deployment is not None and found.deployment != deployment:
                out[i] = f"unmatched: the decision belongs to deployment {found.deployment}"
            else:
                out[i] = found
        history = self._by_subjects(session, by_subject, deployment)
        for i, (keys, at) in by_subject.items():
            out[i] = _latest_before(history, keys, at) or (
                "unmatched: the subject has no decision at or before at"
            )
        return out

    @staticmethod
    def _by_ids(session: Session, ids: list[str]) -> dict[str, DecisionRef]:
        if not ids:
            return {}
        rows = session.execute(select(*REF_COLUMNS).where(DecisionRow.id.in_(ids)))
        return {row.id: DecisionRef(*row) for row in rows}

    @staticmethod
    def _by_subjects(
        session: Session,
        wanted: dict[int, tuple[list[str], datetime]],
        deployment: str | None,
    ) -> dict[str, list[DecisionRef]]:
        """The chunk's subjects' decisions up to the chunk's latest time, oldest first."""
        if not wanted:
            return {}
        keys = sorted({key for ks, _ in wanted.values() for key in ks})
        until = max(at for _, at in wanted.values())
        query = select(*REF_COLUMNS).where(
            DecisionRow.subject_key.in_(keys), DecisionRow.created_at <= until
        )
        if deployment is not None:
            query = query.where(DecisionRow.deployment == deployment)
        history: dict[str, list[DecisionRef]] = {}
        for row in session.execute(query.order_by(DecisionRow.created_at, DecisionRow.id)):
            history.setdefault(str(row.subject_key), []).append(DecisionRef(*row))
        return history


def _latest_before(
    history: dict[str, list[DecisionRef]], keys: list[str], at: datetime
) -> DecisionRef | None:
    """The latest decision at or before `at` under any of the subject's pseudonyms."""
    best: DecisionRef | None = None
    for key in keys:
        decisions = history.get(key, [])
        index = bisect.bisect_right([d.created_at for d in decisions], at)
        if index and (best is None or decisions[index - 1].created_at > best.created_at):
            best = decisions[index - 1]
    return best
