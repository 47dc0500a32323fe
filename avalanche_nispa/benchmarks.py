"""The task-incremental benchmarks NISPA is evaluated on, as Avalanche benchmarks.

Every builder returns an Avalanche ``NCScenario`` (``train_stream`` /
``test_stream``) whose experiences carry ``task_labels`` and
``classes_in_this_experience``, with class ids kept global (one shared output
layer, as in the official NISPA code). Data roots come from
:func:`avalanche_nispa.data.resolve_dataset_root`, so nothing is downloaded
unless ``download=True`` is passed.

Preprocessing follows the official code (``nispa-spec`` §4): MNIST-like inputs
are only converted to tensors in [0, 1]; CIFAR inputs are normalised with the
per-channel statistics below; there is no augmentation.

=================  ======  ===========================  ==============
builder            tasks   classes per task             input
=================  ======  ===========================  ==============
``split_digits``   5       2 (scikit-learn 8x8 digits)  1 x 8 x 8
``split_mnist``    5       2                            1 x 28 x 28
``split_fmnist``   5       2                            1 x 28 x 28
``permuted_mnist`` 10      10 (a pixel permutation)     1 x 28 x 28
``ef_mnist``       5       10/13/13/11/10 (57 in all)   1 x 28 x 28
``split_cifar10``  5       2                            3 x 32 x 32
``split_cifar100`` 20      5                            3 x 32 x 32
=================  ======  ===========================  ==============
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch.utils.data import Dataset
from torchvision import transforms

from avalanche.benchmarks import NCScenario, nc_benchmark
from avalanche.benchmarks.classic import (
    PermutedMNIST,
    SplitCIFAR10,
    SplitCIFAR100,
    SplitFMNIST,
    SplitMNIST,
)

from ._avalanche import tensor_classification_dataset
from .data import PathLike, resolve_dataset_root

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "EF_MNIST_CLASSES_PER_TASK",
    "EMNIST_BALANCED_CLASSES",
    "ef_mnist",
    "permuted_mnist",
    "split_cifar10",
    "split_cifar100",
    "split_digits",
    "split_fmnist",
    "split_mnist",
]

# Normalisation used by the official code (continuum 1.1.8 defaults).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)

#: Classes in EMNIST's balanced split; Fashion-MNIST labels are shifted by this.
EMNIST_BALANCED_CLASSES = 47
#: EF-MNIST tasks: digits, A-M, N-Z, 11 lowercase letters, Fashion-MNIST.
EF_MNIST_CLASSES_PER_TASK = (10, 13, 13, 11, 10)

_DIGITS_TEST_FRACTION = 0.25


def split_digits(
    *, n_experiences: int = 5, seed: int = 0, return_task_id: bool = True
) -> NCScenario:
    """Split 8x8 digits: scikit-learn's bundled digits, no download ever.

    1,797 images of 8x8 pixels, split per class into train (75 %) and test
    (25 %) with ``seed``; pixels scaled from 0..16 to [0, 1]; tensors of shape
    (1, 8, 8). Classes are assigned to experiences in the fixed order 0..9.

    Args:
        n_experiences: number of experiences; must divide 10.
        seed: seed of the train/test split.
        return_task_id: give experience ``i`` task label ``i`` (task-incremental);
            if False every experience has task label 0.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if n_experiences < 1 or 10 % n_experiences:
        raise ValueError(
            f"n_experiences must divide the 10 digit classes (1, 2, 5 or 10), "
            f"got {n_experiences}"
        )
    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).div_(16.0)
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=_DIGITS_TEST_FRACTION,
        random_state=seed,
        stratify=labels.numpy(),
    )

    def subset(idx) -> Dataset:
        idx = torch.as_tensor(idx)
        x, y = images[idx].unsqueeze(1), labels[idx]
        return tensor_classification_dataset(x, y, targets=y.tolist())

    return nc_benchmark(
        subset(train_idx),
        subset(test_idx),
        n_experiences,
        task_labels=return_task_id,
        shuffle=False,
        fixed_class_order=list(range(10)),
    )


