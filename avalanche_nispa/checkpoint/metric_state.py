"""The state of Avalanche's metric objects as plain data, so that a resumed run's
forgetting, BWT and accuracy-matrix metrics continue where they stopped without
unpickling anything.

A metric is an object tree (``ExperienceForgetting`` → ``Forgetting`` → dicts of
floats; ``TaskAwareAccuracy`` → a ``defaultdict`` of ``Mean`` objects ...). It is
encoded attribute by attribute: plain values as they are, containers element by
element, and nested objects of Avalanche's own classes by class name and attributes.
A metric holding anything else (a callable, a foreign object) is not encoded; the
checkpoint then keeps its numeric history only, and says so on load.

Decoding writes the attributes into the freshly built metric objects of the strategy
being resumed, creating nested Avalanche objects by class without calling their
constructors; no code from the file runs.
"""
from __future__ import annotations

import importlib
from collections import defaultdict
from typing import Any, Dict, List, Optional

from torch import Tensor

from .plain import qualname

__all__ = ["encode_metrics", "decode_metrics", "MetricStateError"]

_SCALARS = (bool, int, float, str, type(None))
_MAX_DEPTH = 12


class MetricStateError(TypeError):
    """A metric holds state that plain data cannot express."""


def encode_metrics(metrics: List[Any]) -> Optional[List[Dict[str, Any]]]:
    """Every metric's state, or None when one of them cannot be encoded."""
    try:
        return [_encode_object(metric, 0) for metric in metrics]
    except MetricStateError:
        return None


def decode_metrics(metrics: List[Any], states: List[Dict[str, Any]]) -> None:
    """Write ``states`` (from :func:`encode_metrics`) into ``metrics``, in order.
    The caller has checked that the classes match."""
    for metric, state in zip(metrics, states):
        _decode_into(metric, state)


def _encode_object(obj: Any, depth: int) -> Dict[str, Any]:
    return {"object": qualname(obj),
            "attributes": {name: _encode(value, depth + 1) for name, value in vars(obj).items()}}


def _encode(value: Any, depth: int) -> Dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise MetricStateError("metric state nested too deeply")
    if isinstance(value, Tensor):
        return {"value": value.detach().cpu().clone()}
    if type(value) in _SCALARS:
        return {"value": value}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v, depth + 1) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, dict):
        if not all(type(k) in (int, str) for k in value):
            raise MetricStateError("metric state has a dict key that is not an int or a str")
        factory = getattr(value, "default_factory", None)
        return {"dict": [[k, _encode(v, depth + 1)] for k, v in value.items()],
                "default_factory": None if factory is None else _class_name(factory)}
    if hasattr(value, "__dict__") and _is_avalanche_class(type(value)):
        return _encode_object(value, depth)
    raise MetricStateError(f"metric state holds a {type(value).__name__}")


def _class_name(factory: Any) -> str:
    if not isinstance(factory, type) or not (_is_avalanche_class(factory) or factory in (
            int, float, list, dict)):
        raise MetricStateError("a defaultdict whose factory is not a plain or Avalanche class")
    return f"{factory.__module__}.{factory.__qualname__}"


def _is_avalanche_class(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "avalanche"


def _load_class(name: str) -> type:
    module, _, qual = name.rpartition(".")
    if module.split(".")[0] not in ("avalanche", "builtins"):
        raise ValueError(f"metric state names class {name}, which is not Avalanche's")
    cls: Any = importlib.import_module(module)
    for part in qual.split("."):
        cls = getattr(cls, part)
    return cls


def _decode_into(target: Any, state: Dict[str, Any]) -> None:
    for name, encoded in state["attributes"].items():
        setattr(target, name, _decode(encoded, getattr(target, name, None)))


def _decode(encoded: Dict[str, Any], current: Any) -> Any:
    if "value" in encoded:
        return encoded["value"]
    if "list" in encoded:
        items = [_decode(v, None) for v in encoded["list"]]
        return tuple(items) if encoded["tuple"] else items
    if "dict" in encoded:
        factory = encoded["default_factory"]
        result: Dict[Any, Any] = defaultdict(_load_class(factory)) if factory else {}
        for key, value in encoded["dict"]:
            result[key] = _decode(value, None)
        return result
    cls = _load_class(encoded["object"])
    if current is None or type(current) is not cls:
        current = cls.__new__(cls)
    _decode_into(current, encoded)
    return current
