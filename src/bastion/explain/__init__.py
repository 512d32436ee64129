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

from bastion.explain.base import Explainer
from bastion.explain.explanation import Explanation
from bastion.explain.factory import build_explainer
from bastion.explain.reasons import reason_codes

__all__ = ["Explainer", "Explanation", "build_explainer", "reason_codes"]
