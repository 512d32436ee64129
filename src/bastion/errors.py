"""The exceptions Bastion raises on purpose.

Every error a user can cause or fix is a `BastionError` with a stable `type` slug. The
server turns these into RFC 9457 problem documents in one place and the CLI prints them as
one clear line, so a message written here is what the user reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field: where it is, what is wrong, what was expected."""

    field: str
    message: str
    expected: str | None = None
    #: the contract rule that failed (required, type, range, category, ...), if any
    rule: str | None = None
    #: how the offending value looked; None when it must not be shown (personal data)
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.rule is not None:
            out["rule"] = self.rule
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass
class BastionError(Exception):
    """Base class: a message for people plus a stable machine-readable `type` and status."""

    message: str
    errors: list[FieldError] = field(default_factory=list)

    type: str = "about:blank"
    title: str = "Bastion error"
    status: int = 400

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class InvalidInput(BastionError):
    """The request body or a CLI argument does not have the shape or values required."""

    type: str = "invalid-input"
    title: str = "Invalid input"
    status: int = 422


@dataclass
class MalformedRequest(BastionError):
    """The request could not be parsed at all (bad JSON, wrong content type)."""

    type: str = "malformed-request"
    title: str = "Malformed request"
    status: int = 400


@dataclass
class PayloadTooLarge(BastionError):
    type: str = "payload-too-large"
    title: str = "Payload too large"
    status: int = 413


@dataclass
class UnsupportedMediaType(BastionError):
    type: str = "unsupported-media-type"
    title: str = "Unsupported media type"
    status: int = 415


@dataclass
class NotFound(BastionError):
    type: str = "not-found"
    title: str = "Not found"
    status: int = 404


@dataclass
class Conflict(BastionError):
    type: str = "conflict"
    title: str = "Conflict"
    status: int = 409


@dataclass
class SpecError(BastionError):
    """`bastion.yaml` is invalid; `errors` name each field path (and line) at fault."""

    type: str = "invalid-spec"
    title: str = "Invalid deployment spec"
    status: int = 422


@dataclass
class ArtifactError(BastionError):
    """A model artifact cannot be loaded safely: corrupt, tampered, untrusted or unknown."""

    type: str = "artifact-refused"
    title: str = "Model artifact refused"
    status: int = 422


@dataclass
class ModelFailure(BastionError):
    """The model raised while predicting; the request is answered, the server keeps serving."""

    type: str = "model-failure"
    title: str = "Model call failed"
    status: int = 502


@dataclass
class NotReady(BastionError):
    type: str = "not-ready"
    title: str = "Not ready"
    status: int = 503


@dataclass
class StorageError(BastionError):
    """The database did not accept a write or read; raised instead of driver exceptions."""

    type: str = "storage-unavailable"
    title: str = "Storage unavailable"
    status: int = 503


@dataclass
class ModelTimeout(BastionError):
    type: str = "model-timeout"
    title: str = "Model call timed out"
    status: int = 504


@dataclass
class Unauthorized(BastionError):
    """No API key, or one that is unknown or revoked. Answered with `WWW-Authenticate`."""

    type: str = "unauthorized"
    title: str = "Unauthorized"
    status: int = 401


@dataclass
class Forbidden(BastionError):
    """A valid API key whose role or deployment does not allow the request."""

    type: str = "forbidden"
    title: str = "Forbidden"
    status: int = 403


@dataclass
class RateLimited(BastionError):
    """Over a deployment's or a key's rate limit; answered with `Retry-After`."""

    type: str = "rate-limited"
    title: str = "Too many requests"
    status: int = 429
    retry_after: int = 1


@dataclass
class Overloaded(BastionError):
    """Load shed: the deployment's queue is full or too slow; retry after `retry_after` s."""

    type: str = "overloaded"
    title: str = "Overloaded"
    status: int = 503
    retry_after: int = 1
    reason: str = "queue_full"


@dataclass
class RateLimitUnavailable(BastionError):
    """The shared rate-limit store is unreachable and the spec says to fail closed."""

    type: str = "rate-limit-unavailable"
    title: str = "Rate limiting unavailable"
    status: int = 503
    retry_after: int = 1
