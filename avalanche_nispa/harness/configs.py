"""One configuration per benchmark: backbone, training budget, hyperparameters.

Every strategy of a benchmark trains the same backbone (dense and multi-head
for the baselines, sparse at its density for NISPA) on the same data. A
strategy's hyperparameters are the benchmark's common training settings
(``BenchmarkConfig.training``) updated by its own entry in
``BenchmarkConfig.strategies``; the command line can override any of them
(``--set``, ``--grid``, ``--epochs``). Each value carries a comment saying where
it comes from. "Issue 4" is this project's issue, whose table reports the
dense baselines tuned on this machine (784-400-400-400 MLP, multi-head, Adam
lr 1e-3, batch 128, 5 epochs per experience, best λ of a small grid); "CLB" is
Avalanche's continual-learning-baselines repository; "spec" is
``nispa-spec.md`` (the official NISPA scripts).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = [
    "BENCHMARKS",
    "Backbone",
    "BenchmarkConfig",
    "STRATEGIES",
    "TRAINING_KEYS",
    "get_config",
]

#: Every strategy the harness knows, in the order tables list them.
STRATEGIES = (
    "nispa",
    "nispa_original",
    "naive",
    "ewc",
    "si",
    "mas",
    "lwf",
    "replay",
    "agem",
    "gem",
    "packnet",
    "joint",
)

#: Hyperparameters every strategy has: the optimizer and the training budget.
TRAINING_KEYS = ("optimizer", "lr", "batch_size", "eval_batch_size", "epochs")


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

    kind: str
    input_shape: tuple[int, ...]
    hidden_sizes: tuple[int, ...] = ()
    fc_size: int = 1024

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"backbone kind must be 'mlp' or 'cnn', got {self.kind!r}")
        if self.kind == "mlp" and not self.hidden_sizes:
            raise ValueError("an MLP backbone needs at least one hidden size")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything needed to run one benchmark.

    Attributes:
        name: the benchmark's name; also the builder's name in
            :mod:`avalanche_nispa.benchmarks` unless ``builder`` is given.
        description: one line for tables and ``--show-config``.
        n_experiences: experiences (tasks) in the stream.
        n_classes: classes in the whole stream.
        backbone: the shared network.
        training: hyperparameters every strategy shares (:data:`TRAINING_KEYS`).
        strategies: per-strategy hyperparameters, overriding ``training``.
        default_seeds: seeds used when ``--seeds`` is not given.
        builder_kwargs: extra keyword arguments for the benchmark builder.
        notes: caveats printed with the results.
        threads: torch CPU threads when ``--threads`` is not given (None:
            torch's default).
        builder: the builder in :mod:`avalanche_nispa.benchmarks`, when it is
            not ``name`` (a variant of a benchmark, e.g. fewer images).
    """

    name: str
    description: str
    n_experiences: int
    n_classes: int
    backbone: Backbone
    training: dict[str, Any]
    strategies: dict[str, dict[str, Any]]
    default_seeds: tuple[int, ...] = (0, 1, 2)
    builder_kwargs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    threads: Optional[int] = None
    builder: Optional[str] = None

    @property
    def builder_name(self) -> str:
        """The builder in :mod:`avalanche_nispa.benchmarks` that makes this stream."""
        return self.builder or self.name

    def hparams(self, strategy: str, overrides: Optional[dict[str, Any]] = None) -> dict:
        """The full hyperparameters of ``strategy``: common, its own, then overrides."""
        if strategy not in self.strategies:
            raise KeyError(
                f"benchmark {self.name!r} has no settings for strategy {strategy!r}; "
                f"known: {', '.join(self.strategies)}"
            )
        merged = {**self.training, **self.strategies[strategy], **(overrides or {})}
        return copy.deepcopy(merged)


# --- NISPA: the paper's settings (spec §4, official scripts) ----------------
_NISPA_MNIST = {
    "epochs": None,  # NISPA trains in phases until its stop rule fires
    "density": 0.2,  # spec §3: EF-MNIST MLP at 20 % (prune_perc 80)
    "lr": 0.01,  # spec §4: Adam lr 0.01 (EF-MNIST script)
    "batch_size": 512,  # spec §4
    "eval_batch_size": 1024,  # spec §4: test batch = 2 x train batch
    "phase_epochs": 5,  # spec §4: e = 5
    "accuracy_drop_threshold": 0.75,  # spec §4: a_f = 0.75
    "tau_schedule": "cosine",  # spec §4
    "tau_param": 30.0,  # spec §4: k = 30
    "max_phases": None,  # official code: stop only on a_f or tau <= 5 % (<= 26 phases)
    "validation_fraction": 0.1,  # spec §4: 10 % of each task's train split
    "growth_init": "normal",  # spec §4: --grow_init normal
    "rewire_algo": "full_random",  # spec §4: --rewire_algo full_random
    "mode": "clean",  # our default; "original" reproduces the official code
    "num_classes": None,  # let NISPAMLP choose its output layout
    "cache_data": True,  # the builders' transforms are deterministic (spec §4: no augmentation)
}
_NISPA_CIFAR10 = {
    **_NISPA_MNIST,
    "density": 0.1,  # spec §3: ConvNet at 10 % (prune_perc 90), conv1 dense
    "dense_first_conv": True,  # spec §3: skip_first=True
    "lr": 0.002,  # spec §4: CIFAR10 script
    "batch_size": 128,  # spec §4
    "eval_batch_size": 256,  # spec §4: 2 x train batch
}
_NISPA_CIFAR100 = {
    **_NISPA_CIFAR10,
    "batch_size": 64,  # spec §4: CIFAR100 script
    "eval_batch_size": 128,  # spec §4: 2 x train batch
    "accuracy_drop_threshold": 2.5,  # spec §4: a_f = 2.5 on CIFAR100
}

