"""Runtime: framework adapters behind one `predict` contract, and the micro-batcher."""

from bastion.runtime.adapter import ArtifactFormat, LoadOptions, ModelAdapter, Predictions, Task
from bastion.runtime.formats import FORMATS, detect_format, get_format

__all__ = [
    "FORMATS",
    "ArtifactFormat",
    "LoadOptions",
    "ModelAdapter",
    "Predictions",
    "Task",
    "detect_format",
    "get_format",
]
