"""Models written as Python code: a class or function named ``module:attr``.

At registration the module's source file is copied into the artifact store. Loading imports
the module as it is installed now and refuses to serve it if its source no longer matches
that copy, so a registered version never silently changes behaviour.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bastion.errors import ArtifactError
from bastion.runtime.adapter import ArtifactFormat, LoadOptions, ModelAdapter
from bastion.runtime.estimator import EstimatorAdapter


class _FunctionModel:
    """A plain function ``f(frame) -> values`` seen as an estimator with `predict`."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def predict(self, frame: Any) -> Any:
        return self.function(frame)


def _split_target(target: str) -> tuple[str, str]:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ArtifactError(
            f"target must be 'module:attr' (for example 'mypkg.model:Scorer'); got {target!r}"
        )
    return module_name, attr


def _import_target(target: str) -> tuple[ModuleType, Any]:
    module_name, attr = _split_target(target)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArtifactError(f"cannot import module {module_name!r} of {target!r}: {exc}") from exc
    except Exception as exc:  # the module's own code failed while importing
        raise ArtifactError(
            f"importing module {module_name!r} of {target!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ArtifactError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return module, obj


def _source_file(module: ModuleType) -> Path:
    try:
        source = inspect.getsourcefile(module)
    except TypeError:
        source = None
    if source is None:
        raise ArtifactError(
            f"module {module.__name__!r} has no Python source file; "
            "only modules defined in .py files can be registered"
        )
    return Path(source)


def resolve_target(target: str) -> Path:
    """The source file of the module that `target` (``"module:attr"``) names.

    The registry copies this file at registration; `CallableFormat.load` compares against it.
    """
    module, _ = _import_target(target)
    return _source_file(module)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CallableFormat(ArtifactFormat):
    name = "callable"
    libraries = ()

    def sniff(self, path: Path) -> bool:
        # Any .py file could be a model or not; callables are always named explicitly.
        return False

    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        target = options.extra.get("target")
        if not isinstance(target, str):
            raise ArtifactError(
                f"a callable model needs its target 'module:attr' in extra.target; got {target!r}"
            )
        module, obj = _import_target(target)
        source = _source_file(module)
        try:
            unchanged = _sha256(source) == _sha256(path)
        except OSError as exc:
            raise ArtifactError(f"cannot read the source of {target!r}: {exc}") from exc
        if not unchanged:
            raise ArtifactError(
                f"module source changed since registration ({source}); register it again"
            )
        if inspect.isclass(obj):
            try:
                model = obj()
            except Exception as exc:  # user code: whatever it raises is a refusal to load
                raise ArtifactError(
                    f"{target} could not be created without arguments: {type(exc).__name__}: {exc}"
                ) from exc
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            model = _FunctionModel(obj)
        else:
            model = obj
        return EstimatorAdapter(model, self.name, options.classes)
