"""Every code block of README.md and every script in examples/ runs, offline, on
small data.

The code runs exactly as the user reads it; the only patches shrink the work:

* Avalanche's MNIST loader keeps ``_TRAIN_PER_CLASS`` training and
  ``_TEST_PER_CLASS`` test images of each digit (the files are the real ones,
  found through ``NISPA_DATA_DIR``, unpacked once per session into a temporary
  ``NISPA_CACHE_DIR``);
* in README blocks, ``avalanche_nispa.NISPA`` is built with ``max_phases=2,
  phase_epochs=1``; examples get their documented quick-run options instead;
* any torchvision download raises, so a block that would need the network fails.

Blocks are found by parsing README.md: a ``python`` block needs a runner below
(keyed by its section heading), and every line of a ``bash`` block is either a
``python examples/...`` command (run here) or listed in ``NOT_RUN`` with the
reason, so a new block or line cannot be skipped silently.
"""
from __future__ import annotations

import re
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
EXAMPLES = REPO / "examples"

_TRAIN_PER_CLASS = 60
_TEST_PER_CLASS = 20

_HARNESS = "runs the comparison harness on a whole benchmark (minutes to hours)"
_BUILDS_VENV = "builds .venv from the constraints file, then "
_COLLECT_10K_OPTIONS = (
    '.venv/bin/python -m benchmarks.collect --out benchmarks/results/collected/permuted_mnist_10k_options --title'
    " 'NISPA options beyond the paper, Permuted MNIST 10k (a_f 2.5, lr 0.01)'"
    " 'paper (random growth)=permuted_mnist_10k_budgets:nispa'"
    " 'RigL growth=permuted_mnist_10k_growth_rigl:nispa'"
    " 'CH3-L3 growth=permuted_mnist_10k_growth_ch3l3:nispa'"
    " 'unfreeze below 50%, activation=permuted_mnist_10k_unfreeze_0.5_0.05:nispa'"
    " 'unfreeze below 20%, activation=permuted_mnist_10k_unfreeze_0.2_0.05:nispa'"
    " 'unfreeze below 50%, downstream=permuted_mnist_10k_unfreeze_0.5_0.05_downstream:nispa'"
    " 'unfreeze below 20%, downstream=permuted_mnist_10k_unfreeze_0.2_0.05_downstream:nispa'"
    " 'unfreeze below 20%, downstream, bound 2%=permuted_mnist_10k_unfreeze_0.2_0.02_downstream:nispa'"
)
_COLLECT_20X5K_OPTIONS = (
    '.venv/bin/python -m benchmarks.collect --out benchmarks/results/collected/permuted_mnist_20x5k_options --title'
    " 'NISPA options on the 20-task stream permuted_mnist_20x5k (lr 0.01)'"
    " 'paper (density 20%)=permuted_mnist_20x5k_paper:nispa'"
    " 'paper at density 30%=permuted_mnist_20x5k_density0.3:nispa'"
    " 'neurogenesis below 10%=permuted_mnist_20x5k_neurogenesis_0.1_0.05:nispa'"
    " 'unfreeze below 10%, downstream=permuted_mnist_20x5k_unfreeze_0.1_0.05_downstream:nispa'"
    " 'unfreeze below 5%, downstream=permuted_mnist_20x5k_unfreeze_0.05_0.02_downstream:nispa'"
    " 'RigL growth=permuted_mnist_20x5k_growth_rigl:nispa'"
    " 'CH3-L3 growth=permuted_mnist_20x5k_growth_ch3l3:nispa'"
    " 'PackNet full size=permuted_mnist_20x5k:packnet'"
)
_COLLECT_20X5K_NEUROGENESIS_MATCHED = (
    '.venv/bin/python -m benchmarks.collect --out benchmarks/results/collected/permuted_mnist_20x5k_neurogenesis_matched'
    ' --title "Neurogenesis against the paper\'s method at neurogenesis\' active parameters, permuted_mnist_20x5k (lr 0.01)"'
    " 'neurogenesis below 10%, seeds 1-3=permuted_mnist_20x5k_neurogenesis_0.1_0.05:nispa'"
    " 'paper at 204,646 (seed 1)=permuted_mnist_20x5k_paper_at_neurogenesis_s1:nispa@204646'"
    " 'paper at 176,339 (seed 2)=permuted_mnist_20x5k_paper_at_neurogenesis_s2:nispa@176339'"
    " 'paper at 202,948 (seed 3)=permuted_mnist_20x5k_paper_at_neurogenesis_s3:nispa@202948'"
)
NOT_RUN: Dict[str, str] = {
    "bash scripts/demo.sh": _BUILDS_VENV + _HARNESS,
    "bash scripts/test.sh": _BUILDS_VENV + "runs this test suite (recursion)",
    "bash scripts/demo.sh --benchmark split_mnist": _BUILDS_VENV + _HARNESS,
    "NISPA_DATA_DIR=~/data bash scripts/demo.sh --benchmark split_mnist": _BUILDS_VENV + _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark ef_mnist": _HARNESS + "; no EMNIST here",
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --data-root ~/data/mnist": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies all --seeds 0,1,2 "
    "--threads 1 --results-dir benchmarks/results/split_mnist": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies all "
    "--grid nispa.accuracy_drop_threshold=default,2.5 --seeds 0,1,2 --threads 1": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist --strategies all --seeds 0,1,2": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_fmnist --strategies nispa "
    "--density-sweep 0.05,0.1,0.2,0.5,1.0 --seeds 0": _HARNESS,
    ".venv/bin/python -m benchmarks.speed --seeds 0": "times every strategy in its own process (minutes)",
    ".venv/bin/python -m benchmarks.compare --benchmark split_digits_cil --strategies naive,replay "
    "--tune": _HARNESS + "; test_harness_tuning.py runs it with 2 epochs per experience",
    ".venv/bin/python -m benchmarks.compare --strategies all --seeds 0,1,2 --executor ray": _HARNESS
    + " on a local Ray instance (tests/test_ray_executor.py runs a small one)",
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies all --seeds 0,1,2 "
    "--executor ray --ray-address auto --data-root /shared/data/mnist": "needs a Ray cluster",
    ".venv/bin/python -m benchmarks.compare --benchmark split_cifar10 --strategies all --executor ray "
    "--device cuda --gpus-per-run 1 --cpus-per-run 2": "needs GPUs and CIFAR-10",
    **{f".venv/bin/python -m benchmarks.compare --benchmark {b} --strategies nispa_replay,naive,replay,"
       "er_ace,der,gdumb,icarl,lwf,ewc,agem,cumulative,joint --tune --budgets as:nispa_replay,full "
       f"--threads 1 --results-dir benchmarks/results/{b}": _HARNESS
       for b in ("split_mnist_cil", "split_fmnist_cil")},
    **{f".venv/bin/python -m benchmarks.compare --benchmark {b} --strategies nispa,nispa_fast,packnet "
       f"--tune --threads 1 --results-dir benchmarks/results/{b}_fast": _HARNESS
       for b in ("split_mnist", "split_fmnist")},
    "bash scripts/gpu_check.sh": _BUILDS_VENV + "the GPU checks (tests/test_gpu_check.py runs it)",
    "ray start --head": "starts a Ray cluster's head node",
    "ray start --address=HEAD:6379": "joins a Ray cluster (HEAD is its head node)",
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.growth_rule=rigl "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_10k_growth_rigl": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.growth_rule=ch3l3 "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_10k_growth_ch3l3": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa,packnet,naive,"
    "ewc,si,mas,lwf,replay,agem,gem,joint --tune --set nispa.accuracy_drop_threshold=2.5 --threads 1 "
    "--executor ray --cpus-per-run 1 --results-dir benchmarks/results/permuted_mnist_10k_tuned": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.unfreeze_below=0.5 "
    "--set nispa.unfreeze_bound=0.05 --seeds 1 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_unfreeze_0.5_0.05": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.unfreeze_below=0.2 "
    "--set nispa.unfreeze_bound=0.05 --seeds 1 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_unfreeze_0.2_0.05": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.unfreeze_below=0.5 "
    "--set nispa.unfreeze_bound=0.05 --set nispa.unfreeze_importance=downstream --seeds 1 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_unfreeze_0.5_0.05_downstream": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.unfreeze_below=0.2 "
    "--set nispa.unfreeze_bound=0.05 --set nispa.unfreeze_importance=downstream --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_unfreeze_0.2_0.05_downstream": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.unfreeze_below=0.2 --set nispa.unfreeze_bound=0.02 "
    "--set nispa.unfreeze_importance=downstream --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_unfreeze_0.2_0.02_downstream": _HARNESS,
    # rewrites a committed collection from committed results (tests/test_harness_collect.py
    # runs the command on small directories)
    _COLLECT_10K_OPTIONS: "rewrites benchmarks/results/collected/ from the committed results",
    _COLLECT_20X5K_OPTIONS: "rewrites benchmarks/results/collected/ from the committed results",
    _COLLECT_20X5K_NEUROGENESIS_MATCHED: "rewrites benchmarks/results/collected/ from the committed results",
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--budgets 136020 --set nispa.accuracy_drop_threshold=2.5 "
    "--set nispa.hidden_sizes=800,800,800 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_width800": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--budgets 136020 --set nispa.accuracy_drop_threshold=2.5 "
    "--set nispa.hidden_sizes=1600,1600,1600 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_width1600": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.hidden_sizes=800,800,800 --set nispa.density=0.06719 "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_10k_width800_at_budget": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa --tune "
    "--set nispa.accuracy_drop_threshold=2.5 --set nispa.hidden_sizes=1600,1600,1600 --set nispa.density=0.020066 "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_10k_width1600_at_budget": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies packnet --tune "
    "--set packnet.hidden_sizes=120,120,120 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_packnet120_at_budget": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa,packnet --tune "
    "--tune-at budget --budgets 16k,32k,64k,as:nispa,full --set nispa.accuracy_drop_threshold=2.5 "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_10k_curve3_at_budget": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies packnet --tune "
    "--grid packnet.lr=default,3e-3,1e-2 --set packnet.hidden_sizes=17,17,17 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_packnet17_at_budget_higher_lr --replace": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies packnet --tune "
    "--grid packnet.lr=default,3e-3,1e-2 --set packnet.hidden_sizes=33,33,33 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_packnet33_at_budget_higher_lr": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies packnet --tune "
    "--grid packnet.lr=default,3e-3,1e-2 --set packnet.hidden_sizes=63,63,63 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_packnet63_at_budget_higher_lr": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies packnet --tune "
    "--grid packnet.lr=default,3e-3,1e-2 --set packnet.hidden_sizes=120,120,120 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_packnet120_at_budget_higher_lr": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies "
    "nispa,packnet,replay,ewc --tune --budgets as:nispa,full --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_budgets": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--set nispa.neurogenesis_below=0.1 --set nispa.neurogenesis_bound=0.05 "
    "--seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_neurogenesis_0.1_0.05": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--budgets 194107,204646 --seeds 1 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_paper_at_neurogenesis_s1": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--budgets 168464,176339 --seeds 2 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_paper_at_neurogenesis_s2": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--budgets 202948 --seeds 3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_paper_at_neurogenesis_s3": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--set nispa.density=0.3 --seeds 1 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_density0.3": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa,packnet "
    "--tune --budgets as:nispa --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_matched": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies "
    "nispa,packnet,replay,ewc --tune --seeds 1 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_20x5k_paper": _HARNESS,
    **{".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
       "--set nispa.unfreeze_below=0.1 --set nispa.unfreeze_bound=0.05 "
       f"--set nispa.unfreeze_importance={imp} --seeds {seeds} --threads 1 "
       f"--results-dir benchmarks/results/permuted_mnist_20x5k_unfreeze_0.1_0.05_{imp}": _HARNESS
       for imp, seeds in (("downstream", "1,2,3"), ("activation", "1"))},
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
    "--set nispa.unfreeze_below=0.05 --set nispa.unfreeze_bound=0.02 "
    "--set nispa.unfreeze_importance=downstream --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_20x5k_unfreeze_0.05_0.02_downstream": _HARNESS,
    **{".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_20x5k --strategies nispa --tune "
       f"--set nispa.growth_rule={rule} --seeds 1,2,3 --threads 1 "
       f"--results-dir benchmarks/results/permuted_mnist_20x5k_growth_{rule}": _HARNESS
       for rule in ("rigl", "ch3l3")},
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies "
    "nispa,packnet,replay,ewc --tune --budgets 16k,32k,64k,as:nispa,full "
    "--set nispa.accuracy_drop_threshold=2.5 --seeds 1,2,3 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_curve": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa,packnet "
    "--tune --budgets 16k,32k,64k,as:nispa,full --set nispa.accuracy_drop_threshold=2.5 "
    "--seeds 1,2,3 --threads 1 --results-dir benchmarks/results/permuted_mnist_10k_curve3": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa,packnet "
    "--tune --budgets as:nispa,full --set nispa.accuracy_drop_threshold=2.5 --threads 1 "
    "--results-dir benchmarks/results/permuted_mnist_10k_budgets": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies nispa,packnet,naive,ewc,si,"
    "mas,lwf,replay,agem,gem,joint --tune --threads 1 "
    "--results-dir benchmarks/results/split_mnist_tuned": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_fmnist --strategies nispa,packnet,naive,ewc,si,"
    "mas,lwf,replay,agem,gem,joint --tune --threads 1 --executor ray --cpus-per-run 1 "
    "--results-dir benchmarks/results/split_fmnist_tuned": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies nispa,packnet,lwf,gem --tune "
    "--budgets 16k,32k,64k,as:nispa,full --seeds 1,2,3 --threads 1 --executor ray --cpus-per-run 1 "
    "--results-dir benchmarks/results/split_mnist_curve": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies nispa,packnet --tune "
    "--budgets 16k,32k,64k,as:nispa,full --seeds 1,2,3 --threads 1 --executor ray --cpus-per-run 1 "
    "--results-dir benchmarks/results/split_mnist_curve3": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies nispa --tune "
    "--set nispa.head_fan_out=head --threads 1 "
    "--results-dir benchmarks/results/split_mnist_head_fan_out": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_fmnist --strategies nispa --tune "
    "--set nispa.head_fan_out=head --threads 1 --executor ray --cpus-per-run 1 "
    "--results-dir benchmarks/results/split_fmnist_head_fan_out": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies nispa --tune "
    "--set nispa.shared_head=True --threads 1 "
    "--results-dir benchmarks/results/split_mnist_shared_head": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_mnist --strategies nispa_fast,packnet --tune "
    "--set nispa_fast.tau_param=14 --threads 1 "
    "--results-dir benchmarks/results/split_mnist_fast_k14": _HARNESS,
    ".venv/bin/python -m benchmarks.compare --benchmark split_fmnist --strategies nispa_fast,packnet --tune "
    "--set nispa_fast.tau_param=14 --threads 1 "
    "--results-dir benchmarks/results/split_fmnist_fast_k14": _HARNESS,
}
"""README shell lines deliberately not run, with the reason."""

