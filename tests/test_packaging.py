"""Our tests/ and examples/ must not clash with avalanche-lib's top-level packages.

The avalanche-lib wheel installs packages named ``tests`` and ``examples`` into
site-packages. Ours are plain directories (no ``__init__.py``): pytest's default
import mode imports each test file as a top-level module of its own name, and
examples load by file path, so neither copy shadows the other.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import avalanche

REPO = Path(__file__).resolve().parent.parent
AVALANCHE_SITE = Path(avalanche.__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (REPO / "examples").glob("*.py"))


@pytest.mark.parametrize("directory", ["tests", "examples"])
def test_our_directories_are_not_packages_named_like_avalanches(directory):
    assert not (REPO / directory / "__init__.py").exists()


@pytest.mark.parametrize("name", ["tests", "examples"])
def test_import_resolves_to_avalanches_copy(name):
    module = importlib.import_module(name)
    location = Path(module.__file__).resolve()
    assert location.parent == AVALANCHE_SITE / name, location
    assert REPO / name not in location.parents


def test_our_example_loads_by_path_without_touching_sys_modules_names(load_example):
    before = sys.modules.get("examples")
    example = load_example("load_benchmarks")
    assert Path(example.__file__).resolve() == REPO / "examples" / "load_benchmarks.py"
    assert sys.modules.get("examples") is before  # still avalanche's (or not imported)
    assert importlib.import_module("examples").__file__ != example.__file__

    from avalanche_nispa.benchmarks import split_digits

    lines = example.describe(split_digits(n_experiences=2))
    assert lines[0].startswith("experience 0: task [0], classes [0, 1, 2, 3, 4], ")
    assert "input (1, 8, 8) in [0.00, 1.00]" in lines[1]


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_imports_by_path_without_running(load_example, name, capsys):
    module = load_example(name)
    assert module.__name__ != "__main__"
    assert capsys.readouterr().out == ""  # the __main__ block did not run
    assert Path(module.__file__).resolve() == REPO / "examples" / f"{name}.py"


def test_load_example_names_the_missing_file(load_example):
    with pytest.raises(FileNotFoundError, match="no example .*examples/missing.py"):
        load_example("missing")


def test_installed_distribution_ships_only_the_library():
    """``setup.cfg`` finds ``avalanche_nispa*`` and nothing else."""
    from setuptools.config.setupcfg import read_configuration

    options = read_configuration(REPO / "setup.cfg")["options"]
    packages = options["packages"]
    assert "avalanche_nispa" in packages
    assert all(
        p == "avalanche_nispa" or p.startswith("avalanche_nispa.") for p in packages
    )
    requires = [r.replace(" ", "") for r in options["install_requires"]]
    assert "avalanche-lib>=0.6,<0.7" in requires
    assert "quadprog" in requires


def test_gem_has_its_qp_solver():
    """quadprog is installed, so Avalanche's GEM can solve its projection."""
    import qpsolvers

    assert "quadprog" in qpsolvers.available_solvers


def test_avalanches_test_helpers_stay_importable():
    """Avalanche's tiny benchmark helper, used by its own tests, is reachable."""
    from tests.unit_tests_utils import get_fast_benchmark

    bm = get_fast_benchmark(use_task_labels=True, seed=0)
    assert len(bm.train_stream) == 5
    assert [e.task_labels for e in bm.train_stream] == [[0], [1], [2], [3], [4]]
