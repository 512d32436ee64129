"""Model registry: immutable content-addressed versions, signatures, stages, model cards."""

from bastion.registry.artifacts import ArtifactStore
from bastion.registry.card import render_card
from bastion.registry.service import Registry
from bastion.registry.versions import ModelVersion, StageTransition

__all__ = ["ArtifactStore", "ModelVersion", "Registry", "StageTransition", "render_card"]
