"""What ``--tune`` tries on each benchmark: three configurations for every strategy.

The budget is the same for every strategy (:mod:`.tuning` refuses otherwise):
one setting and three values, the configured one (``default``) and one on
each side of it (``x0.1``: a tenth of the configured value, resolved per
benchmark). The setting is the strategy's own strength where it has one
(EWC's and SI's λ, MAS's λ, LwF's α, DER's α, NISPA-Replay's replay weight λ),
else the learning rate, the one knob every strategy has. NISPA's grid is its
learning rate too: its stop rule, not an epoch budget, decides how long it
trains. The memory size is never tuned: it is the comparison's fixed budget.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["TUNE_GRIDS"]

Grid = Mapping[str, Mapping[str, str]]

#: A learning rate of 1e-3 and its neighbours at about one third and three times.
_ADAM_LR = {"lr": "default,3e-4,3e-3"}

_TASK_INCREMENTAL: Grid = {
    "nispa": {"lr": "default,0.003,0.001"},  # spec lr 0.01 and the two below it
    "nispa_original": {"lr": "default,0.003,0.001"},
    "nispa_fast": {"lr": "default,0.003,0.001"},
    "naive": _ADAM_LR,
    "ewc": {"ewc_lambda": "default,x0.1,x10"},
    "si": {"si_lambda": "default,x0.1,x10"},
    "mas": {"lambda_reg": "default,x0.1,x10"},
    "lwf": {"alpha": "default,x0.5,x2"},
    "replay": _ADAM_LR,
    "agem": _ADAM_LR,
    "gem": {"memory_strength": "default,0.1,1.0"},
    "packnet": _ADAM_LR,
    "joint": _ADAM_LR,
}

_CLASS_INCREMENTAL: Grid = {
    "nispa_replay": {"replay_weight": "default,2,10"},  # replay spec λ = 5
    "naive": _ADAM_LR,
    "ewc": {"ewc_lambda": "default,1e4,1e2"},
    "lwf": {"alpha": "default,0.5,4"},
    "replay": {"lr": "default,0.05,0.2"},  # replay spec §6: SGD lr 0.1
    "er_ace": _ADAM_LR,
    "der": {"alpha": "default,0.3,1.0"},  # Avalanche default α 0.1 (β 0.5 kept)
    "gdumb": _ADAM_LR,
    "icarl": _ADAM_LR,
    "agem": _ADAM_LR,
    "cumulative": _ADAM_LR,
    "joint": _ADAM_LR,
}

#: By benchmark name; a benchmark not listed has no grids (``--grid`` gives them).
TUNE_GRIDS: dict[str, Grid] = {
    **{name: _TASK_INCREMENTAL for name in (
        "split_digits", "split_mnist", "split_fmnist", "permuted_mnist", "permuted_mnist_10k",
        "permuted_mnist_20x5k")},
    **{name: _CLASS_INCREMENTAL for name in ("split_mnist_cil", "split_fmnist_cil")},
    # the digits' Replay keeps the shared Adam lr 1e-3 (no replay spec settings there)
    "split_digits_cil": {**_CLASS_INCREMENTAL, "replay": _ADAM_LR},
}
