"""One configuration per benchmark: backbone, training budget, per-benchmark overrides.

Every strategy of a benchmark trains the same backbone (dense and multi-head
for the baselines, sparse at its density for NISPA) on the same data. A
strategy's hyperparameters are, in this order of precedence: the command line
(``--set``, ``--grid``, ``--epochs``), the benchmark's typed overrides below,
the strategy's own defaults (the frozen dataclass in its file under
:mod:`avalanche_nispa.harness.strategies`), and the benchmark's common training
settings (:class:`~.params.Training`). An override is checked against the
strategy's dataclass when the benchmark is built (a mistyped key or a value of
the wrong type fails at import), and a strategy with no override here runs
with its defaults, so that a new baseline needs no line in this file.

Each value carries a comment saying where it comes from. "Issue 4" is this
project's issue, whose table reports the dense baselines tuned on this machine
(784-400-400-400 MLP, multi-head, Adam lr 1e-3, batch 128, 5 epochs per
experience, best λ of a small grid); "CLB" is Avalanche's
continual-learning-baselines repository; "spec" is ``nispa-spec.md`` (the
official NISPA scripts). "grid" (split_digits): best mean final accuracy over
seeds 100, 101, 102 (their own train/test splits; not the reported seeds) of λ
in {0.1, 1, 10, ..., 1e5}, e.g.
``--seeds 100,101,102 --strategies ewc --grid ewc.ewc_lambda=0.1,1,10,100,1e3,1e4,1e5``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from .benchmark_config import (
    STRATEGIES,
    TRAINING_KEYS,
    BenchmarkConfig,
    Overrides,
    make_benchmark as _benchmark,
)
from .grids import TUNE_GRIDS
from .params import Backbone, Training

__all__ = [
    "BENCHMARKS",
    "Backbone",
    "BenchmarkConfig",
    "STRATEGIES",
    "TRAINING_KEYS",
    "Training",
    "get_config",
]


# --- The MNIST family: the paper's MLP --------------------------------------
_MNIST_TRAINING = Training(
    optimizer="adam",  # issue 4: Adam for every dense baseline
    lr=1e-3,  # issue 4
    batch_size=128,  # issue 4
    eval_batch_size=1000,  # evaluation only; no effect on results
    epochs=5,  # issue 4: 5 epochs per experience (NISPA's e)
)

# The seed-0 grid on permuted_mnist_10k (results/permuted_mnist_10k_grid) found
# EWC λ = 1e3 (91.9 %) and MAS λ = 1 (84.0 %) better than the values below, and SI
# λ = 100 (82.5 %) better on seed 0 only; results/permuted_mnist_10k shows those
# rows over 3 seeds next to these, which stay the documented starting points.
_PERMUTED_OVERRIDES: Overrides = {
    "ewc": {"ewc_lambda": 1e4},  # untuned: middle of issue 4's grid
    "si": {"si_lambda": 10.0, "eps": 0.1},  # CLB permuted MNIST SI
    "lwf": {"temperature": 1.0},  # CLB permuted MNIST LwF: alpha 1, T 1
}


def _mnist_family(name: str, description: str, overrides: Overrides, **fields: Any) -> BenchmarkConfig:
    fields.setdefault("n_experiences", 5)
    fields.setdefault("n_classes", 10)
    return _benchmark(
        name=name,
        description=description,
        # spec §3: the paper's MLP 784-400-400-400
        backbone=Backbone("mlp", (1, 28, 28), hidden_sizes=(400, 400, 400)),
        training=_MNIST_TRAINING,
        overrides=overrides,
        **fields,
    )


# --- CIFAR: the paper's ConvNet ----------------------------------------------
_NISPA_CIFAR10 = {
    "density": 0.1,  # spec §3: ConvNet at 10 % (prune_perc 90), conv1 dense
    "lr": 0.002,  # spec §4: CIFAR10 script
    "batch_size": 128,  # spec §4
    "eval_batch_size": 256,  # spec §4: 2 x train batch
    "dense_first_conv": True,  # spec §3: skip_first=True
}
_NISPA_CIFAR100 = {
    **_NISPA_CIFAR10,
    "batch_size": 64,  # spec §4: CIFAR100 script
    "eval_batch_size": 128,  # spec §4: 2 x train batch
    "accuracy_drop_threshold": 2.5,  # spec §4: a_f = 2.5 on CIFAR100
}


def _cifar(name: str, description: str, n_experiences: int, n_classes: int) -> BenchmarkConfig:
    nispa = _NISPA_CIFAR10 if n_classes == 10 else _NISPA_CIFAR100
    training = Training(
        optimizer="adam",
        lr=1e-3,  # Adam default scale, as on the MNIST family; untuned here
        batch_size=nispa["batch_size"],  # same batch as NISPA (spec §4)
        eval_batch_size=256,
        epochs=5,  # NISPA's e; untuned (no CIFAR runs on this machine)
    )
    return _benchmark(
        name=name,
        description=description,
        n_experiences=n_experiences,
        n_classes=n_classes,
        # spec §3: the paper's ConvNet, fc 1024 for all strategies (the paper's
        # dense EWC/SI/MAS used fc 512; one backbone for all is fairer here)
        backbone=Backbone("cnn", (3, 32, 32), fc_size=1024),
        training=training,
        overrides={
            "ewc": {"ewc_lambda": 1e4},  # untuned: middle of issue 4's grid
            "si": {"si_lambda": 1e3},  # untuned: SI importances grow with the data
            "mas": {"lambda_reg": 1.0},  # untuned: Avalanche default
            "replay": {"mem_size": 1000},  # spec §6.2: replay buffer 1000 on CIFAR10
            "nispa": nispa,
        },
        notes=("baseline hyperparameters are untuned on CIFAR (no data on this machine)",),
    )


def _digits() -> BenchmarkConfig:
    # Chosen so that the default demo (Naive, EWC, SI, Replay, NISPA; 3 seeds)
    # runs in about a minute on 2 CPU cores; "grid" is explained above.
    return _benchmark(
        name="split_digits",
        description="Split 8x8 digits (scikit-learn, bundled): 5 tasks x 2 classes",
        n_experiences=5,
        n_classes=10,
        backbone=Backbone("mlp", (1, 8, 8), hidden_sizes=(100, 100)),
        training=Training(
            optimizer="adam",
            lr=1e-3,  # as on the MNIST family
            batch_size=32,  # ~270 training images per task: ~9 steps per epoch
            eval_batch_size=512,
            epochs=10,  # enough for Naive to reach >95 % on each new task
        ),
        overrides={
            "ewc": {"ewc_lambda": 1e4},  # grid: 97.7 %
            "si": {"si_lambda": 100.0},  # grid: 96.0 %; eps as CLB
            "mas": {"lambda_reg": 0.1},  # grid (and 0.01): 98.1 %; alpha Avalanche default
            "lwf": {"alpha": 4.0},  # alpha of {0.5, 1, 2, 4, 8}: 98.8 %; T Avalanche default
            "replay": {"mem_size": 100},  # ~8 % of the 1,347 training images
            "agem": {"patterns_per_exp": 50, "sample_size": 64},  # ~1/5 of a task
            "gem": {"patterns_per_exp": 50},  # GEM default strength
            "packnet": {"post_prune_epochs": 4},
            "nispa": {
                # the paper's MLP density and lr (the defaults); then:
                "batch_size": 32,  # 512 would be one step per epoch here
                "eval_batch_size": 512,
                # a shortened schedule so that the demo stays near a minute: at
                # most 9 phases of 2 epochs (the paper's e = 5, k = 30 allow 26
                # phases of 5 epochs, ~110 epochs per task on these digits)
                "phase_epochs": 2,
                "tau_param": 10.0,
            },
        },
        # layers this small run fastest on one thread; more only add OpenMP
        # overhead (and stalls when other processes share the cores)
        threads=1,
    )


# --- Class-incremental: one output layer of n_classes for every strategy -----
def _memory(size: int, n_experiences: int) -> dict[str, dict[str, Any]]:
    """The one memory size of a class-incremental comparison, for every strategy with one."""
    memories = ("replay", "er_ace", "der", "gdumb", "nispa_replay")
    sized = {name: {"mem_size": size} for name in memories}
    # A-GEM keeps patterns_per_exp of each experience: the same total at the end
    sized["icarl"] = {"memory_size": size}
    return {**sized, "agem": {"patterns_per_exp": size // n_experiences}}


def _cil(
    name: str, description: str, builder: str, overrides: Overrides, **fields: Any
) -> BenchmarkConfig:
    """A class-incremental variant of ``builder``'s 5 x 2-class stream (no task labels)."""
    return _benchmark(
        name=name, description=description, n_experiences=5, n_classes=10, builder=builder,
        builder_kwargs={"return_task_id": False}, scenario="class", overrides=overrides, **fields,
    )


