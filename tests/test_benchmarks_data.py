"""The benchmark builders of avalanche_nispa.benchmarks, on real and synthetic data."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avalanche_nispa.benchmarks import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    ef_mnist,
    permuted_mnist,
    split_cifar10,
    split_cifar100,
    split_digits,
    split_fmnist,
    split_mnist,
)
from avalanche_nispa.data import DatasetNotFoundError

pytestmark = pytest.mark.usefixtures("isolated_data_env")


def stream_summary(stream):
    return [(list(e.task_labels), sorted(e.classes_in_this_experience)) for e in stream]


def first_batch(experience, size=64):
    x, y, t = next(iter(DataLoader(experience.dataset, batch_size=size)))
    return x, y, t


def pairs(n_tasks, per_task, task_labels=True):
    return [
        ([i if task_labels else 0], list(range(i * per_task, (i + 1) * per_task)))
        for i in range(n_tasks)
    ]


# --------------------------------------------------------------------------- #
# 8x8 digits (scikit-learn, embedded)


def test_split_digits_stream():
    bm = split_digits()
    assert stream_summary(bm.train_stream) == pairs(5, 2)
    assert stream_summary(bm.test_stream) == pairs(5, 2)
    for exp in bm.train_stream:
        x, y, t = first_batch(exp, size=1000)
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
        assert set(y.tolist()) == set(exp.classes_in_this_experience)
        assert set(t.tolist()) == {exp.current_experience}


def test_split_digits_is_a_seeded_stratified_partition():
    from sklearn.datasets import load_digits

    digits = load_digits()
    bm = split_digits(seed=3)
    train = [first_batch(e, size=10_000) for e in bm.train_stream]
    test = [first_batch(e, size=10_000) for e in bm.test_stream]
    x_all = torch.cat([b[0] for b in train + test]).flatten(1) * 16
    assert len(x_all) == len(digits.images)
    expected = torch.as_tensor(digits.data, dtype=torch.float32)
    assert torch.equal(_sorted_rows(x_all), _sorted_rows(expected))  # a partition
    test_counts = np.bincount(torch.cat([b[1] for b in test]).numpy(), minlength=10)
    class_counts = np.bincount(digits.target, minlength=10)
    assert np.all(np.abs(test_counts - 0.25 * class_counts) <= 1)  # stratified

    same = first_batch(split_digits(seed=3).test_stream[0], size=10_000)[0]
    other = first_batch(split_digits(seed=4).test_stream[0], size=10_000)[0]
    assert torch.equal(same, test[0][0])
    assert not torch.equal(
        _sorted_rows(other.flatten(1)), _sorted_rows(same.flatten(1))
    )


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    order = np.lexsort(x.numpy().T[::-1])
    return x[torch.as_tensor(order)]


def test_split_digits_options():
    assert stream_summary(
        split_digits(n_experiences=2, return_task_id=False).train_stream
    ) == (pairs(2, 5, task_labels=False))
    with pytest.raises(ValueError, match="must divide the 10 digit classes.*got 3"):
        split_digits(n_experiences=3)


# --------------------------------------------------------------------------- #
# Real MNIST / Fashion-MNIST from the IDX files (CI sets NISPA_DATA_DIR)


@pytest.fixture
def real_data(monkeypatch, shared_data_dir):
    monkeypatch.setenv("NISPA_DATA_DIR", str(shared_data_dir))
    return shared_data_dir


def test_real_split_mnist_through_avalanche(real_data):
    bm = split_mnist()
    assert len(bm.train_stream) == 5 and len(bm.test_stream) == 5
    assert stream_summary(bm.train_stream) == pairs(5, 2)
    assert stream_summary(bm.test_stream) == pairs(5, 2)
    assert sum(len(e.dataset) for e in bm.train_stream) == 60_000
    assert sum(len(e.dataset) for e in bm.test_stream) == 10_000
    for exp in (bm.train_stream[0], bm.test_stream[4]):
        x, y, t = first_batch(exp)
        assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9  # ToTensor only
        assert set(y.tolist()) <= set(exp.classes_in_this_experience)
        assert set(t.tolist()) == {exp.current_experience}
    # The files were unpacked into the cache, not next to the sources.
    assert sorted(p.name for p in (real_data / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


def test_real_split_mnist_class_order_and_task_ids(real_data):
    bm = split_mnist(
        fixed_class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0], return_task_id=False
    )
    assert stream_summary(bm.train_stream)[0] == ([0], [8, 9])
    assert {tuple(t) for t, _ in stream_summary(bm.train_stream)} == {(0,)}


def test_real_split_fmnist(real_data):
    if not (real_data / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("no Fashion-MNIST IDX files beside MNIST")
    bm = split_fmnist()
    assert stream_summary(bm.test_stream) == pairs(5, 2)
    x, y, t = first_batch(bm.test_stream[2])
    assert x.shape == (64, 1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    assert set(y.tolist()) <= {4, 5} and set(t.tolist()) == {2}


def test_real_permuted_mnist(real_data):
    bm = permuted_mnist(n_experiences=2, seed=1)
    assert stream_summary(bm.train_stream) == [
        ([0], list(range(10))),
        ([1], list(range(10))),
    ]
    (x0, y0, _), (x1, y1, t1) = first_batch(bm.test_stream[0]), first_batch(
        bm.test_stream[1]
    )
    assert torch.equal(y0, y1) and set(t1.tolist()) == {1}
    # Same images, pixels moved: equal as multisets, different in place.
    assert torch.equal(x0.flatten(1).sort(1).values, x1.flatten(1).sort(1).values)
    assert not torch.equal(x0, x1)
    assert 0.0 <= x1.min() and x1.max() <= 1.0


def test_real_permuted_mnist_on_a_budget(real_data):
    full = permuted_mnist(n_experiences=2, seed=3)
    budget = permuted_mnist(n_experiences=2, seed=3, train_samples_per_task=500)
    assert stream_summary(budget.train_stream) == stream_summary(full.train_stream)
    assert [len(e.dataset) for e in budget.train_stream] == [500, 500]
    assert [len(e.dataset) for e in budget.test_stream] == [10_000, 10_000]
    kept = torch.randperm(60_000, generator=torch.Generator().manual_seed(3))[:500]
    kept = kept.sort().values
    for task in (0, 1):
        for position in (0, 123, 499):
            x, y, t = budget.train_stream[task].dataset[position]
            fx, fy, ft = full.train_stream[task].dataset[int(kept[position])]
            assert torch.equal(x, fx) and (y, t) == (fy, ft) == (fy, task)
    x0 = budget.train_stream[0].dataset[7][0]
    x1 = budget.train_stream[1].dataset[7][0]
    assert not torch.equal(x0, x1) and torch.equal(x0.flatten().sort().values, x1.flatten().sort().values)
    with pytest.raises(ValueError, match="train_samples_per_task must be in 1..60000"):
        permuted_mnist(n_experiences=2, train_samples_per_task=0)


def test_harness_builds_the_long_permuted_stream(monkeypatch):
    """permuted_mnist_20x5k asks the builder for 20 tasks of 5,000 training images (the
    builder's sampling is test_real_permuted_mnist_on_a_budget's), and a configuration
    whose builder makes another number of experiences is refused."""
    from types import SimpleNamespace

    from avalanche_nispa import benchmarks as builders
    from avalanche_nispa.harness.configs import get_config
    from avalanche_nispa.harness.runner import load_benchmark

    calls = []

    def fake_permuted_mnist(*, n_experiences=10, seed=0, root=None, train_samples_per_task=None):
        calls.append(dict(n_experiences=n_experiences, seed=seed,
                          train_samples_per_task=train_samples_per_task))
        return SimpleNamespace(train_stream=[None] * n_experiences)

    monkeypatch.setattr(builders, "permuted_mnist", fake_permuted_mnist)
    cfg = get_config("permuted_mnist_20x5k")
    assert len(load_benchmark(cfg, seed=1).train_stream) == cfg.n_experiences == 20
    assert calls == [dict(n_experiences=20, seed=1, train_samples_per_task=5_000)]
    assert cfg.hparams("nispa")["accuracy_drop_threshold"] == 2.5
    wrong = dataclasses.replace(get_config("permuted_mnist_10k"), n_experiences=20)
    with pytest.raises(ValueError, match="configured for 20 experiences.*made 10"):
        load_benchmark(wrong, seed=1)


# --------------------------------------------------------------------------- #
# EF-MNIST and CIFAR on small synthetic files in torchvision's on-disk formats


def test_ef_mnist_on_synthetic_files(tmp_path, write_idx_dir):
    write_idx_dir(
        tmp_path / "EMNIST" / "raw", kind="emnist", n_classes=47, per_class=2, gz=False
    )
    write_idx_dir(
        tmp_path / "FashionMNIST" / "raw", n_classes=10, per_class=3, gz=False
    )

    bm = ef_mnist(root=tmp_path)

    sizes = (10, 13, 13, 11, 10)
    starts = np.cumsum((0,) + sizes)
    expected = [([i], list(range(starts[i], starts[i + 1]))) for i in range(5)]
    assert stream_summary(bm.train_stream) == expected
    assert stream_summary(bm.test_stream) == expected
    assert [len(e.dataset) for e in bm.train_stream] == [20, 26, 26, 22, 30]
    for exp in bm.train_stream:
        x, y, t = first_batch(exp)
        assert x.shape[1:] == (1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
        assert sorted(set(y.tolist())) == sorted(exp.classes_in_this_experience)
    # Fashion-MNIST class c is label 47 + c, with its own pixels.
    from torchvision.datasets import FashionMNIST

    clothes = FashionMNIST(str(tmp_path), train=True)
    x, y, _ = first_batch(bm.train_stream[4], size=30)
    assert y.tolist() == [47 + c for c in clothes.targets.tolist()]
    assert torch.equal((x[:, 0] * 255).round().to(torch.uint8), clothes.data)


def test_ef_mnist_without_emnist_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="'emnist' data set") as caught:
        ef_mnist()
    assert "NISPA_EMNIST_DIR" in str(caught.value)
    assert "EMNIST/raw/emnist-balanced-train-images-idx3-ubyte" in str(caught.value)


def _write_cifar(root: Path, n_classes: int, per_class: int) -> Path:
    """Pickled batches as the CIFAR 'python version' archives unpack to."""
    rng = np.random.default_rng(0)
    ten = n_classes == 10
    folder = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    folder.mkdir(parents=True)
    label_key = "labels" if ten else "fine_labels"
    files = (
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        if ten
        else ["train", "test"]
    )
    for name in files:
        labels = np.repeat(np.arange(n_classes), per_class).tolist()
        pixels = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": pixels, label_key: labels}, f)
    meta_name, meta_key = (
        ("batches.meta", "label_names") if ten else ("meta", "fine_label_names")
    )
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"class{i}" for i in range(n_classes)]}, f)
    return root


@pytest.fixture
def skip_cifar_checksums(monkeypatch):
    """Synthetic files cannot match torchvision's MD5 sums: check existence only."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(
        cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath)
    )


