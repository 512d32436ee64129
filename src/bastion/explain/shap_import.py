"""Import shap lazily and quietly.

shap is heavy (it imports numba, matplotlib and more), so only the explainers that call it
import it, on first use. Importing it makes matplotlib emit a PendingDeprecationWarning that
is about shap's code, not Bastion's, so that one warning is silenced here.
"""

from __future__ import annotations

import warnings
from typing import Any


def shap() -> Any:
    """The `shap` module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap as module  # type: ignore[import-untyped]
    return module