def _mnist_cil(name: str, description: str, builder: str) -> BenchmarkConfig:
    return _cil(
        name, description, builder,
        # replay spec §1/§4: M = 1000; §6: the baselines' buffers 1000 on MNIST
        _memory(1000, 5),
        # replay spec §6: dense ER on MNIST, SGD lr 0.1, batch 512, 10 epochs
        scoped_training={
            "replay": {"optimizer": "sgd", "lr": 0.1, "batch_size": 512, "epochs": 10}
        },
        # replay spec §4: the MLP 784-400-400-400 with one output layer of 10
        backbone=Backbone("mlp", (1, 28, 28), hidden_sizes=(400, 400, 400)),
        training=_MNIST_TRAINING,  # as the task-incremental MNIST baselines
        notes=("baselines other than ER (replay spec §6) keep their task-incremental "
               "settings, untuned here",),
    )


def _digits_cil() -> BenchmarkConfig:
    digits = _digits()
    # a demo and test benchmark: ~270 training images per experience, so a
    # memory of 100 (as split_digits' replay) and NISPA-Replay shortened as there
    shortened = ("phase_epochs", "tau_param")
    nispa = {key: digits.strategies["nispa"].as_dict()[key] for key in shortened}
    return _cil(
        "split_digits_cil",
        "Split 8x8 digits, class-incremental: 5 experiences x 2 classes, one output layer",
        "split_digits",
        {**_memory(100, 5), "nispa_replay": {"mem_size": 100, "batch_size": 32, **nispa}},
        backbone=digits.backbone,
        training=digits.training,
        threads=1,
    )


