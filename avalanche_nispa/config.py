"""Every NISPA hyperparameter in one frozen, typed object, validated once.

``NISPAConfig()`` holds the paper's settings (spec §4); :data:`PRESETS` names the
variants a user picks from (``NISPAConfig.preset("original")``), and
``config.replace(phase_epochs=2)`` derives one. The strategy, the comparison harness
and the checkpoint's settings check all read the same object, so a setting is
checked, defaulted and compared in this module only.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Literal, Optional, Union

from .algorithm.growth import growth_rule_names, registered_rules
from .algorithm.rewiring import GrowthInit, RewireAlgorithm, check_rewiring_choices
from .algorithm.unfreezing import (UNFREEZE_IMPORTANCES, UNFREEZE_OUTGOING, UnfreezeImportance,
                                  UnfreezeOutgoing)
from .algorithm.schedules import (
    ScheduleName,
    TauSchedule,
    fit_schedule_to_phases,
    make_tau_schedule,
    validate_tau_schedule,
)

__all__ = ["NISPAConfig", "Mode", "SelectionData", "LRSchedule", "PRESETS",
           "TAU_VALUES_COMPARED"]

Mode = Literal["clean", "original"]
SelectionData = Literal["train", "validation"]
LRSchedule = Literal["experience", "phase"]

TAU_VALUES_COMPARED = 32
"""How many τ_t values stand for a schedule when two configurations are compared
(a user callable cannot be compared otherwise)."""


@dataclass(frozen=True)
class NISPAConfig:
    """NISPA's hyperparameters (paper symbol in brackets, official default unless noted).

    :param phase_epochs: [e] epochs per phase (5).
    :param accuracy_drop_threshold: [a_f] percentage points of validation accuracy a
        phase may fall below the task's best before the task stops (0.75 for EF-MNIST
        and CIFAR-10, 2.5 for CIFAR-100).
    :param tau_schedule: ``"cosine"`` (paper), ``"linear"``, ``"exp_decay"`` or a
        callable ``t -> τ``.
    :param tau_param: [k] the schedule's parameter (30).
    :param min_tau: stop once τ_t is at most this (5 %).
    :param max_phases: optional cap on phases per experience (≥ 2); the last phase's
        model is kept when it is reached.
    :param schedule_fits_max_phases: with ``max_phases`` set, compress the τ schedule
        so that it reaches its floor (the last τ above ``min_tau``) at phase
        ``max_phases`` (:func:`~avalanche_nispa.algorithm.schedules.fit_schedule_to_phases`).
        Default ``True``: a capped task otherwise promotes the selection made at τ near
        1 and leaves later tasks no capacity. ``False`` keeps the uncompressed schedule;
        without ``max_phases`` (the paper setting) it has no effect.
    :param validation_fraction: share of each experience's training data held out to
        pick the best epoch and to stop (10 %).
    :param validation_seed: seed of that split; the official code uses the same split
        whatever the experiment seed (continuum's fixed seed 1).
    :param growth_init: initial value of grown weights (see
        :class:`~avalanche_nispa.plugins.RewiringPlugin`).
    :param rewire_algo: which connections may grow (see
        :class:`~avalanche_nispa.plugins.RewiringPlugin`).
    :param reinit_after_experience: redraw non-frozen weights at the end of each
        experience (official ``--reinit 1``).
    :param mode: ``"original"`` reproduces the official code's choices: non-task logits
        multiplied by 0 (they stay in the softmax and can win the argmax), dead
        candidates promoted anyway, the conv→linear index bug of ``fix_no_outgoing``.
        ``"clean"`` (default): non-task logits at −∞ (numerically −1e9), dead candidates
        returned to the plastic pool, the flatten boundary handled per block.
    :param selection_data: data whose activations rank units: ``"train"`` (official:
        the experience's training split, one extra forward pass per phase; the default
        of the original mode) or ``"validation"`` (the held-out split, measured during
        the best epoch's validation pass at no extra cost; the default of the clean
        mode). ``None``: the mode's choice.
    :param demote_dead_candidates: override the mode's choice (``None``: clean mode
        demotes, original mode does not).
    :param cache_data: hold each experience's training split as tensors and draw
        minibatches from them, as the official code does (about 2.5x faster epochs on
        the paper MLP). Only for deterministic training transforms: a random
        augmentation would be drawn once and frozen (refused).
    :param min_phases: the accuracy-drop stop may fire only after phase ``t > min_phases``
        (TIL: 2, fixed in the official code; NISPA-Replay's ``--min_phases``).
    :param keep_best_epoch: keep each phase's best epoch (TIL) or its last one
        (NISPA-Replay, replay spec §2.2: no best-epoch copy).
    :param freeze_output_layer: freeze the connections into stable output units at the
        end of an experience (TIL's heads); NISPA-Replay's shared output layer is never
        frozen (replay spec §2.6).
    :param lr_schedule: what an Avalanche ``LRSchedulerPlugin`` spans: ``"experience"``
        (default, Avalanche's behaviour: the schedule runs on across the phases) or
        ``"phase"`` (it restarts, with the learning rates, at every phase; see
        :mod:`avalanche_nispa.plugins.lr_phase`). No effect without a scheduler.

    Beyond the paper (off by default, so the paper's method is unchanged):

    :param growth_rule: which absent connections grow (:mod:`avalanche_nispa.algorithm.growth`):
        ``"random"`` (default) is the random rule named by ``rewire_algo``, the paper's;
        ``"rigl"`` the largest dense-gradient magnitudes (Evci et al. 2020);
        ``"ch3l3"`` the Cannistraci-Hebb CH3-L3 link predictor on the layer's
        connectivity; any registered rule by name.
    :param growth_gradient_batches: minibatches of the experience's training split (in
        order, of the training batch size) whose loss gradient scores the absent
        connections of a gradient rule (``"rigl"``), measured at each rewiring. No
        effect with other rules.
    :param unfreeze_below: selective unfreezing. ``None`` (default): off, stable
        units stay stable for good (the paper). A fraction in (0, 1]: at the start of
        an experience, a hidden layer whose plastic units are fewer than this fraction
        of its units releases its least important stable units back to plastic, as
        many as bring it back to the fraction, at most ``unfreeze_bound`` of its units
        (:class:`~avalanche_nispa.plugins.SelectiveUnfreezingPlugin`). Their incoming
        connections and biases become trainable. Old tasks are then no longer
        protected exactly: forgetting can be above zero.
    :param unfreeze_bound: at most this fraction (in [0, 1]) of a layer's units is
        released per experience (default 0.05).
    :param unfreeze_importance: which stable units are the least important:
        ``"activation"`` (default: a unit's largest share of its layer's activation
        over the experiences it was stable in, measured at the end of each experience
        on its training split, the score NISPA selects by), ``"downstream"`` (a unit's
        largest share of the input of a stable unit it feeds, i.e. what releasing it
        removes from old tasks) or ``"random"`` (a control).
    :param unfreeze_outgoing: a released unit's connections into stable units:
        ``"drop"`` (default) removes them at the release (old tasks lose the unit's
        contribution once, then are protected exactly again) and ``"keep"`` leaves them
        frozen (every other frozen value stays bit-identical, but old tasks see the unit
        change under every later task).
    :param neurogenesis_below: neurogenesis. ``None`` (default): off (the paper). A
        fraction in (0, 1): at the start of an experience, a hidden layer whose plastic
        units are fewer than this fraction of its units grows new plastic units, as many
        as bring it back to the fraction, at most ``neurogenesis_bound`` of its units
        (:class:`~avalanche_nispa.plugins.NeurogenesisPlugin`). They read every unit of
        the layer before and feed only plastic units: forgetting stays exactly zero,
        the network and its active parameters grow.
    :param neurogenesis_bound: at most this fraction (in (0, 1]) of a layer's current
        units is added per experience (default 0.05).
    """

    phase_epochs: int = 5
    accuracy_drop_threshold: float = 0.75
    tau_schedule: Union[ScheduleName, TauSchedule] = "cosine"
    tau_param: float = 30.0
    min_tau: float = 0.05
    max_phases: Optional[int] = None
    schedule_fits_max_phases: bool = True
    validation_fraction: float = 0.1
    validation_seed: int = 1
    growth_init: GrowthInit = "normal"
    rewire_algo: RewireAlgorithm = "full_random"
    reinit_after_experience: bool = True
    mode: Mode = "clean"
    selection_data: Optional[SelectionData] = None
    demote_dead_candidates: Optional[bool] = None
    cache_data: bool = False
    lr_schedule: LRSchedule = "experience"
    min_phases: int = 2
    keep_best_epoch: bool = True
    freeze_output_layer: bool = True
    growth_rule: str = "random"
    growth_gradient_batches: int = 4
    unfreeze_below: Optional[float] = None
    unfreeze_bound: float = 0.05
    unfreeze_importance: UnfreezeImportance = "activation"
    unfreeze_outgoing: UnfreezeOutgoing = "drop"
    neurogenesis_below: Optional[float] = None
    neurogenesis_bound: float = 0.05

    def __post_init__(self) -> None:
        _validate(self)

    # ---------------------------------------------------------------- derived
    @property
    def original(self) -> bool:
        """The official code's choices are in force."""
        return self.mode == "original"

    @property
    def unfitted_schedule(self) -> TauSchedule:
        """τ(t) as named by ``tau_schedule`` and ``tau_param``, before any fitting to
        ``max_phases``."""
        return make_tau_schedule(self.tau_schedule, self.tau_param)

    @property
    def schedule(self) -> TauSchedule:
        """τ(t), the activation-fraction schedule (fitted to ``max_phases`` when
        ``schedule_fits_max_phases``)."""
        schedule = self.unfitted_schedule
        if self.max_phases is not None and self.schedule_fits_max_phases:
            schedule = fit_schedule_to_phases(schedule, self.min_tau, self.max_phases)
        return schedule

    @property
    def resolved_selection_data(self) -> SelectionData:
        if self.selection_data is not None:
            return self.selection_data
        return "train" if self.original else "validation"

    @property
    def resolved_growth_rule(self) -> str:
        """The registered growth rule in force (``"random"`` names ``rewire_algo``)."""
        return self.rewire_algo if self.growth_rule == "random" else self.growth_rule

    @property
    def unfreezing(self) -> bool:
        """Selective unfreezing is on."""
        return self.unfreeze_below is not None

    @property
    def neurogenesis(self) -> bool:
        """Neurogenesis is on."""
        return self.neurogenesis_below is not None

    @property
    def resolved_demote_dead_candidates(self) -> bool:
        if self.demote_dead_candidates is not None:
            return bool(self.demote_dead_candidates)
        return not self.original

    # ------------------------------------------------------------------ build
    def replace(self, **changes: Any) -> "NISPAConfig":
        """A copy with ``changes`` applied (and validated)."""
        unknown = sorted(set(changes) - set(field_names(type(self))))
        if unknown:
            raise TypeError(_unknown_message(unknown, type(self)))
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> "NISPAConfig":
        """The named preset of :data:`PRESETS`, with optional changes."""
        if name not in PRESETS:
            raise ValueError(f"unknown NISPA preset {name!r}; known: {', '.join(PRESETS)}")
        return PRESETS[name].replace(**changes)

    def comparable(self) -> Dict[str, Any]:
        """Plain values that determine a run: what a checkpoint stores and compares
        (a schedule stands as its first τ values before fitting to ``max_phases``,
        which is compared with ``schedule_fits_max_phases`` on its own)."""
        values = {name: getattr(self, name) for name in field_names(type(self))}
        values.pop("tau_schedule")
        values.pop("tau_param")
        values["tau_values"] = tau_values(self.unfitted_schedule)
        values["selection_data"] = self.resolved_selection_data
        values["demote_dead_candidates"] = self.resolved_demote_dead_candidates
        return values


def field_names(cls: type = None) -> tuple:
    return tuple(f.name for f in dataclasses.fields(cls or NISPAConfig))


def tau_values(schedule: TauSchedule, count: int = TAU_VALUES_COMPARED) -> list:
    values = []
    for t in range(1, count + 1):
        try:
            values.append(float(schedule(t)))
        except Exception:  # noqa: BLE001 - a user schedule defined for fewer phases
            break
    return values


def _unknown_message(unknown, cls: type = None) -> str:
    cls = cls or NISPAConfig
    return (f"unknown NISPA setting(s) {', '.join(unknown)}; {cls.__name__} has "
            f"{', '.join(field_names(cls))}")


def _validate(config: NISPAConfig) -> None:
    phase_epochs = config.phase_epochs
    if not isinstance(phase_epochs, int) or isinstance(phase_epochs, bool) or phase_epochs < 1:
        raise ValueError(f"phase_epochs (e) must be a positive integer, got {phase_epochs!r}")
    a_f = config.accuracy_drop_threshold
    if not isinstance(a_f, (int, float)) or not math.isfinite(a_f) or a_f < 0:
        raise ValueError(
            "accuracy_drop_threshold (a_f, in percentage points) must be a finite number "
            f">= 0, got {a_f!r}"
        )
    max_phases = config.max_phases
    if max_phases is not None and (not isinstance(max_phases, int) or max_phases < 2):
        raise ValueError(
            f"max_phases must be None or an integer >= 2 (the kept model must have been "
            f"trained after one selection), got {max_phases!r}"
        )
    if not isinstance(config.schedule_fits_max_phases, bool):
        raise ValueError("schedule_fits_max_phases must be True or False, got "
                         f"{config.schedule_fits_max_phases!r}")
    if not 0.0 < config.validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction must be in (0, 1), got {config.validation_fraction}")
    seed = config.validation_seed
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"validation_seed must be an integer in [0, 2**32), got {seed!r}")
    check_rewiring_choices(config.rewire_algo, config.growth_init)
    if config.mode not in ("clean", "original"):
        raise ValueError(f"mode must be 'clean' or 'original', got {config.mode!r}")
    if config.selection_data not in (None, "train", "validation"):
        raise ValueError(
            f"selection_data must be 'train' or 'validation', got {config.selection_data!r}")
    min_phases = config.min_phases
    if not isinstance(min_phases, int) or isinstance(min_phases, bool) or min_phases < 2:
        raise ValueError(
            f"min_phases must be an integer >= 2 (a stop at phase 2 would promote a "
            f"selection no phase trained with), got {min_phases!r}")
    if config.lr_schedule not in ("experience", "phase"):
        raise ValueError(
            f"lr_schedule must be 'experience' or 'phase', got {config.lr_schedule!r}")
    validate_tau_schedule(config.unfitted_schedule, config.min_tau)
    validate_tau_schedule(config.schedule, config.min_tau)
    _validate_growth(config)
    _validate_unfreezing(config)
    _validate_neurogenesis(config)


def _validate_growth(config: NISPAConfig) -> None:
    rule = config.growth_rule
    if not isinstance(rule, str) or (rule != "random" and rule not in registered_rules()):
        raise ValueError(f"unknown growth_rule {rule!r}; known: "
                         f"{', '.join(('random',) + growth_rule_names())}")
    if rule != "random" and config.rewire_algo != "full_random" and rule != config.rewire_algo:
        raise ValueError(
            f"rewire_algo={config.rewire_algo!r} chooses the random rule of "
            f"growth_rule='random', but growth_rule is {rule!r}: give one of the two")
    batches = config.growth_gradient_batches
    if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
        raise ValueError(f"growth_gradient_batches must be a positive integer, got {batches!r}")


def _is_fraction(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _validate_unfreezing(config: NISPAConfig) -> None:
    below = config.unfreeze_below
    if below is not None and (not _is_fraction(below) or below == 0):
        raise ValueError(
            f"unfreeze_below must be None (selective unfreezing off) or a fraction of a "
            f"layer's units in (0, 1], got {below!r}")
    if not _is_fraction(config.unfreeze_bound):
        raise ValueError(
            "unfreeze_bound (the share of a layer's units released per experience) must be "
            f"in [0, 1], got {config.unfreeze_bound!r}")
    if config.unfreeze_importance not in UNFREEZE_IMPORTANCES:
        raise ValueError(f"unfreeze_importance must be one of {UNFREEZE_IMPORTANCES}, got "
                         f"{config.unfreeze_importance!r}")
    if config.unfreeze_outgoing not in UNFREEZE_OUTGOING:
        raise ValueError(f"unfreeze_outgoing must be one of {UNFREEZE_OUTGOING}, got "
                         f"{config.unfreeze_outgoing!r}")
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    changed = [name for name in ("unfreeze_bound", "unfreeze_importance", "unfreeze_outgoing")
               if getattr(config, name) != defaults[name]]
    if below is None and changed:
        raise ValueError(
            f"{', '.join(changed)} only act(s) with selective unfreezing on: set "
            "unfreeze_below (e.g. 0.1), or leave them at their defaults")


def _validate_neurogenesis(config: NISPAConfig) -> None:
    below, bound = config.neurogenesis_below, config.neurogenesis_bound
    if below is not None and (not _is_fraction(below) or below in (0, 1)):
        raise ValueError(f"neurogenesis_below must be None (neurogenesis off) or a fraction "
                         f"of a layer's units in (0, 1), got {below!r}")
    if not _is_fraction(bound) or bound == 0:
        raise ValueError("neurogenesis_bound (the share of a layer's units added per "
                         f"experience) must be in (0, 1], got {bound!r}")
    if below is None and bound != 0.05:
        raise ValueError("neurogenesis_bound only acts with neurogenesis on: set "
                         "neurogenesis_below (e.g. 0.1), or leave it at its default")


def config_from_kwargs(config: Optional[NISPAConfig], kwargs: Dict[str, Any],
                       cls: type = None) -> NISPAConfig:
    """The configuration a strategy is built with: ``config`` (default: ``cls()``, the
    paper's) with any hyperparameter given as a keyword argument applied on top.

    Keyword names that are not settings of ``cls`` stay in ``kwargs`` (they belong to
    Avalanche's template); the others are removed from it.
    """
    cls = cls or NISPAConfig
    names = set(field_names(cls))
    given = {key: kwargs.pop(key) for key in list(kwargs) if key in names}
    base = config if config is not None else cls()
    if not isinstance(base, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(base).__name__}")
    return base.replace(**given) if given else base


PRESETS: Dict[str, NISPAConfig] = {
    # spec §4: e = 5, a_f = 0.75, cosine k = 30, min τ 5 %, 10 % validation; clean mode
    "paper": NISPAConfig(),
    # the official code's choices (×0 logits, dead candidates kept, the flatten bug,
    # selection on the training split)
    "original": NISPAConfig(mode="original"),
    # a sixth of the paper's epochs: phases of e = 2 epochs under cosine k = 10, so τ
    # reaches its 5 % floor at phase 9 (≤ 18 epochs per task against the paper's ≤ 130);
    # measured against the paper schedule and PackNet (benchmarks/results/split_*_fast/):
    # 1.3x PackNet's wall time; -0.06 pp on Split MNIST, -0.20 pp on Split FMNIST
    "fast": NISPAConfig(phase_epochs=2, tau_param=10.0),
}
"""Named configurations."""
