"""What :mod:`avalanche_nispa.data` knows of each data set: its torchvision layout,
its environment variable, its IDX files and where system packages install it."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetSpec", "SPECS"]


@dataclass(frozen=True)
class DatasetSpec:
    """Where one data set's files live, in torchvision's layout and as IDX files."""

    name: str
    env_var: str
    # Files (relative to a root) whose presence means "torchvision can load it".
    layout_files: tuple[str, ...]
    # Folder (relative to a root) that holds the unpacked IDX files.
    raw_folder: str = ""
    # Base names of the IDX files in a source directory (with or without ".gz").
    idx_files: tuple[str, ...] = ()
    # Sub-directory of $NISPA_DATA_DIR holding the IDX files.
    data_dir_subdir: str = ""
    # System directories of IDX files (Debian packages).
    system_dirs: tuple[str, ...] = ()
    # Name of Avalanche's default download directory for this data set.
    avalanche_name: str = ""


_MNIST_IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_EMNIST_IDX = (
    "emnist-balanced-train-images-idx3-ubyte",
    "emnist-balanced-train-labels-idx1-ubyte",
    "emnist-balanced-test-images-idx3-ubyte",
    "emnist-balanced-test-labels-idx1-ubyte",
)


def _raw(folder: str, files: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{folder}/{f}" for f in files)


SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist",
            env_var="NISPA_MNIST_DIR",
            layout_files=_raw("MNIST/raw", _MNIST_IDX),
            raw_folder="MNIST/raw",
            idx_files=_MNIST_IDX,
            data_dir_subdir="mnist",
            avalanche_name="mnist",
        ),
        DatasetSpec(
            name="fashion_mnist",
            env_var="NISPA_FASHION_MNIST_DIR",
            layout_files=_raw("FashionMNIST/raw", _MNIST_IDX),
            raw_folder="FashionMNIST/raw",
            idx_files=_MNIST_IDX,
            data_dir_subdir="fashion-mnist",
            system_dirs=("/usr/share/datasets/fashion-mnist",),
            avalanche_name="fashionmnist",
        ),
        DatasetSpec(
            name="emnist",
            env_var="NISPA_EMNIST_DIR",
            layout_files=_raw("EMNIST/raw", _EMNIST_IDX),
            raw_folder="EMNIST/raw",
            idx_files=_EMNIST_IDX,
            data_dir_subdir="emnist",
            avalanche_name="emnist",
        ),
        DatasetSpec(
            name="cifar10",
            env_var="NISPA_CIFAR10_DIR",
            layout_files=_raw(
                "cifar-10-batches-py",
                tuple(f"data_batch_{i}" for i in range(1, 6))
                + ("test_batch", "batches.meta"),
            ),
            avalanche_name="cifar10",
        ),
        DatasetSpec(
            name="cifar100",
            env_var="NISPA_CIFAR100_DIR",
            layout_files=_raw("cifar-100-python", ("train", "test", "meta")),
            avalanche_name="cifar100",
        ),
    )
}
