"""Shared fixtures.

Test files are imported in pytest's default (prepend) mode and ``tests/`` has
no ``__init__.py``: each file is a top-level module of its own name, so helpers
shared between test files live here as fixtures, never in an importable
``tests`` package (that name belongs to the copy avalanche-lib installs into
site-packages).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import struct
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Callable

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO / "examples"


def _load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by file path, under a private module name.

    Our examples are not a package: ``import examples`` is avalanche-lib's.
    Importing by path runs the module body but not its ``__main__`` block.
    """
    path = EXAMPLES_DIR / f"{name.removesuffix('.py')}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no example {path}")
    module_name = f"_avalanche_nispa_example_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


@pytest.fixture
def load_example() -> Callable[[str], ModuleType]:
    """``load_example("quickstart")`` imports ``examples/quickstart.py`` by path."""
    return _load_example


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "gpu: needs a CUDA device; skipped without one (scripts/gpu_check.sh runs them)")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``gpu`` are skipped, saying why, on a machine without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (scripts/gpu_check.sh runs these on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --------------------------------------------------------------------------- #
# Data


@pytest.fixture(scope="session")
def digits():
    """``split_digits(seed=0)``, built once: five two-class tasks of 8x8 digits.

    Shared by every test that asks for it; tests only read it (train and evaluate
    on its experiences), none changes it.
    """
    from avalanche_nispa.benchmarks import split_digits

    return split_digits(seed=0)


_NISPA_ENV_PREFIX = "NISPA_"


@pytest.fixture
def isolated_data_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No NISPA_* variable set, HOME and the cache in a fresh temporary directory.

    Keeps the data resolver away from the real ``~/.cache``, ``~/.avalanche``
    and CI's ``NISPA_DATA_DIR``. Returns the temporary HOME.
    """
    for key in list(os.environ):
        if key.startswith(_NISPA_ENV_PREFIX):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NISPA_CACHE_DIR", str(tmp_path / "cache"))
    return home


def _write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    """Write ``array`` (uint8, 1-D labels or 3-D images) in the IDX format."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim  # unsigned bytes, ndim dimensions
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(header + array.tobytes(), mtime=0))
    else:
        path.write_bytes(header + array.tobytes())
    return path


def _synthetic_split(n_classes: int, per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
    return images, labels


@pytest.fixture
def write_idx_dir() -> Callable[..., Path]:
    """Write a small synthetic IDX data set (original file names) into a directory.

    ``write_idx_dir(directory, kind="mnist"|"emnist", n_classes=10,
    per_class=2, gz=True)``; EMNIST files use the balanced split's names.
    """

    def write(
        directory: Path,
        *,
        kind: str = "mnist",
        n_classes: int = 10,
        per_class: int = 2,
        gz: bool = True,
    ) -> Path:
        names = {
            "mnist": {"train": "train", "test": "t10k"},
            "emnist": {
                "train": "emnist-balanced-train",
                "test": "emnist-balanced-test",
            },
        }[kind]
        for seed, (split, prefix) in enumerate(names.items()):
            images, labels = _synthetic_split(n_classes, per_class, seed)
            _write_idx(directory / f"{prefix}-images-idx3-ubyte", images, gz=gz)
            _write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)
        return directory

    return write


@pytest.fixture
def shared_data_dir() -> Path:
    """The directory of the real IDX files, ``$NISPA_DATA_DIR`` (CI sets it).

    It holds ``mnist/`` (checked here) and ``fashion-mnist/``.

    Outside CI, falls back to ``../shared/data`` beside the checkout and skips
    the test when neither exists; in CI (``CI`` set) a missing directory fails.
    """
    configured = os.environ.get("NISPA_DATA_DIR")
    data_dir = Path(configured) if configured else REPO.parent / "shared" / "data"
    mnist = data_dir / "mnist"
    if not (mnist / "train-images-idx3-ubyte.gz").is_file():
        message = f"real MNIST IDX files not found in {mnist} (set NISPA_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return data_dir


# --------------------------------------------------------------------------- #
# Evaluation


def _quiet_evaluator(*metrics, log: io.StringIO | None = None):
    """An ``EvaluationPlugin`` of ``metrics`` (default: per-experience accuracy)
    whose ``TextLogger`` writes into ``log`` (default: a fresh ``io.StringIO``),
    never to the terminal."""
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    if not metrics:
        metrics = (accuracy_metrics(experience=True),)
    return EvaluationPlugin(*metrics, loggers=[TextLogger(io.StringIO() if log is None else log)])