def split_mnist(
    *,
    root: Optional[PathLike] = None,
    seed: int = 0,
    fixed_class_order: Optional[Sequence[int]] = range(10),
    return_task_id: bool = True,
    download: bool = False,
) -> NCScenario:
    """Split MNIST: 5 experiences of 2 digits, through Avalanche's ``SplitMNIST``.

    Args:
        root: data location (see :func:`~avalanche_nispa.data.resolve_dataset_root`).
        seed: seed of Avalanche's class shuffling, used only when
            ``fixed_class_order`` is None.
        fixed_class_order: order in which classes are assigned, two per
            experience; ``None`` shuffles them with ``seed``.
        return_task_id: task label ``i`` for experience ``i`` (else all 0).
        download: allow a torchvision download if no local copy is found.
    """
    # Avalanche's MNIST already yields float tensors in [0, 1] (what ToTensor
    # gives), so no transform keeps the official code's preprocessing.
    return _split_28x28(
        SplitMNIST,
        resolve_dataset_root("mnist", root, download=download),
        None,
        seed,
        fixed_class_order,
        return_task_id,
    )


def split_fmnist(
    *,
    root: Optional[PathLike] = None,
    seed: int = 0,
    fixed_class_order: Optional[Sequence[int]] = range(10),
    return_task_id: bool = True,
    download: bool = False,
) -> NCScenario:
    """Split Fashion-MNIST: 5 experiences of 2 classes (Avalanche's ``SplitFMNIST``).

    Arguments as in :func:`split_mnist`; inputs are ``ToTensor()`` only.
    """
    return _split_28x28(
        SplitFMNIST,
        resolve_dataset_root("fashion_mnist", root, download=download),
        transforms.ToTensor(),
        seed,
        fixed_class_order,
        return_task_id,
    )


def permuted_mnist(
    *,
    n_experiences: int = 10,
    root: Optional[PathLike] = None,
    seed: int = 0,
    download: bool = False,
    train_samples_per_task: Optional[int] = None,
) -> NCScenario:
    """Permuted MNIST: every experience is MNIST under its own pixel permutation.

    Task-incremental: experience ``i`` has task label ``i`` and all 10 classes
    (ids 0..9 in each experience). ``seed`` draws the permutations.

    Args:
        train_samples_per_task: if given, every training experience keeps only
            this many MNIST training images: the same images in every task
            (each under its task's permutation), drawn without replacement with
            ``seed``. The test experiences always keep all 10,000 test images.
            Papers that run many permutations on a budget do the same (GEM used
            1,000 images per task); the full 60,000 stay the default.
    """
    full = PermutedMNIST(
        n_experiences,
        return_task_id=True,
        seed=seed,
        train_transform=None,
        eval_transform=None,
        dataset_root=resolve_dataset_root("mnist", root, download=download),
    )
    if train_samples_per_task is None:
        return full
    available = len(full.train_stream[0].dataset)
    if not 0 < train_samples_per_task <= available:
        raise ValueError(
            f"train_samples_per_task must be in 1..{available} (the MNIST "
            f"training images), got {train_samples_per_task}"
        )
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(available, generator=generator)[:train_samples_per_task]
    keep = keep.sort().values.tolist()
    return nc_benchmark(
        [experience.dataset.subset(keep) for experience in full.train_stream],
        [experience.dataset for experience in full.test_stream],
        n_experiences=n_experiences,
        task_labels=True,
        shuffle=False,
        class_ids_from_zero_in_each_exp=True,
        one_dataset_per_exp=True,
    )


