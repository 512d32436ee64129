"""Explanations of decisions: per-field contributions, additivity checks and reason codes.

.. code-block:: python

    from bastion.explain import build_explainer, reason_codes

    explainer = build_explainer(adapter, version, deployment.explain)  # once, at start-up
    [explanation] = explainer.explain([record])  # blocking; call from a worker thread
    reasons = reason_codes(explanation, deployment.explain, record, explainer.reference)

Every explainer (`TreeShapExplainer`, `LinearExplainer`, `PermutationExplainer`,
`KernelExplainer`) follows the `Explainer` contract and returns `Explanation` objects in the
caller's fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.explain.base import Explainer
from bastion.explain.explanation import Explanation
from bastion.explain.reasons import reason_codes

if TYPE_CHECKING:
    from bastion.explain.factory import build_explainer

__all__ = ["Explainer", "Explanation", "build_explainer", "reason_codes"]


def __getattr__(name: str) -> Any:
    # The factory pulls in the registry, numpy kernels and shap. Loaded on first use, so
    # that `bastion.spec` (which reads `explain.config`) imports neither, and no import
    # cycle runs spec → explain → registry → spec.
    if name == "build_explainer":
        from bastion.explain.factory import build_explainer

        return build_explainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
