"""Build one of the NISPA benchmarks and print what its streams hold.

    python examples/load_benchmarks.py                 # 8x8 digits, embedded
    python examples/load_benchmarks.py split_mnist     # needs MNIST (see README)
    python examples/load_benchmarks.py split_mnist --download

The data are found by ``avalanche_nispa.data.resolve_dataset_root``: set
``NISPA_DATA_DIR`` to a directory with ``mnist/`` and ``fashion-mnist/``
sub-directories of IDX ``.gz`` files, or ``NISPA_MNIST_DIR`` (etc.) to a
torchvision root; a missing data set raises an error that says what to set.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from typing import Callable, Optional

from avalanche_nispa import benchmarks
from avalanche_nispa.data import DatasetNotFoundError

BUILDERS: dict[str, Callable] = {
    name: getattr(benchmarks, name)
    for name in (
        "split_digits",
        "split_mnist",
        "split_fmnist",
        "permuted_mnist",
        "ef_mnist",
        "split_cifar10",
        "split_cifar100",
    )
}


def describe(benchmark) -> list[str]:
    """One line per experience: task label, classes, train/test sizes, input shape."""
    lines = []
    for train, test in zip(benchmark.train_stream, benchmark.test_stream):
        x = train.dataset[0][0]
        lines.append(
            f"experience {train.current_experience}: task {list(train.task_labels)}, "
            f"classes {sorted(train.classes_in_this_experience)}, "
            f"{len(train.dataset)} train / {len(test.dataset)} test, "
            f"input {tuple(x.shape)} in [{float(x.min()):.2f}, {float(x.max()):.2f}]"
        )
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "benchmark", nargs="?", default="split_digits", choices=BUILDERS
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="allow a torchvision download when no local copy is found",
    )
    args = parser.parse_args(argv)

    builder = BUILDERS[args.benchmark]
    kwargs = {}
    if "download" in inspect.signature(builder).parameters:
        kwargs["download"] = args.download
    try:
        benchmark = builder(**kwargs)
    except DatasetNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.benchmark}:")
    for line in describe(benchmark):
        print(" ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
