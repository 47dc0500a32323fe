"""The activation-fraction schedules τ_t of NISPA (spec §2.2).

τ_t is the fraction of a layer's total activation that the candidate stable units must
cover after phase ``t`` (``t = 1, 2, ...``). It falls over the phases, so each phase
selects fewer candidates and frees more plastic capacity; a task stops at the latest
when τ_t drops to ``min_tau`` (5 % in the official code).
"""
from __future__ import annotations

import math
from typing import Callable, Literal, Optional, Union

__all__ = [
    "TauSchedule",
    "ScheduleName",
    "make_tau_schedule",
    "validate_tau_schedule",
    "first_floor_phase",
    "fit_schedule_to_phases",
]

FLOOR_SEARCH_PHASES = 10_000
"""How far :func:`first_floor_phase` looks for the phase where τ reaches ``min_tau``."""

ScheduleName = Literal["cosine", "linear", "exp_decay"]
TauSchedule = Callable[[int], float]


def _cosine(k: float) -> TauSchedule:
    return lambda t: 0.5 * (1.0 + math.cos(math.pi * t / k))


def _linear(k: float) -> TauSchedule:
    return lambda t: 1.0 - k * t


def _exp_decay(k: float) -> TauSchedule:
    return lambda t: (t + 1.0) ** (-k)


_SCHEDULES = {"cosine": _cosine, "linear": _linear, "exp_decay": _exp_decay}


def make_tau_schedule(name: Union[ScheduleName, TauSchedule], k: float) -> TauSchedule:
    """Return τ(t) for a named schedule with parameter ``k``, or a user callable as is.

    - ``"cosine"``: ``0.5 * (1 + cos(pi * t / k))`` (paper runs: k = 30);
    - ``"linear"``: ``1 - k * t``;
    - ``"exp_decay"``: ``(t + 1) ** -k``.
    """
    if callable(name):
        return name
    if name not in _SCHEDULES:
        raise ValueError(
            f"tau_schedule must be one of {sorted(_SCHEDULES)} or a callable t -> tau, "
            f"got {name!r}"
        )
    if not isinstance(k, (int, float)) or not math.isfinite(k) or k <= 0:
        raise ValueError(f"tau_param (k) must be a positive finite number, got {k!r}")
    return _SCHEDULES[name](float(k))


def validate_tau_schedule(schedule: TauSchedule, min_tau: float) -> None:
    """Reject a schedule that would stop a task before any selection could be kept.

    NISPA keeps the model of the phase before the one that triggered the stop, and that
    model must have been trained after at least one selection, so τ_1 and τ_2 must be
    above ``min_tau``, and τ must stay in [0, 1] and never increase.
    """
    if not 0.0 <= min_tau < 1.0:
        raise ValueError(f"min_tau must be in [0, 1), got {min_tau}")
    values = [schedule(t) for t in range(1, 4)]
    for t, tau in enumerate(values, start=1):
        if not 0.0 <= tau <= 1.0 and t <= 2:
            raise ValueError(
                f"the tau schedule gives tau_{t} = {tau:.4f}, outside [0, 1]; "
                "choose a smaller k (tau_param) or another schedule"
            )
    if values[0] <= min_tau or values[1] <= min_tau:
        raise ValueError(
            f"the tau schedule gives tau_1 = {values[0]:.4f}, tau_2 = {values[1]:.4f}: "
            f"a task would stop before its second phase (min_tau = {min_tau}); "
            "choose a schedule parameter k that keeps tau above min_tau for two phases "
            "(e.g. cosine with k = 30)"
        )
    if values[1] > values[0] + 1e-12:
        raise ValueError("the tau schedule must not increase from phase to phase")


def first_floor_phase(schedule: TauSchedule, min_tau: float,
                      limit: int = FLOOR_SEARCH_PHASES) -> Optional[int]:
    """The first phase ``t`` with ``τ_t <= min_tau`` (the phase whose stop rule fires
    when nothing else stops the task; 26 for cosine with k = 30), or ``None`` if the
    schedule stays above ``min_tau`` for ``limit`` phases."""
    for t in range(1, limit + 1):
        if schedule(t) <= min_tau:
            return t
    return None


def fit_schedule_to_phases(schedule: TauSchedule, min_tau: float, max_phases: int) -> TauSchedule:
    """``schedule`` compressed so that its last phase above ``min_tau`` falls on phase
    ``max_phases``.

    A cap on phases stops a task at phase ``M = max_phases`` and promotes the selection
    made after phase ``M - 1``. Under the uncompressed schedule that selection is made
    with τ near 1 (τ_2 = 98.9 % for cosine, k = 30), so almost every active unit turns
    stable and later tasks find no capacity left. The fitted schedule runs through the
    whole range instead: with ``T`` the first phase at ``min_tau`` (:func:`first_floor_phase`),

        τ'(t) = τ(1 + (t - 1) (T - 2) / (M - 1)),

    linearly interpolated between whole phases, so τ'(1) = τ(1) and τ'(M) = τ(T - 1), the
    smallest τ above ``min_tau`` (cosine, k = 30, M = 3: 99.7 %, 60.4 %, 6.7 %).

    A schedule that reaches ``min_tau`` by phase ``M + 1`` already fits and is returned
    as is. Raises ``ValueError`` when the schedule never reaches ``min_tau``.
    """
    if not isinstance(max_phases, int) or max_phases < 2:
        raise ValueError(f"max_phases must be an integer >= 2, got {max_phases!r}")
    floor = first_floor_phase(schedule, min_tau)
    if floor is None:
        raise ValueError(
            f"the tau schedule stays above min_tau = {min_tau} for {FLOOR_SEARCH_PHASES} "
            "phases, so it cannot be fitted to max_phases; set schedule_fits_max_phases="
            "False or choose a schedule that falls to min_tau"
        )
    last = floor - 1
    if last <= max_phases:
        return schedule
    scale = (last - 1) / (max_phases - 1)

    def fitted(t: int) -> float:
        position = 1.0 + (t - 1) * scale
        below = math.floor(position)
        share = position - below
        value = schedule(below)
        return value if share == 0.0 else (1.0 - share) * value + share * schedule(below + 1)

    return fitted