# --- Dense baselines on the MNIST family ------------------------------------
_MNIST_TRAINING = {
    "optimizer": "adam",  # issue 4: Adam for every dense baseline
    "lr": 1e-3,  # issue 4
    "batch_size": 128,  # issue 4
    "eval_batch_size": 1000,  # evaluation only; no effect on results
    "epochs": 5,  # issue 4: 5 epochs per experience (NISPA's e)
}
_MNIST_BASELINES = {
    "naive": {},
    "ewc": {"ewc_lambda": 1e6, "mode": "separate"},  # issue 4: best λ on Split MNIST
    # issue 4: λ = 1e4; eps as CLB split MNIST. Sanity check against CLB's SI
    # on Split MNIST (0.97, MLP 256-256, batch 64, 10 epochs, λ = 1):
    # --strategies si --set backbone.hidden_sizes=256,256 --set batch_size=64
    #   --epochs 10 --set si.si_lambda=1 --set si.eps=0.001
    "si": {"si_lambda": 1e4, "eps": 1e-3},
    "mas": {"lambda_reg": 10.0, "alpha": 0.5},  # issue 4: λ = 10; alpha Avalanche default
    "lwf": {"alpha": 1.0, "temperature": 2.0},  # Avalanche LwFPlugin defaults
    "replay": {"mem_size": 1000},  # issue 4: Replay 1000
    "agem": {"patterns_per_exp": 250, "sample_size": 256},  # CLB permuted MNIST A-GEM
    # CLB / GEM paper keep 1000 patterns per task; 256 keeps CPU runs affordable
    "gem": {"patterns_per_exp": 256, "memory_strength": 0.5},
    # issue 4: 3 + 2 post-prune epochs; equal-share pruning gives every task ~1/T
    "packnet": {"post_prune_epochs": 2, "prune_proportion": "equal_share"},
    "joint": {},  # upper bound: same epochs over the union of all experiences
}


# The seed-0 grid on permuted_mnist_10k (results/permuted_mnist_10k_grid) found
# EWC λ = 1e3 (91.9 %) and MAS λ = 1 (84.0 %) better than the values below, and SI
# λ = 100 (82.5 %) better on seed 0 only; results/permuted_mnist_10k shows those
# rows over 3 seeds next to these, which stay the documented starting points.
_PERMUTED_OVERRIDES = {
    "ewc": {"ewc_lambda": 1e4},  # untuned: middle of issue 4's grid
    "si": {"si_lambda": 10.0, "eps": 0.1},  # CLB permuted MNIST SI
    "lwf": {"temperature": 1.0},  # CLB permuted MNIST LwF: alpha 1, T 1
}


def _mnist_family(
    name: str,
    description: str,
    baseline_overrides: dict[str, dict[str, Any]],
    *,
    n_experiences: int = 5,
    n_classes: int = 10,
    builder_kwargs: Optional[dict[str, Any]] = None,
    notes: tuple[str, ...] = (),
    builder: Optional[str] = None,
) -> BenchmarkConfig:
    strategies = copy.deepcopy(_MNIST_BASELINES)
    for strategy, values in baseline_overrides.items():
        strategies[strategy].update(values)
    strategies["nispa"] = dict(_NISPA_MNIST)
    return BenchmarkConfig(
        name=name,
        description=description,
        n_experiences=n_experiences,
        n_classes=n_classes,
        # spec §3: the paper's MLP 784-400-400-400
        backbone=Backbone("mlp", (1, 28, 28), hidden_sizes=(400, 400, 400)),
        training=dict(_MNIST_TRAINING),
        strategies=strategies,
        builder_kwargs=builder_kwargs or {},
        builder=builder,
        notes=notes,
    )


