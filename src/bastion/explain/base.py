"""The one contract every explainer follows; see `bastion.explain` for the family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from bastion.explain.explanation import Explanation


class Explainer(ABC):
    """Explains micro-batches of model-input records; built once per deployment.

    ``explain`` is blocking and thread-safe: the serving path calls it from worker threads
    with the records exactly as given to ``adapter.predict_records``.
    """

    #: ``tree_shap`` | ``tree_shap_native`` | ``tree_shap_shap`` | ``linear`` |
    #: ``permutation`` | ``kernel``
    method: str
    #: the request fields contributions are reported for, in signature order
    fields: list[str]
    #: reference medians of numeric fields, for the direction words of `reason_codes`
    reference: Mapping[str, float] = MappingProxyType({})

    @abstractmethod
    def explain(self, rows: Sequence[Mapping[str, Any]]) -> list[Explanation]:
        """One `Explanation` per row, in order."""