def _with_grids(cfg: BenchmarkConfig) -> BenchmarkConfig:
    """``cfg`` with its ``--tune`` grids (:mod:`.grids`)."""
    grids = {s: dict(grid) for s, grid in TUNE_GRIDS.get(cfg.name, {}).items()}
    return dataclasses.replace(cfg, tune_grids=grids)


BENCHMARKS: dict[str, BenchmarkConfig] = {
    cfg.name: _with_grids(cfg)
    for cfg in (
        _digits(),
        _mnist_family(
            "split_mnist",
            "Split MNIST: 5 tasks x 2 classes, classes in order {0,1},...,{8,9}",
            {},
        ),
        _mnist_family(
            "split_fmnist",
            "Split Fashion-MNIST: 5 tasks x 2 classes, classes in order",
            {
                "ewc": {"ewc_lambda": 1e4},  # issue 4: best λ on Split FMNIST
                "mas": {"lambda_reg": 100.0},  # issue 4: best λ on Split FMNIST
            },
        ),
        _mnist_family(
            "permuted_mnist",
            "Permuted MNIST: 10 tasks x 10 classes, task-incremental",
            _PERMUTED_OVERRIDES,
            n_experiences=10,
        ),
        _mnist_family(
            "permuted_mnist_10k",
            "Permuted MNIST on a budget: 10 tasks x 10 classes, task-incremental, "
            "10,000 training images per task (the same ones in every task), "
            "all 10,000 test images",
            _PERMUTED_OVERRIDES,
            n_experiences=10,
            builder="permuted_mnist",
            builder_kwargs={"train_samples_per_task": 10_000},
            notes=(
                "a sixth of MNIST's training images per task, so that 3 seeds of "
                "every strategy fit in about an hour on 2 CPU cores; the full "
                "stream is the benchmark permuted_mnist",
            ),
        ),
        _mnist_family(
            "permuted_mnist_20x5k",
            "Permuted MNIST, a longer stream: 20 tasks x 10 classes, task-incremental, "
            "5,000 training images per task (the same ones in every task), "
            "all 10,000 test images",
            {**_PERMUTED_OVERRIDES,
             "nispa": {"accuracy_drop_threshold": 2.5}},  # README: a_f 2.5 on permuted streams
            n_experiences=20,
            builder="permuted_mnist",
            builder_kwargs={"n_experiences": 20, "train_samples_per_task": 5_000},
            notes=(
                "20 tasks, where capacity runs out sooner (issue 14 §3): a twelfth of "
                "MNIST's training images per task, so that a run costs about what one "
                "of permuted_mnist_10k costs on 2 CPU cores",
            ),
        ),
        _mnist_family(
            "ef_mnist",
            "EF-MNIST: EMNIST-balanced + Fashion-MNIST, 57 classes in 5 tasks "
            "of 10/13/13/11/10 (spec §5)",
            {},
            n_classes=57,
            notes=("baseline hyperparameters are those of Split MNIST, untuned",),
        ),
        _cifar("split_cifar10", "Split CIFAR-10: 5 tasks x 2 classes", 5, 10),
        _cifar("split_cifar100", "Split CIFAR-100: 20 tasks x 5 classes", 20, 100),
        _digits_cil(),
        _mnist_cil("split_mnist_cil", "Split MNIST, class-incremental: 5 x 2 classes, "
                   "one output layer of 10", "split_mnist"),
        _mnist_cil("split_fmnist_cil", "Split Fashion-MNIST, class-incremental: 5 x 2 "
                   "classes, one output layer of 10", "split_fmnist"),
    )
}


def get_config(name: str) -> BenchmarkConfig:
    """The configuration of benchmark ``name``, as a private copy."""
    try:
        return copy.deepcopy(BENCHMARKS[name])
    except KeyError:
        raise KeyError(
            f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}"
        ) from None
