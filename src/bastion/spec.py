"""`bastion.yaml`: the deployment spec. The only place configuration files are parsed.

A spec names deployments; each serves one model version (pinned as `name:version`, or
following a stage as `name@production`) with its batching settings. Sections that later
capabilities fill in (rollout) are reserved: they parse, and must stay empty until
the capability lands, so a spec written today keeps its meaning. The ``guard`` section
configures the input contract, the out-of-distribution score and the handling of personal
data (`Guard`); ``policy`` the rules, bands and review queue (`PolicyConfig`); ``explain``
the per-decision explanations (`ExplainConfig`); ``monitor`` drift windows and alerts
(`MonitorConfig`).

Errors name the field path and the line in the file, e.g.
``deployments.credit.batching.max_wait_ms (line 7): Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from bastion.errors import FieldError, SpecError
from bastion.explain.config import ExplainConfig
from bastion.guard.policy import ContractPolicy, OODPolicy, PiiPolicy
from bastion.monitor.config import MonitorConfig
from bastion.policy.config import PolicyConfig

STAGES = ("none", "staging", "production", "archived")
Stage = Literal["none", "staging", "production", "archived"]

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_MODEL_REF = re.compile(rf"^(?P<name>{_NAME})(?::(?P<version>[1-9][0-9]*)|@(?P<stage>[a-z]+))$")
NAME_PATTERN = re.compile(rf"^{_NAME}$")


def _bad_ref(given: Any) -> str:
    return (
        "model reference must be NAME:VERSION (e.g. credit:3) or NAME@STAGE "
        f"(e.g. credit@production), got {given!r}"
    )


class ModelRef(BaseModel):
    """A pointer to a model version: pinned (`credit:3`) or following a stage (`m@production`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int | None = None
    stage: Stage | None = None

    @model_validator(mode="after")
    def _pinned_or_staged(self) -> ModelRef:
        # Built from a mapping rather than parsed from text, a reference could otherwise name
        # neither a version nor a stage (or both), or carry a name no text form allows.
        if not NAME_PATTERN.match(self.name) or (self.version is None) == (self.stage is None):
            raise ValueError(_bad_ref(self.model_dump(exclude_none=True)))
        if self.version is not None and self.version < 1:
            raise ValueError(_bad_ref(self.model_dump(exclude_none=True)))
        return self

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        match = _MODEL_REF.match(text.strip())
        if match is None:
            raise ValueError(_bad_ref(text))
        stage = match["stage"]
        if stage is not None and stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        version = int(match["version"]) if match["version"] else None
        return cls(name=match["name"], version=version, stage=stage)

    def __str__(self) -> str:
        return (
            f"{self.name}:{self.version}"
            if self.version is not None
            else f"{self.name}@{self.stage}"
        )


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Batching(Strict):
    """Micro-batching: concurrent requests merged into one model call."""

    max_batch_size: int = Field(64, ge=1, le=4096, description="Most rows in one model call.")
    max_wait_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="Longest a request waits for others to join its batch. The batcher only "
        "waits while the model is busy, so an idle deployment answers without delay.",
    )


class Limits(Strict):
    """``limits``: request rates (429 past them) and load shedding (503 past the queue budget).

    Rates are enforced with GCRA: `burst` requests at once, then `requests_per_second` on
    average. Unset rates mean no rate limit; load shedding always applies.
    """

    requests_per_second: float | None = Field(
        None, gt=0, description="Average scoring requests per second for the whole deployment."
    )
    burst: int | None = Field(
        None,
        ge=1,
        description="Requests the deployment accepts at once above the average rate; "
        "defaults to requests_per_second rounded up.",
    )
    per_key_requests_per_second: float | None = Field(
        None, gt=0, description="Average scoring requests per second for each API key."
    )
    per_key_burst: int | None = Field(
        None, ge=1, description="Burst for each API key; defaults to its rate rounded up."
    )
    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="memory: limits per server process. redis: limits shared by every replica "
        "through BASTION_REDIS_URL (required then).",
    )
    on_backend_error: Literal["open", "closed"] = Field(
        "open",
        description="When Redis cannot be reached: open serves without limits, closed answers "
        "503 with Retry-After.",
    )
    max_queue_rows: int = Field(
        1024, ge=1, description="Rows that may wait for the model; past it new requests get 503."
    )
    max_queue_delay_ms: float = Field(
        500,
        gt=0,
        description="Once the oldest queued request has waited this long, new requests get 503 "
        "with Retry-After instead of joining the queue.",
    )

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> Limits:
        if self.burst is not None and self.requests_per_second is None:
            raise ValueError("burst needs requests_per_second")
        if self.per_key_burst is not None and self.per_key_requests_per_second is None:
            raise ValueError("per_key_burst needs per_key_requests_per_second")
        return self