def _cifar(name: str, description: str, n_experiences: int, n_classes: int) -> BenchmarkConfig:
    nispa = _NISPA_CIFAR10 if n_classes == 10 else _NISPA_CIFAR100
    training = {
        "optimizer": "adam",
        "lr": 1e-3,  # Adam default scale, as on the MNIST family; untuned here
        "batch_size": nispa["batch_size"],  # same batch as NISPA (spec §4)
        "eval_batch_size": 256,
        "epochs": 5,  # NISPA's e; untuned (no CIFAR runs on this machine)
    }
    strategies = copy.deepcopy(_MNIST_BASELINES)
    strategies["ewc"]["ewc_lambda"] = 1e4  # untuned: middle of issue 4's grid
    strategies["si"]["si_lambda"] = 1e3  # untuned: SI importances grow with the data
    strategies["mas"]["lambda_reg"] = 1.0  # untuned: Avalanche default
    strategies["replay"]["mem_size"] = 1000  # spec §6.2: replay buffer 1000 on CIFAR10
    strategies["nispa"] = dict(nispa)
    return BenchmarkConfig(
        name=name,
        description=description,
        n_experiences=n_experiences,
        n_classes=n_classes,
        # spec §3: the paper's ConvNet, fc 1024 for all strategies (the paper's
        # dense EWC/SI/MAS used fc 512; one backbone for all is fairer here)
        backbone=Backbone("cnn", (3, 32, 32), fc_size=1024),
        training=training,
        strategies=strategies,
        notes=("baseline hyperparameters are untuned on CIFAR (no data on this machine)",),
    )


def _with_original_nispa(cfg: BenchmarkConfig) -> BenchmarkConfig:
    """Add ``nispa_original``: NISPA's settings with the official code's choices."""
    if "nispa_original" not in cfg.strategies:
        cfg.strategies["nispa_original"] = {
            **cfg.strategies["nispa"], "mode": "original", "num_classes": cfg.n_classes,
        }
    return cfg


def _digits() -> BenchmarkConfig:
    # Chosen so that the default demo (Naive, EWC, SI, Replay, NISPA; 3 seeds)
    # runs in about a minute on 2 CPU cores. "grid": best mean final accuracy
    # over seeds 100, 101, 102 (their own train/test splits; not the reported
    # seeds) of λ in {0.1, 1, 10, ..., 1e5}, e.g.
    # `--seeds 100,101,102 --strategies ewc --grid ewc.ewc_lambda=0.1,1,10,100,1e3,1e4,1e5`.
    return BenchmarkConfig(
        name="split_digits",
        description="Split 8x8 digits (scikit-learn, bundled): 5 tasks x 2 classes",
        n_experiences=5,
        n_classes=10,
        backbone=Backbone("mlp", (1, 8, 8), hidden_sizes=(100, 100)),
        training={
            "optimizer": "adam",
            "lr": 1e-3,  # as on the MNIST family
            "batch_size": 32,  # ~270 training images per task: ~9 steps per epoch
            "eval_batch_size": 512,
            "epochs": 10,  # enough for Naive to reach >95 % on each new task
        },
        strategies={
            "naive": {},
            "ewc": {"ewc_lambda": 1e4, "mode": "separate"},  # grid: 97.7 %
            "si": {"si_lambda": 100.0, "eps": 1e-3},  # grid: 96.0 %; eps as CLB
            # grid (and 0.01): 98.1 %; alpha Avalanche default
            "mas": {"lambda_reg": 0.1, "alpha": 0.5},
            # alpha of {0.5, 1, 2, 4, 8}: 98.8 %; T Avalanche default
            "lwf": {"alpha": 4.0, "temperature": 2.0},
            "replay": {"mem_size": 100},  # ~8 % of the 1,347 training images
            "agem": {"patterns_per_exp": 50, "sample_size": 64},  # ~1/5 of a task
            "gem": {"patterns_per_exp": 50, "memory_strength": 0.5},  # GEM default strength
            "packnet": {"post_prune_epochs": 4, "prune_proportion": "equal_share"},
            "joint": {},
            "nispa": {
                **_NISPA_MNIST,
                "density": 0.2,  # the paper's MLP density
                "lr": 0.01,  # the paper's MLP lr
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


BENCHMARKS: dict[str, BenchmarkConfig] = {
    cfg.name: _with_original_nispa(cfg)
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
            "ef_mnist",
            "EF-MNIST: EMNIST-balanced + Fashion-MNIST, 57 classes in 5 tasks "
            "of 10/13/13/11/10 (spec §5)",
            {},
            n_classes=57,
            notes=("baseline hyperparameters are those of Split MNIST, untuned",),
        ),
        _cifar("split_cifar10", "Split CIFAR-10: 5 tasks x 2 classes", 5, 10),
        _cifar("split_cifar100", "Split CIFAR-100: 20 tasks x 5 classes", 20, 100),
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