_EXAMPLE_COMMAND = re.compile(
    r"^(?P<env>(?:\w+=\S+ )*)(?:\.venv/bin/)?python examples/(?P<script>\w+\.py)(?P<args>(?: \S+)*)$"
)

EXAMPLE_ARGV: Dict[str, List[str]] = {
    "load_benchmarks.py": [],  # the embedded 8x8 digits
    "quickstart.py": ["--max-phases", "2", "--phase-epochs", "1"],  # its documented quick run
}
"""How each script of examples/ is run here (as ``__main__``)."""


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    heading: str
    language: str
    code: str


def readme_blocks(text: str) -> List[Block]:
    """The fenced code blocks of ``text``, each with the heading of its section."""
    blocks, heading, fence = [], "", None
    for line in text.splitlines():
        if fence is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.startswith("```"):
                fence, body = line[3:].strip(), []
        elif line.startswith("```"):
            blocks.append(Block(heading, fence, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    assert fence is None, "unclosed code block in README.md"
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def shell_lines() -> List[str]:
    """Every command line of the README's bash blocks (comments dropped)."""
    return [line.strip() for block in BLOCKS if block.language == "bash"
            for line in block.code.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def run_script(path: Path, argv: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``path`` as ``__main__`` with ``argv``; it must exit with status 0."""
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as stop:
        assert stop.code in (0, None), f"{path.name} {argv} exited with {stop.code}"


# --------------------------------------------------------------------------- #
# Small data, offline


@pytest.fixture(scope="session")
def unpacked_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide ``NISPA_CACHE_DIR``: the IDX files are unpacked once."""
    return tmp_path_factory.mktemp("nispa_cache")


@pytest.fixture
def small_mnist(isolated_data_env, shared_data_dir, unpacked_cache, monkeypatch, tmp_path) -> Path:
    """A fresh HOME (no ~/.avalanche data), ``NISPA_DATA_DIR`` set to the real IDX
    files, downloads forbidden, Avalanche's MNIST cut to a few hundred images.
    The working directory is a temporary one; returns the data directory."""
    import torch
    import torchvision.datasets.mnist as tv_mnist
    from avalanche.benchmarks.classic import cmnist

    monkeypatch.setenv("NISPA_DATA_DIR", str(shared_data_dir))
    monkeypatch.setenv("NISPA_CACHE_DIR", str(unpacked_cache))
    monkeypatch.chdir(tmp_path)

    def no_download(*args, **kwargs):
        raise RuntimeError("a documented block tried to download MNIST")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_download)
    real_loader = cmnist.get_mnist_dataset

    def small_loader(dataset_root):
        train, test = real_loader(dataset_root)
        for dataset, per_class in ((train, _TRAIN_PER_CLASS), (test, _TEST_PER_CLASS)):
            keep = torch.cat([torch.nonzero(dataset.targets == c).flatten()[:per_class]
                              for c in range(10)]).sort().values
            dataset.data, dataset.targets = dataset.data[keep], dataset.targets[keep]
        return train, test

    monkeypatch.setattr(cmnist, "get_mnist_dataset", small_loader)
    return shared_data_dir


@pytest.fixture
def quick_nispa(monkeypatch) -> None:
    """``avalanche_nispa.NISPA`` and ``NISPAReplay`` build strategies with at most 2
    phases of 1 epoch."""
    import avalanche_nispa

    for name in ("NISPA", "NISPAReplay"):
        monkeypatch.setattr(avalanche_nispa, name, _quick(getattr(avalanche_nispa, name)))


def _quick(real):
    def quick(**kwargs):
        return real(**{**kwargs, "max_phases": 2, "phase_epochs": 1})

    return quick


# --------------------------------------------------------------------------- #
# README python blocks


def _run_resume_block(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted after two experiences, the block run again resumes at the third."""
    import avalanche_nispa

    real_save, saves = avalanche_nispa.save_checkpoint, []

    def save_then_crash(strategy, path, **kwargs):
        real_save(strategy, path, **kwargs)
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(avalanche_nispa, "save_checkpoint", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            exec(compile(code, "README.md", "exec"), {})
    assert Path("run.ckpt").is_file()
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["start"] == 2
    assert [h["experience"] for h in namespace["strategy"].phase_history] == [0, 1, 2, 3, 4]


def _run_pipeline_block(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline trains all five experiences of (the small) Split MNIST."""
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    benchmark, strategy = namespace["benchmark"], namespace["strategy"]
    assert sum(len(e.dataset) for e in benchmark.train_stream) == 10 * _TRAIN_PER_CLASS
    assert len(strategy.phase_history) == 5
    assert "Top1_Acc_Stream/eval_phase/test_stream/Task004" in strategy.evaluator.get_last_metrics()


def _run_replay_pipeline_block(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """NISPAReplay trains the five experiences of the class-incremental (small) Split
    MNIST with its memory filled from each."""
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    benchmark, strategy = namespace["benchmark"], namespace["strategy"]
    assert {int(e.task_label) for e in benchmark.train_stream} == {0}
    assert len(strategy.phase_history) == 5
    assert len(strategy.replay_plugin.memory) == 10 * _TRAIN_PER_CLASS  # all of it fits
    assert "Top1_Acc_Stream/eval_phase/test_stream/Task000" in strategy.evaluator.get_last_metrics()


def _run_beyond_paper_block(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CH3-L3 rule, selective unfreezing and neurogenesis train the five
    experiences, and the release and growth histories have one entry per experience."""
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    strategy = namespace["strategy"]
    assert strategy.config.resolved_growth_rule == "ch3l3"
    assert len(strategy.phase_history) == 5
    assert len(strategy.unfreezing_plugin.history) == 5
    assert len(strategy.neurogenesis_plugin.history) == 5


PYTHON_RUNNERS: Dict[str, Callable[[str, pytest.MonkeyPatch], None]] = {
    "Resuming runs": _run_resume_block,
    "Using NISPA in an Avalanche pipeline": _run_pipeline_block,
    "Class-incremental streams: NISPAReplay": _run_replay_pipeline_block,
    "Beyond the paper: growth rules, selective unfreezing, neurogenesis": _run_beyond_paper_block,
}
"""README section heading -> how its python block is run and checked."""


def test_every_readme_block_is_run_or_listed_as_not_run():
    languages = {block.language for block in BLOCKS}
    assert languages <= {"python", "bash"}, f"no runner for blocks in {languages - {'python', 'bash'}}"
    python_headings = [block.heading for block in BLOCKS if block.language == "python"]
    assert sorted(python_headings) == sorted(PYTHON_RUNNERS), "one python block per runner, and no other"
    lines = shell_lines()
    unlisted = [line for line in lines if line not in NOT_RUN and not _EXAMPLE_COMMAND.match(line)]
    assert not unlisted, f"README shell lines neither run nor listed in NOT_RUN: {unlisted}"
    assert set(NOT_RUN) <= set(lines), f"NOT_RUN lists lines gone from the README: {set(NOT_RUN) - set(lines)}"


@pytest.mark.parametrize("heading", sorted(PYTHON_RUNNERS))
def test_readme_python_block_runs(heading, small_mnist, quick_nispa, monkeypatch):
    (block,) = [b for b in BLOCKS if b.language == "python" and b.heading == heading]
    PYTHON_RUNNERS[heading](block.code, monkeypatch)


@pytest.mark.parametrize("line", [line for line in shell_lines() if _EXAMPLE_COMMAND.match(line)])
def test_readme_example_command_runs(line, small_mnist, monkeypatch, capsys):
    command = _EXAMPLE_COMMAND.match(line)
    for assignment in command["env"].split():
        name, _ = assignment.split("=", 1)
        assert name == "NISPA_DATA_DIR", f"no stand-in for {name} in {line!r}"
        monkeypatch.setenv(name, str(small_mnist))  # the README's "~/data"
    run_script(EXAMPLES / command["script"], command["args"].split(), monkeypatch)
    assert capsys.readouterr().out.strip()


# --------------------------------------------------------------------------- #
# examples/*.py


def test_every_example_has_a_run():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXAMPLE_ARGV)


@pytest.mark.parametrize("script", sorted(EXAMPLE_ARGV))
def test_example_runs_as_main(script, small_mnist, monkeypatch, capsys):
    run_script(EXAMPLES / script, EXAMPLE_ARGV[script], monkeypatch)
    out = capsys.readouterr().out
    if script == "quickstart.py":
        assert "average accuracy:" in out and "phases per task: [2, 2, 2, 2, 2]" in out
    else:
        assert len(re.findall(r"^  experience \d: task \[\d\]", out, re.M)) == 5