class Reserved(Strict):
    """A section kept for a later capability; it must be empty for now."""


class Guard(Strict):
    """``guard``: the input contract, the OOD score and personal data, per deployment."""

    contract: ContractPolicy = Field(
        default_factory=ContractPolicy,
        description="Per rule reject (422) or flag (served, reported under `guard`).",
    )
    ood: OODPolicy = Field(
        default_factory=OODPolicy, description="Distance from the training data."
    )
    pii: PiiPolicy | None = Field(
        None, description="Personal-data fields, scanned texts and redaction operators."
    )


class Deployment(Strict):
    """A named endpoint: which model version serves it and how requests reach the model."""

    model: ModelRef = Field(description="NAME:VERSION or NAME@STAGE.")
    description: str | None = None
    batching: Batching = Field(default_factory=Batching)
    model_timeout_ms: float = Field(
        10_000, gt=0, description="A model call taking longer fails the request with 504."
    )
    guard: Guard = Field(default_factory=Guard, description="Input contract, OOD, PII.")
    limits: Limits = Field(
        default_factory=Limits, description="Rate limits (429) and load shedding (503)."
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description="Decision records older than this many days are deleted by the retention "
        "job; unset keeps them.",
    )
    policy: PolicyConfig | None = Field(
        None, description="CEL rules, score or value bands, the fallback, human review."
    )
    explain: ExplainConfig | None = Field(
        None, description="Per-decision contributions and reason codes."
    )
    rollout: Reserved | None = Field(None, description="Reserved: shadow, canary, A/B.")
    monitor: MonitorConfig | None = Field(
        None, description="Drift and performance windows, alerts and webhooks."
    )

    @field_validator("model", mode="before")
    @classmethod
    def _parse_model(cls, value: Any) -> Any:
        if isinstance(value, str):
            return ModelRef.parse(value)
        if isinstance(value, ModelRef | dict):
            return value
        raise ValueError(_bad_ref(value))


class Server(Strict):
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    max_instances: int = Field(
        1000, ge=1, description="Most instances in one /decide or infer request."
    )


class Spec(Strict):
    """The whole `bastion.yaml`."""

    version: Literal[1] = 1
    server: Server = Field(default_factory=Server)
    deployments: dict[str, Deployment] = Field(default_factory=dict)

    @field_validator("deployments")
    @classmethod
    def _deployment_names(cls, value: dict[str, Deployment]) -> dict[str, Deployment]:
        for name in value:
            if not NAME_PATTERN.match(name):
                raise ValueError(
                    f"deployment name must be letters, digits, '.', '_' or '-', got {name!r}"
                )
        return value


def _line_of(node: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node along `loc` that still exists."""
    line: int | None = None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    return line


def _validation_errors(exc: ValidationError, tree: Any) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        path = ".".join(str(part) for part in loc) or "(root)"
        line = _line_of(tree, loc)
        where = f"{path} (line {line})" if line is not None else path
        message = error["msg"].removeprefix("Value error, ")
        errors.append(FieldError(field=where, message=message))
    return errors


def parse_spec(text: str, *, source: str = "<spec>") -> Spec:
    """Parse and validate spec text; raise `SpecError` naming every bad field and its line."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(io.StringIO(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{source}: not valid YAML{where}: {problem}") from exc
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, dict):
        raise SpecError(f"{source}: the top level must be a mapping with a 'deployments' key")
    try:
        return Spec.model_validate(_plain(tree))
    except ValidationError as exc:
        errors = _validation_errors(exc, tree)
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise SpecError(f"{source}: {summary}", errors=errors) from exc


def load_spec(path: Path) -> Spec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from exc
    return parse_spec(text, source=str(path))


def spec_schema() -> dict[str, Any]:
    return Spec.model_json_schema()


def dump_spec(spec: Spec) -> str:
    """Serialize a spec to YAML, e.g. the one `bastion demo` writes."""
    data = spec.model_dump(mode="json", exclude_none=True)
    for deployment, source in zip(
        data["deployments"].values(), spec.deployments.values(), strict=True
    ):
        deployment["model"] = str(source.model)
    buffer = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, buffer)
    return buffer.getvalue()


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers to plain dicts and lists for pydantic."""
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node
