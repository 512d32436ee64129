"""Recording which spec a server runs: a `spec.applied` audit event whenever it changes.

`bastion serve` calls this at start-up, so the audit log shows when each version of a spec
file went live and who started it; restarting with an unchanged spec records nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bastion.spec import Spec
from bastion.store.audit import AuditLog, state_digest


def record_applied_spec(
    session: Session, spec: Spec, source: str, *, actor: str, at: datetime
) -> bool:
    """Append `spec.applied` for `source` unless its last applied spec was identical.

    Returns whether an event was written. Runs in the caller's transaction.
    """
    state = spec.model_dump(mode="json")
    last = AuditLog.list(session, action="spec.applied", target=source, limit=1)
    previous = last[0].after_digest if last else None
    if previous == state_digest(state):
        return False
    AuditLog.append(
        session,
        actor=actor,
        action="spec.applied",
        target=source,
        after=state,
        details={"deployments": sorted(spec.deployments), "previous_digest": previous},
        at=at,
    )
    return True