@pytest.fixture
def quiet_evaluator() -> Callable[..., object]:
    """``quiet_evaluator(*metrics, log=None)``: a new ``EvaluationPlugin`` on every
    call, logging into a string; by default it computes per-experience accuracy."""
    return _quiet_evaluator


def _small_nispa(kind, evaluator, plugins=(), **settings):
    """NISPA (``kind="nispa"``, task heads) or NISPA-Replay (``"replay"``, one head and a
    memory of 100) on a 64-32-32 MLP at 30 % density, 2 phases of 1 epoch."""
    import torch

    from avalanche_nispa import NISPA, NISPAReplay
    from avalanche_nispa.models import NISPAMLP

    torch.manual_seed(0)
    values = dict(train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=2,
                  evaluator=evaluator, plugins=list(plugins))
    values.update(settings)
    if kind == "replay":
        model = NISPAMLP(64, (32, 32), density=0.3, num_classes=10, class_incremental=True)
        return NISPAReplay(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           mem_size=100, **values)
    model = NISPAMLP(64, (32, 32), density=0.3)
    return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), **values)


@pytest.fixture
def small_nispa() -> Callable[..., object]:
    """``small_nispa(kind, evaluator, plugins=(), **settings)``: a small NISPA
    (``"nispa"``) or NISPA-Replay (``"replay"``) strategy, seeded."""
    return _small_nispa


# --------------------------------------------------------------------------- #
# Frozen-weight invariants, shared by the strategy and optimizer tests


def _frozen_snapshot(model) -> dict:
    """Positions and values of every frozen weight and bias, by masked layer."""
    from avalanche_nispa.invariants import frozen_snapshot

    return frozen_snapshot(model)


def _assert_frozen_unchanged(model, snapshot: dict) -> None:
    """Every entry frozen in ``snapshot`` is still frozen and bit-identical."""
    from avalanche_nispa.invariants import assert_frozen_unchanged

    assert_frozen_unchanged(model, snapshot)


def _make_step_probe_class() -> type:
    from avalanche.core import SupervisedPlugin

    from avalanche_nispa.sparse import is_masked_layer

    class StepProbe(SupervisedPlugin):
        """After every optimizer step: frozen entries unchanged, absent weights zero."""

        def __init__(self) -> None:
            super().__init__()
            self.steps = 0

        def before_update(self, strategy, **kwargs):
            self.before = _frozen_snapshot(strategy.model)

        def after_update(self, strategy, **kwargs):
            self.steps += 1
            _assert_frozen_unchanged(strategy.model, self.before)
            for layer in strategy.model.modules():
                if is_masked_layer(layer):
                    absent = ~layer.expand(layer.connection_mask)
                    assert not bool(layer.weight[absent].any())

    return StepProbe


@pytest.fixture
def frozen_invariants() -> SimpleNamespace:
    """``snapshot(model)``, ``assert_unchanged(model, snapshot)`` and ``StepProbe``,
    a plugin checking both invariants after every optimizer step."""
    return SimpleNamespace(
        snapshot=_frozen_snapshot,
        assert_unchanged=_assert_frozen_unchanged,
        StepProbe=_make_step_probe_class(),
    )


# --------------------------------------------------------------------------- #
# A run killed mid-experience, shared by the checkpoint tests


class _Interrupted(Exception):
    """Stands for the process being killed."""


def _make_kill_plugin_class() -> type:
    from avalanche.core import SupervisedPlugin

    class KillDuring(SupervisedPlugin):
        """Raises :class:`_Interrupted` at iteration ``iteration`` of the experience
        trained after ``experience`` finished ones."""

        def __init__(self, experience, iteration):
            super().__init__()
            self.experience, self.iteration = experience, iteration

        def after_training_iteration(self, strategy, **kwargs):
            clock = strategy.clock
            if (clock.train_exp_counter == self.experience
                    and clock.train_exp_iterations == self.iteration):
                raise _Interrupted

    return KillDuring


@pytest.fixture
def kill() -> SimpleNamespace:
    """``kill.During(experience, iteration)``, a plugin that kills the run there by
    raising ``kill.Interrupted``."""
    return SimpleNamespace(During=_make_kill_plugin_class(), Interrupted=_Interrupted)