@pytest.mark.usefixtures("skip_cifar_checksums")
@pytest.mark.parametrize(
    "builder, n_classes, n_tasks, mean, std",
    [
        (split_cifar10, 10, 5, CIFAR10_MEAN, CIFAR10_STD),
        (split_cifar100, 100, 20, CIFAR100_MEAN, CIFAR100_STD),
    ],
    ids=["cifar10", "cifar100"],
)
def test_split_cifar_on_synthetic_files(
    tmp_path, builder, n_classes, n_tasks, mean, std
):
    root = _write_cifar(tmp_path, n_classes, per_class=1)
    bm = builder(root=root)
    per_task = n_classes // n_tasks
    assert stream_summary(bm.train_stream) == pairs(n_tasks, per_task)
    assert stream_summary(bm.test_stream) == pairs(n_tasks, per_task)

    from torchvision.datasets import CIFAR10, CIFAR100

    raw = (CIFAR10 if n_classes == 10 else CIFAR100)(str(root), train=False)
    x, y, t = first_batch(bm.test_stream[1])
    assert x.shape == (per_task, 3, 32, 32) and set(t.tolist()) == {1}
    # Normalised with the official statistics, and nothing else (no augmentation).
    pixels = torch.as_tensor(raw.data[y.numpy()]).permute(0, 3, 1, 2).float() / 255
    expected = (pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[
        :, None, None
    ]
    torch.testing.assert_close(x, expected)
    assert torch.equal(x, first_batch(bm.test_stream[1])[0])
    x_train = first_batch(bm.train_stream[0])[0]
    assert torch.equal(
        x_train, first_batch(bm.train_stream[0])[0]
    )  # no random crop/flip


def test_split_cifar_without_data_says_how_to_get_it():
    with pytest.raises(DatasetNotFoundError, match="'cifar10' data set") as caught:
        split_cifar10()
    message = str(caught.value)
    assert (
        "cifar-10-batches-py/data_batch_1" in message and "NISPA_CIFAR10_DIR" in message
    )


# --------------------------------------------------------------------------- #
# The class-incremental forms of EF-MNIST and Split CIFAR-10, trained by NISPA-Replay


def _replay_on(stream, model, mem_size, quiet_evaluator):
    from avalanche_nispa import NISPAReplay

    strategy = NISPAReplay(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                           mem_size=mem_size, train_mb_size=16, eval_mb_size=64, phase_epochs=1,
                           max_phases=3, evaluator=quiet_evaluator())
    for experience in stream.train_stream[:2]:
        strategy.train(experience)
    results = strategy.eval(stream.test_stream[:2])
    assert {"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000",
            "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001"} <= set(results)
    return strategy


def test_class_incremental_ef_mnist_trains_nispa_replay(tmp_path, write_idx_dir, quiet_evaluator):
    """EF-MNIST with ``return_task_id=False``: one task label, the same 10/13/13/11/10
    classes, one shared 57-unit output layer; the memory balances the 23 seen classes."""
    from avalanche_nispa.models import NISPAMLP

    write_idx_dir(tmp_path / "EMNIST" / "raw", kind="emnist", n_classes=47, per_class=4, gz=False)
    write_idx_dir(tmp_path / "FashionMNIST" / "raw", n_classes=10, per_class=4, gz=False)
    bm = ef_mnist(root=tmp_path, return_task_id=False)
    assert [t for t, _ in stream_summary(bm.train_stream)] == [[0]] * 5
    assert [len(c) for _, c in stream_summary(bm.train_stream)] == [10, 13, 13, 11, 10]
    torch.manual_seed(0)
    model = NISPAMLP(784, (32, 32), density=0.3, num_classes=57, class_incremental=True)
    strategy = _replay_on(bm, model, 46, quiet_evaluator)
    memory = strategy.replay_plugin.memory
    assert memory.classes == list(range(23)) and memory.per_class() == 2 and len(memory) == 46


@pytest.mark.usefixtures("skip_cifar_checksums")
def test_class_incremental_split_cifar10_trains_nispa_replay_on_the_cnn(tmp_path, quiet_evaluator):
    """Split CIFAR-10 with ``return_task_id=False`` under the paper CNN with one shared
    output layer; the task-incremental NISPA refuses the same stream, naming NISPA-Replay."""
    from avalanche_nispa import NISPA
    from avalanche_nispa.models import NISPACNN

    bm = split_cifar10(root=_write_cifar(tmp_path, 10, per_class=4), return_task_id=False)
    assert stream_summary(bm.train_stream) == [([0], [2 * i, 2 * i + 1]) for i in range(5)]
    torch.manual_seed(0)
    model = NISPACNN(num_classes=10, density=0.5, channels=(8, 8, 8, 8), fc_size=16,
                     class_incremental=True)
    strategy = _replay_on(bm, model, 20, quiet_evaluator)
    assert strategy.replay_plugin.memory.classes == [0, 1, 2, 3]
    task_model = NISPACNN(density=0.5, channels=(8, 8, 8, 8), fc_size=16)
    nispa = NISPA(model=task_model, optimizer=torch.optim.Adam(task_model.parameters()),
                  train_mb_size=16, evaluator=quiet_evaluator())
    with pytest.raises(ValueError, match="NISPAReplay"):
        nispa.train(bm.train_stream[0])
