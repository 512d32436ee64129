"""`build_explainer`: pick and build the explainer for one deployment's model, once.

``auto`` takes the most exact method the model allows: TreeSHAP tables for tree ensembles
(LightGBM, XGBoost, scikit-learn trees and forests), exact linear contributions for linear
and logistic models and pipelines ending in one, sampled permutations otherwise.
"""

from __future__ import annotations

from typing import Any

from bastion.errors import SpecError
from bastion.explain.background import background_frame, reference_medians
from bastion.explain.base import Explainer
from bastion.explain.config import ExplainConfig
from bastion.explain.linear import LinearExplainer, NotLinear
from bastion.explain.permutation import PermutationExplainer
from bastion.explain.trees.source import TreeSource
from bastion.registry.versions import ModelVersion
from bastion.runtime.adapter import ModelAdapter


def tree_source(adapter: ModelAdapter, fields: list[str]) -> TreeSource | None:
    """The adapter's model as trees, or None when it is not a tree ensemble Bastion reads."""
    from bastion.runtime.lightgbm import LightGBMAdapter

    if isinstance(adapter, LightGBMAdapter):
        from bastion.explain.trees.lightgbm import lightgbm_source

        return lightgbm_source(adapter)
    from bastion.runtime.xgboost import XGBoostAdapter

    if isinstance(adapter, XGBoostAdapter):
        from bastion.explain.trees.xgboost import xgboost_source

        return xgboost_source(adapter)
    from bastion.explain.encoded import Untraceable
    from bastion.explain.trees.sklearn import NotTrees, sklearn_source

    estimator = _estimator(adapter)
    if estimator is None:
        return None
    try:
        return sklearn_source(estimator, fields, adapter.classes)
    except (NotTrees, Untraceable):
        return None


def _estimator(adapter: ModelAdapter) -> Any:
    return getattr(adapter, "estimator", None)


def build_explainer(
    adapter: ModelAdapter, version: ModelVersion, config: ExplainConfig
) -> Explainer:
    """The explainer `config.method` asks for (``auto``: the most exact one that applies).

    Raises `SpecError` when the method cannot apply to this model, e.g. ``tree`` on a model
    that is not a tree ensemble.
    """
    explainer = _build(adapter, version, config)
    explainer.reference = reference_medians(version.input_signature)
    return explainer


def _build(adapter: ModelAdapter, version: ModelVersion, config: ExplainConfig) -> Explainer:
    from bastion.explain.tree import TreeShapExplainer

    method = config.method
    fields = version.input_signature.names
    if method in ("auto", "tree"):
        source = tree_source(adapter, fields)
        if source is not None:
            return TreeShapExplainer(source)
        if method == "tree":
            raise SpecError(
                f"explain.method is 'tree' but {version.ref} ({adapter.framework}) is not a "
                "tree ensemble Bastion can read; use auto, linear, kernel or permutation"
            )
    background = background_frame(version.input_signature)
    if method in ("auto", "linear"):
        estimator = _estimator(adapter)
        try:
            if estimator is None:
                raise NotLinear(f"{adapter.framework} models are not read as linear models")
            return LinearExplainer(estimator, fields, adapter.classes, background)
        except NotLinear as exc:
            if method == "linear":
                raise SpecError(
                    f"explain.method is 'linear' but {version.ref} is not an exact linear "
                    f"model: {exc}; use auto, kernel or permutation"
                ) from exc
    if method == "kernel":
        from bastion.explain.kernel import KernelExplainer

        return KernelExplainer(adapter, version.input_signature, background, config.budget_ms)
    return PermutationExplainer(adapter, version.input_signature, background, config.budget_ms)
