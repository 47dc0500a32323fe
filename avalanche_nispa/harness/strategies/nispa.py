"""NISPA (this library's strategy), ``nispa_original`` (the official code's choices) and
``nispa_fast`` (the ``fast`` preset's schedule).

NISPA trains a sparse network (:class:`~avalanche_nispa.models.NISPAMLP` or
:class:`~avalanche_nispa.models.NISPACNN` at ``density``) in phases until its stop
rule fires, so it has no epoch budget (``epochs`` is None). Its hyperparameters are
the paper's (spec §4, official scripts), read from ``NISPAConfig.preset("paper")``;
the model takes ``density``, ``num_classes`` and ``dense_first_conv``, the strategy
the others as one :class:`~avalanche_nispa.NISPAConfig`:
``NISPA(model=..., optimizer=..., config=NISPAConfig(...))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from torch import nn

from avalanche_nispa import NISPA, NISPAConfig, count_parameters, unit_state_summary
from avalanche_nispa.models import NISPACNN, NISPAMLP

from ..entry import BuiltStrategy, StrategyEntry, make_optimizer
from ..params import Backbone, Hyperparameters, Training, omitted_when_none

__all__ = ["ENTRIES", "NISPAEntry", "NISPAParams"]

_PAPER = NISPAConfig.preset("paper")


@dataclass(frozen=True)
class NISPAParams(Hyperparameters):
    epochs: Optional[int] = None  # NISPA trains in phases until its stop rule fires
    density: float = 0.2  # spec §3: EF-MNIST MLP at 20 % (prune_perc 80)
    lr: float = 0.01  # spec §4: Adam lr 0.01 (EF-MNIST script)
    batch_size: int = 512  # spec §4
    eval_batch_size: int = 1024  # spec §4: test batch = 2 x train batch
    phase_epochs: int = _PAPER.phase_epochs  # spec §4: e = 5
    accuracy_drop_threshold: float = _PAPER.accuracy_drop_threshold  # spec §4: a_f = 0.75
    tau_schedule: str = _PAPER.tau_schedule  # spec §4
    tau_param: float = _PAPER.tau_param  # spec §4: k = 30
    max_phases: Optional[int] = _PAPER.max_phases  # official code: stop only on a_f or tau <= 5 % (<= 26 phases)
    validation_fraction: float = _PAPER.validation_fraction  # spec §4: 10 % of each task's train split
    growth_init: str = _PAPER.growth_init  # spec §4: --grow_init normal
    rewire_algo: str = _PAPER.rewire_algo  # spec §4: --rewire_algo full_random
    mode: str = _PAPER.mode  # our default; "original" reproduces the official code
    num_classes: Optional[int] = None  # let NISPAMLP choose its output layout
    cache_data: bool = True  # the builders' transforms are deterministic (spec §4: no augmentation)
    dense_first_conv: Optional[bool] = omitted_when_none()  # CNN only (spec §3: skip_first)
    # the official single task-masked output layer (issue 14 §5), sized to the benchmark
    shared_head: Optional[bool] = omitted_when_none()
    # each head drawn over its own class count ("head") instead of the output width
    head_fan_out: Optional[str] = omitted_when_none()
    # beyond the paper (issue 15), NISPAConfig's defaults while None (stored only when set)
    growth_rule: Optional[str] = omitted_when_none()  # "random" (paper), "rigl", "ch3l3", ...
    growth_gradient_batches: Optional[int] = omitted_when_none()  # gradient rules only
    unfreeze_below: Optional[float] = omitted_when_none()  # selective unfreezing off while None
    unfreeze_bound: Optional[float] = omitted_when_none()  # share of a layer released per experience
    unfreeze_importance: Optional[str] = omitted_when_none()  # "activation", "downstream", "random"
    unfreeze_outgoing: Optional[str] = omitted_when_none()  # "drop" or "keep"
    neurogenesis_below: Optional[float] = omitted_when_none()  # neurogenesis off while None
    neurogenesis_bound: Optional[float] = omitted_when_none()  # share of a layer added per experience


#: NISPA's settings that go to the model rather than to the strategy.
_MODEL_KEYS = ("density", "num_classes", "dense_first_conv", "shared_head", "head_fan_out")


def _mlp(backbone: Backbone, model_kwargs: dict[str, Any]) -> nn.Module:
    model_kwargs.pop("dense_first_conv", None)
    return NISPAMLP(
        input_size=math.prod(backbone.input_shape),
        hidden_sizes=tuple(backbone.hidden_sizes),
        **model_kwargs,
    )


def _cnn(backbone: Backbone, model_kwargs: dict[str, Any]) -> nn.Module:
    return NISPACNN(
        in_channels=backbone.input_shape[0], input_size=backbone.input_shape[1], **model_kwargs
    )


#: The sparse model of each backbone kind.
_MODELS = {"mlp": _mlp, "cnn": _cnn}


class NISPAEntry(StrategyEntry):
    name = "nispa"
    order = 0
    demo = True
    density_sweep = True
    plot_marker = "*"
    defaults = NISPAParams()
    #: The strategy and its configuration class (NISPA-Replay's entry changes both).
    strategy_class: type = NISPA
    config_class: type = NISPAConfig

    def model_options(self, n_classes: int) -> dict[str, Any]:
        """Model keyword arguments that do not come from the hyperparameters."""
        return {}

    def build(
        self, backbone: Backbone, n_classes: int, hp: Mapping[str, Any], n_experiences: int,
        kwargs: dict[str, Any], *, scenario: str = "task",
    ) -> BuiltStrategy:
        params = type(self.defaults).from_dict(hp).as_dict()
        model_kwargs = {key: params.pop(key) for key in _MODEL_KEYS if key in params}
        model_kwargs.update(self.model_options(n_classes))
        if model_kwargs.get("shared_head") and model_kwargs.get("num_classes") is None:
            model_kwargs["num_classes"] = n_classes  # one output unit per class of the stream
        for key in Training.keys():
            params.pop(key, None)  # the training budget is in kwargs and the optimizer
        model = _MODELS[backbone.kind](backbone, model_kwargs)
        kwargs.pop("train_epochs", None)  # NISPA trains in phases until its stop rule fires
        strategy = self.strategy_class(
            model=model,
            optimizer=make_optimizer(Training.from_dict(hp), model.parameters()),
            config=self.config_class(**params),
            **kwargs,
        )
        return BuiltStrategy(self, strategy, model, None)

    def count_parameters(self, model: nn.Module) -> dict[str, int]:
        counts = count_parameters(model)
        return {key: int(counts[key]) for key in ("active", "frozen", "total")}

    def epochs_trained(self, built: BuiltStrategy, n_trained: int) -> list[int]:
        history = getattr(built.strategy, "phase_history", None) or []
        return [int(entry["epochs"]) for entry in history]

    def experience_details(self, built: BuiltStrategy) -> Any:
        return list(unit_state_summary(built.model))

    def run_details(self, built: BuiltStrategy, per_experience: list[Any]) -> Any:
        details = {
            "phase_history": getattr(built.strategy, "phase_history", None),
            "unit_states": per_experience,
        }
        unfreezing = getattr(built.strategy, "unfreezing_plugin", None)
        if unfreezing is not None:  # selective unfreezing: units released per experience
            details["released_units"] = unfreezing.history
        neurogenesis = getattr(built.strategy, "neurogenesis_plugin", None)
        if neurogenesis is not None:  # neurogenesis: units added per experience, widths
            details["grown_units"] = neurogenesis.history
        return details


class _NISPAVariant(NISPAEntry):
    """The benchmark's NISPA settings with :meth:`changes`, then the benchmark's
    overrides of the variant itself."""

    demo = False
    density_sweep = False

    def changes(self, n_classes: int) -> dict[str, Any]:
        raise NotImplementedError

    def params_for(
        self, overrides: Mapping[str, Mapping[str, Any]], n_classes: int
    ) -> Hyperparameters:
        nispa = NISPAEntry().params_for(overrides, n_classes)
        return nispa.updated(**self.changes(n_classes)).updated(**overrides.get(self.name, {}))


class NISPAOriginalEntry(_NISPAVariant):
    """The benchmark's NISPA settings with the official code's choices."""

    name = "nispa_original"
    order = 10

    def changes(self, n_classes: int) -> dict[str, Any]:
        return {"mode": "original", "num_classes": n_classes}


class NISPAFastEntry(_NISPAVariant):
    """The benchmark's NISPA settings under the ``fast`` preset's schedule
    (``NISPAConfig.preset("fast")``: shorter phases, a steeper τ)."""

    name = "nispa_fast"
    order = 12

    def changes(self, n_classes: int) -> dict[str, Any]:
        fast = NISPAConfig.preset("fast")
        return {key: getattr(fast, key)
                for key in ("phase_epochs", "tau_schedule", "tau_param", "max_phases")}


ENTRIES = (NISPAEntry(), NISPAOriginalEntry(), NISPAFastEntry())