def ef_mnist(*, root: Optional[PathLike] = None, download: bool = False,
             return_task_id: bool = True) -> NCScenario:
    """EF-MNIST: EMNIST (balanced) followed by Fashion-MNIST, 57 classes.

    As in the official code: Fashion-MNIST labels are shifted by 47, classes are
    taken in sorted id order and cut into 5 tasks of 10/13/13/11/10 classes
    (digits, A-M, N-Z, lowercase letters, clothes); inputs are ``ToTensor()``
    only. EMNIST images are used as stored (transposed), like the official code.

    Args:
        root: a place holding *both* data sets, or None to resolve each one
            separately (``NISPA_EMNIST_DIR``, ``NISPA_FASHION_MNIST_DIR``, ...).
        download: allow torchvision downloads if no local copy is found.
        return_task_id: task label ``i`` for experience ``i`` (task-incremental,
            NISPA); ``False`` gives every experience task label 0, the
            class-incremental stream of NISPA-Replay (replay spec §8).
    """
    from torchvision.datasets import EMNIST, FashionMNIST

    emnist_root = resolve_dataset_root("emnist", root, download=download)
    fmnist_root = resolve_dataset_root("fashion_mnist", root, download=download)
    to_tensor = transforms.ToTensor()

    def both(train: bool) -> Dataset:
        letters = EMNIST(
            str(emnist_root), split="balanced", train=train, transform=to_tensor
        )
        clothes = FashionMNIST(str(fmnist_root), train=train, transform=to_tensor)
        return _ShiftedConcat([(letters, 0), (clothes, EMNIST_BALANCED_CLASSES)])

    n_classes = EMNIST_BALANCED_CLASSES + 10
    return nc_benchmark(
        both(True),
        both(False),
        len(EF_MNIST_CLASSES_PER_TASK),
        task_labels=return_task_id,
        shuffle=False,
        fixed_class_order=list(range(n_classes)),
        per_exp_classes=dict(enumerate(EF_MNIST_CLASSES_PER_TASK)),
    )


def split_cifar10(
    *, root: Optional[PathLike] = None, download: bool = False, return_task_id: bool = True
) -> NCScenario:
    """Split CIFAR-10: 5 tasks of 2 classes, {0,1} ... {8,9}; normalised only.

    ``return_task_id=False`` gives every experience task label 0 (class-incremental).
    """
    return SplitCIFAR10(
        5,
        return_task_id=return_task_id,
        fixed_class_order=list(range(10)),
        train_transform=_normalised(CIFAR10_MEAN, CIFAR10_STD),
        eval_transform=_normalised(CIFAR10_MEAN, CIFAR10_STD),
        dataset_root=resolve_dataset_root("cifar10", root, download=download),
    )


def split_cifar100(
    *, root: Optional[PathLike] = None, download: bool = False, return_task_id: bool = True
) -> NCScenario:
    """Split CIFAR-100: 20 tasks of 5 classes in id order; normalised only.

    ``return_task_id=False`` gives every experience task label 0 (class-incremental).
    """
    return SplitCIFAR100(
        20,
        return_task_id=return_task_id,
        fixed_class_order=list(range(100)),
        train_transform=_normalised(CIFAR100_MEAN, CIFAR100_STD),
        eval_transform=_normalised(CIFAR100_MEAN, CIFAR100_STD),
        dataset_root=resolve_dataset_root("cifar100", root, download=download),
    )


# --------------------------------------------------------------------------- #


def _split_28x28(generator, dataset_root, transform, seed, class_order, return_task_id):
    """Avalanche's SplitMNIST/SplitFMNIST: 5 experiences of 2 classes."""
    return generator(
        5,
        return_task_id=return_task_id,
        seed=seed,
        fixed_class_order=(
            None if class_order is None else [int(c) for c in class_order]
        ),
        train_transform=transform,
        eval_transform=transform,
        dataset_root=dataset_root,
    )


def _normalised(mean: tuple[float, ...], std: tuple[float, ...]) -> transforms.Compose:
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])


class _ShiftedConcat(Dataset):
    """Data sets one after another, each one's labels shifted by an offset.

    Exposes ``targets`` (what Avalanche's generators split classes by) and
    returns the same shifted labels from ``__getitem__``.
    """

    def __init__(self, parts: Sequence[tuple[Dataset, int]]) -> None:
        self._parts = [dataset for dataset, _ in parts]
        self._offsets = [offset for _, offset in parts]
        self._ends = torch.cumsum(torch.tensor([len(d) for d in self._parts]), 0)
        self.targets = torch.cat(
            [torch.as_tensor(d.targets) + off for d, off in parts]
        ).tolist()

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, index: int):
        part = int(torch.searchsorted(self._ends, index, right=True))
        start = int(self._ends[part - 1]) if part else 0
        x, y = self._parts[part][index - start]
        return x, int(y) + self._offsets[part]
