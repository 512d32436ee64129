"""Bands that turn a model output into an outcome: score bands for classifiers, value bands
for regressors.

>>> bands = ScoreBands(approve_below=0.2, decline_at_or_above=0.7)
>>> bands.outcome(0.2)
('review', 'review')
>>> ValueBands(bands=[ValueBand(name="low", outcome="approve", below=100.0),
...                   ValueBand(name="high", outcome="review")]).outcome(250.0)
('review', 'high')
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bastion.policy.rules import OUTCOME_PATTERN


class ScoreBands(BaseModel):
    """Classifier score bands: approve below ``approve_below``, decline at or above
    ``decline_at_or_above``, review in between. Band names equal their outcomes.

    ``approve_below == decline_at_or_above`` leaves no review band.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    approve_below: float = Field(
        ge=0, le=1, allow_inf_nan=False, description="Scores below this are approved."
    )
    decline_at_or_above: float = Field(
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Scores at or above this are declined; between the two, reviewed.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ScoreBands:
        if self.decline_at_or_above < self.approve_below:
            raise ValueError(
                f"decline_at_or_above must be ≥ approve_below ({self.approve_below}), "
                f"got {self.decline_at_or_above}"
            )
        return self

    def outcome(self, score: float) -> tuple[str, str]:
        """Return ``(outcome, band name)`` for a score in [0, 1]."""
        if math.isnan(score) or not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be within [0, 1], got {score}")
        if score < self.approve_below:
            return "approve", "approve"
        if score < self.decline_at_or_above:
            return "review", "review"
        return "decline", "decline"


class ValueBand(BaseModel):
    """One regressor value band: values below ``below`` (the last band: all the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="The band's name, recorded with the decision."
    )
    outcome: str = Field(
        pattern=OUTCOME_PATTERN, description="`approve`, `review`, `decline` or a custom label."
    )
    below: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Upper bound (exclusive); omitted on the last band only.",
    )


class ValueBands(BaseModel):
    """Ordered regressor bands: a value falls in the first band whose ``below`` exceeds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: list[ValueBand] = Field(min_length=1, description="Bands in increasing order.")

    @model_validator(mode="after")
    def _ordered(self) -> ValueBands:
        *head, last = self.bands
        if last.below is not None:
            raise ValueError(
                f"bands[{len(self.bands) - 1}].below must be omitted on the last band "
                f"(it takes every larger value), got {last.below}"
            )
        previous: float | None = None
        names: set[str] = set()
        for i, band in enumerate(self.bands):
            if band.name in names:
                raise ValueError(f"bands[{i}].name must be unique, got {band.name!r} twice")
            names.add(band.name)
        for i, band in enumerate(head):
            if band.below is None:
                raise ValueError(
                    f"bands[{i}].below is required on every band but the last, got none"
                )
            if previous is not None and band.below <= previous:
                raise ValueError(
                    f"bands[{i}].below must be > bands[{i - 1}].below ({previous}), "
                    f"got {band.below}"
                )
            previous = band.below
        return self

    def outcome(self, value: float) -> tuple[str, str]:
        """Return ``(outcome, band name)`` for a finite regressor value."""
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value}")
        for band in self.bands:
            if band.below is None or value < band.below:
                return band.outcome, band.name
        raise AssertionError("unreachable: the last band has no upper bound")
