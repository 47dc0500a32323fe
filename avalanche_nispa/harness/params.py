"""Typed settings: the shared backbone, the training budget, a strategy's hyperparameters.

Every value a run depends on is a field of a frozen dataclass, so that a
mistyped key or a value of the wrong type is refused before any data loads.
Runs still store (and fingerprint) their settings as one flat dict,
:meth:`Hyperparameters.as_dict`, exactly the dict the harness stored before it
was typed: a field marked :func:`omitted_when_none` is left out of the dict
while it is None, and values are checked, never converted (``--set
si.si_lambda=1`` stays the int 1, as in the stored runs' fingerprints).
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional, TypeVar

__all__ = [
    "Backbone",
    "Hyperparameters",
    "NoHyperparameters",
    "Training",
    "check_value",
    "omitted_when_none",
]

_OMIT = "omit_when_none"
H = TypeVar("H", bound="Hyperparameters")


def omitted_when_none(default: Any = None) -> Any:
    """A dataclass field left out of :meth:`Hyperparameters.as_dict` while it is None."""
    return field(default=default, metadata={_OMIT: True})


def _accepts(kind: Any, value: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        return any(_accepts(option, value) for option in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value)
    return kind is Any or isinstance(value, kind)


def check_value(owner: type, name: str, value: Any) -> Any:
    """``value`` if it fits the type of ``owner``'s field ``name``; else a clear error."""
    kind = typing.get_type_hints(owner)[name]
    if not _accepts(kind, value):
        shown = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
        raise TypeError(f"{owner.__name__}.{name} must be {shown}, got {value!r}")
    return value


@dataclass(frozen=True)
class Hyperparameters:
    """Base of every typed settings class; subclasses only declare fields."""

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            check_value(type(self), item.name, getattr(self, item.name))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The field names, in declaration order."""
        return tuple(item.name for item in dataclasses.fields(cls))

    @classmethod
    def check(cls, key: str, value: Any) -> Any:
        """``value`` for field ``key``, type-checked (for ``--set`` / ``--grid``)."""
        if key not in cls.keys():
            raise KeyError(f"{cls.__name__} has no setting {key!r}; known: {', '.join(cls.keys())}")
        return check_value(cls, key, value)

    def as_dict(self) -> dict[str, Any]:
        """The flat dict runs store and fingerprint."""
        return {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if not (item.metadata.get(_OMIT) and getattr(self, item.name) is None)
        }

    @classmethod
    def from_dict(cls: type[H], values: Mapping[str, Any]) -> H:
        """The fields of ``cls`` found in ``values`` (a run's flat dict); others ignored."""
        return cls(**{key: values[key] for key in cls.keys() if key in values})

    def updated(self: H, **changes: Any) -> H:
        """A copy with ``changes`` applied (unknown keys and wrong types refused)."""
        for key, value in changes.items():
            self.check(key, value)
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class NoHyperparameters(Hyperparameters):
    """The settings of a strategy with none beyond the shared training budget."""


@dataclass(frozen=True)
class Training(Hyperparameters):
    """What every strategy of a benchmark shares: optimizer and training budget.

    ``momentum`` (SGD only) and ``hidden_sizes`` (this strategy's hidden widths
    instead of the benchmark backbone's, e.g. a narrower dense MLP of a matched
    parameter budget, :mod:`.budgets`) are stored only when set.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    eval_batch_size: int = 1000
    epochs: Optional[int] = 5
    momentum: Optional[float] = omitted_when_none()
    hidden_sizes: Optional[tuple[int, ...]] = omitted_when_none()


def _check_mlp(backbone: "Backbone") -> None:
    if not backbone.hidden_sizes:
        raise ValueError("an MLP backbone needs at least one hidden size")


#: Backbone kinds, each with the check of its own fields.
_BACKBONE_CHECKS = {"mlp": _check_mlp, "cnn": lambda backbone: None}


@dataclass(frozen=True)
class Backbone:
    """The network every strategy of a benchmark trains.

    Attributes:
        kind: ``"mlp"`` (flattened input, ReLU hidden layers) or ``"cnn"`` (the
            NISPA paper's CIFAR network: conv 64, 64, max-pool, conv 128, 128,
            max-pool, a fully connected layer of ``fc_size``, ReLU throughout).
        input_shape: shape of one input, channels first.
        hidden_sizes: widths of the MLP's hidden layers.
        fc_size: width of the CNN's fully connected layer.
    """

    kinds: ClassVar[tuple[str, ...]] = tuple(_BACKBONE_CHECKS)

    kind: str
    input_shape: tuple[int, ...]
    hidden_sizes: tuple[int, ...] = ()
    fc_size: int = 1024

    def __post_init__(self) -> None:
        check = _BACKBONE_CHECKS.get(self.kind)
        if check is None:
            raise ValueError(f"backbone kind must be 'mlp' or 'cnn', got {self.kind!r}")
        check(self)
