"""Resolution order, unpacking and errors of avalanche_nispa.data."""

from __future__ import annotations

import gzip
import itertools
import os
from dataclasses import replace
from pathlib import Path

import pytest

from avalanche_nispa import data
from avalanche_nispa.data import (
    DATASET_NAMES,
    DatasetNotFoundError,
    dataset_env_var,
    default_cache_dir,
    resolve_dataset_root,
)

pytestmark = pytest.mark.usefixtures("isolated_data_env")

MNIST_RAW = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def make_layout(root: Path, folder: str = "MNIST") -> Path:
    """A torchvision-style root: the four unpacked MNIST files (contents irrelevant)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_RAW:
        (raw / name).write_bytes(name.encode())
    return root


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry below ``directory`` with its size, mtime and mode."""
    return {
        str(p.relative_to(directory)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            p.stat().st_mode,
        )
        for p in sorted(directory.rglob("*"))
    } | {".": (0, directory.stat().st_mtime_ns, directory.stat().st_mode)}


def fail_download(name: str, root: Path) -> None:
    raise AssertionError(f"unexpected download of {name} into {root}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test may reach torchvision's real download."""
    monkeypatch.setattr(data, "_torchvision_download", fail_download)


def test_names_and_env_vars():
    assert DATASET_NAMES == ("mnist", "fashion_mnist", "emnist", "cifar10", "cifar100")
    assert [dataset_env_var(n) for n in DATASET_NAMES] == [
        "NISPA_MNIST_DIR",
        "NISPA_FASHION_MNIST_DIR",
        "NISPA_EMNIST_DIR",
        "NISPA_CIFAR10_DIR",
        "NISPA_CIFAR100_DIR",
    ]
    with pytest.raises(
        ValueError, match="unknown data set 'svhn'.*mnist, fashion_mnist"
    ):
        resolve_dataset_root("svhn")


def test_default_cache_dir(monkeypatch, isolated_data_env):
    assert default_cache_dir() == Path(os.environ["NISPA_CACHE_DIR"])
    monkeypatch.delenv("NISPA_CACHE_DIR")
    assert (
        default_cache_dir() == isolated_data_env / ".cache" / "avalanche_nispa" / "data"
    )


def test_priority_of_every_combination(
    monkeypatch, tmp_path, write_idx_dir, isolated_data_env
):
    """For every subset of places holding MNIST, the first in the documented order wins.

    Order: root argument > $NISPA_MNIST_DIR > $NISPA_DATA_ROOT > download
    directory > Avalanche's directory > $NISPA_DATA_DIR/mnist (IDX files).
    """
    cache = Path(os.environ["NISPA_CACHE_DIR"])
    places = ["argument", "specific", "generic", "download_dir", "avalanche", "idx"]
    for n, present in enumerate(itertools.product([False, True], repeat=len(places))):
        base = tmp_path / f"case{n}"
        monkeypatch.setenv("NISPA_CACHE_DIR", str(base / "cache"))
        monkeypatch.setenv("HOME", str(base / "home"))
        roots = {p: base / p for p in places}
        roots["download_dir"] = base / "cache" / "torchvision"
        roots["avalanche"] = base / "home" / ".avalanche" / "data" / "mnist"
        for place, here in zip(places, present):
            if not here:
                roots[place].mkdir(parents=True, exist_ok=True)  # exists, but empty
            elif place == "idx":
                write_idx_dir(roots["idx"] / "mnist")
            else:
                make_layout(roots[place])
        monkeypatch.setenv("NISPA_MNIST_DIR", str(roots["specific"]))
        monkeypatch.setenv("NISPA_DATA_ROOT", str(roots["generic"]))
        monkeypatch.setenv("NISPA_DATA_DIR", str(roots["idx"]))

        expected = next((p for p, here in zip(places, present) if here), None)
        if expected is None:
            with pytest.raises(DatasetNotFoundError):
                resolve_dataset_root("mnist", roots["argument"])
            continue
        found = resolve_dataset_root("mnist", roots["argument"])
        if expected == "idx":
            assert found.parent == base / "cache" / "unpacked", present
            assert (found / "MNIST" / "raw" / MNIST_RAW[0]).is_file()
        else:
            assert found == roots[expected], (present, found)
    assert not cache.exists()  # every case used its own cache


def test_explicit_root_is_used_as_given(tmp_path):
    root = make_layout(tmp_path / "mine")
    assert resolve_dataset_root("mnist", root) == root
    assert resolve_dataset_root("mnist", str(root)) == root


def test_avalanche_config_location_is_honoured(tmp_path, isolated_data_env):
    elsewhere = tmp_path / "avalanche-data"
    make_layout(elsewhere / "fashionmnist", folder="FashionMNIST")
    (isolated_data_env / ".avalanche").mkdir()
    (isolated_data_env / ".avalanche" / "config.json").write_text(
        '{"dataset_location": "%s"}' % elsewhere
    )
    assert resolve_dataset_root("fashion_mnist") == elsewhere / "fashionmnist"


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_idx_dir_is_unpacked_into_the_cache_in_torchvision_layout(
    monkeypatch, tmp_path, write_idx_dir, gz
):
    source = write_idx_dir(tmp_path / "data" / "mnist", gz=gz)
    monkeypatch.setenv("NISPA_DATA_DIR", str(tmp_path / "data"))
    before = snapshot(source)

    root = resolve_dataset_root("mnist")

    assert root.parent == default_cache_dir() / "unpacked"
    assert root.name.startswith("mnist-")
    for name in MNIST_RAW:
        original = source / (name + ".gz" if gz else name)
        expected = (
            gzip.decompress(original.read_bytes()) if gz else original.read_bytes()
        )
        assert (root / "MNIST" / "raw" / name).read_bytes() == expected
    assert snapshot(source) == before  # the source directory is untouched
    # Nothing else left behind in the cache (no temporary directories).
    assert [p.name for p in root.parent.iterdir()] == [root.name]

    # torchvision reads the result without a download.
    from torchvision.datasets import MNIST

    assert len(MNIST(str(root), train=True)) == 20
    assert len(MNIST(str(root), train=False)) == 20


def test_unpacked_copy_is_reused_and_never_overwritten(
    monkeypatch, tmp_path, write_idx_dir
):
    source = write_idx_dir(tmp_path / "idx")
    first = resolve_dataset_root("mnist", source)
    marker = first / "MNIST" / "raw" / MNIST_RAW[0]
    marker.write_bytes(b"edited by the user")
    mtime = marker.stat().st_mtime_ns

    assert resolve_dataset_root("mnist", source) == first
    assert marker.read_bytes() == b"edited by the user"
    assert marker.stat().st_mtime_ns == mtime

    # Replaced source files get a fresh copy; the old one stays as it was.
    os.utime(source / (MNIST_RAW[0] + ".gz"), ns=(1, 1))
    second = resolve_dataset_root("mnist", source)
    assert second != first
    assert marker.read_bytes() == b"edited by the user"


def test_incomplete_unpacked_copy_is_reported_not_overwritten(tmp_path, write_idx_dir):
    source = write_idx_dir(tmp_path / "idx")
    target = resolve_dataset_root("mnist", source)
    (target / "MNIST" / "raw" / MNIST_RAW[3]).unlink()

    with pytest.raises(
        DatasetNotFoundError, match="exists but is incomplete; remove it"
    ):
        resolve_dataset_root("mnist", source)
    assert sorted(p.name for p in (target / "MNIST" / "raw").iterdir()) == sorted(
        MNIST_RAW[:3]
    )


def test_read_only_source_dir_is_fine(tmp_path, write_idx_dir):
    source = write_idx_dir(tmp_path / "idx")
    before = snapshot(source)
    source.chmod(0o555)
    try:
        root = resolve_dataset_root("mnist", source)
    finally:
        source.chmod(0o755)
    assert (root / "MNIST" / "raw" / MNIST_RAW[0]).is_file()
    assert snapshot(source) == before


def test_corrupt_idx_dir_falls_through_to_the_next_place(
    monkeypatch, tmp_path, write_idx_dir
):
    broken = write_idx_dir(tmp_path / "broken")
    (broken / (MNIST_RAW[0] + ".gz")).write_bytes(b"not gzip at all")
    write_idx_dir(tmp_path / "data" / "mnist")
    monkeypatch.setenv("NISPA_DATA_DIR", str(tmp_path / "data"))

    root = resolve_dataset_root("mnist", broken)

    assert (root / "MNIST" / "raw" / MNIST_RAW[0]).stat().st_size > 16
    # The failed attempt left nothing behind.
    assert len(list((default_cache_dir() / "unpacked").iterdir())) == 1


def test_system_dir_is_searched_after_data_dir(monkeypatch, tmp_path, write_idx_dir):
    system = write_idx_dir(tmp_path / "usr-share" / "fashion-mnist")
    spec = data._SPECS["fashion_mnist"]
    assert spec.system_dirs == (
        "/usr/share/datasets/fashion-mnist",
    )  # Debian's package
    monkeypatch.setitem(
        data._SPECS, "fashion_mnist", replace(spec, system_dirs=(str(system),))
    )

    from_system = resolve_dataset_root("fashion_mnist")
    assert (from_system / "FashionMNIST" / "raw" / MNIST_RAW[0]).is_file()

    write_idx_dir(tmp_path / "data" / "fashion-mnist", n_classes=3)
    monkeypatch.setenv("NISPA_DATA_DIR", str(tmp_path / "data"))
    from_data_dir = resolve_dataset_root("fashion_mnist")
    assert from_data_dir != from_system
    assert (
        from_data_dir / "FashionMNIST" / "raw" / MNIST_RAW[1]
    ).stat().st_size == 8 + 3 * 2


def test_emnist_idx_dir(monkeypatch, tmp_path, write_idx_dir):
    write_idx_dir(
        tmp_path / "data" / "emnist", kind="emnist", n_classes=47, per_class=1
    )
    monkeypatch.setenv("NISPA_DATA_DIR", str(tmp_path / "data"))
    root = resolve_dataset_root("emnist")

    from torchvision.datasets import EMNIST

    test = EMNIST(str(root), split="balanced", train=False)
    assert sorted(test.targets.tolist()) == list(range(47))


def test_download_only_when_allowed(monkeypatch, tmp_path):
    calls = []

    def fake_download(name, root):
        calls.append((name, root))
        make_layout(root, folder="MNIST")

    monkeypatch.setattr(data, "_torchvision_download", fake_download)
    with pytest.raises(DatasetNotFoundError, match=r"not attempted \(download=False\)"):
        resolve_dataset_root("mnist")
    assert calls == []

    target = default_cache_dir() / "torchvision"
    assert resolve_dataset_root("mnist", download=True) == target
    assert calls == [("mnist", target)]
    # Downloaded once: the next call finds it without downloading.
    assert resolve_dataset_root("mnist", download=True) == target
    assert len(calls) == 1

    # With an explicit place, the download goes there.
    mine = tmp_path / "mine"
    monkeypatch.setenv("NISPA_CACHE_DIR", str(tmp_path / "other-cache"))
    assert resolve_dataset_root("mnist", mine, download=True) == mine
    assert calls[-1] == ("mnist", mine)


def test_failed_download_is_reported(monkeypatch):
    def offline(name, root):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data, "_torchvision_download", offline)
    with pytest.raises(DatasetNotFoundError) as caught:
        resolve_dataset_root("cifar10", download=True)
    assert "failed (OSError('[Errno -3] Temporary failure" in str(caught.value)


def test_error_lists_every_place_and_how_to_provide_the_data(monkeypatch, tmp_path):
    monkeypatch.setenv("NISPA_MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("NISPA_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    cache = default_cache_dir()

    with pytest.raises(DatasetNotFoundError) as caught:
        resolve_dataset_root("mnist", tmp_path / "arg")
    error = caught.value
    message = str(error)

    assert isinstance(error, FileNotFoundError)
    assert error.tried == [
        f"root argument {tmp_path / 'arg'}: does not exist",
        f"$NISPA_MNIST_DIR {tmp_path / 'nowhere'}: does not exist",
        "$NISPA_DATA_ROOT: not given",
        f"download directory {cache / 'torchvision'}: does not exist",
        f"Avalanche's data directory {Path.home() / '.avalanche' / 'data' / 'mnist'}: "
        "does not exist",
        f"$NISPA_DATA_DIR/mnist {tmp_path / 'empty' / 'mnist'}: does not exist",
        f"download into {tmp_path / 'arg'}: not attempted (download=False)",
    ]
    assert message.startswith(
        "could not find the 'mnist' data set. Tried, in order:\n  1. "
    )
    for line in error.tried:
        assert line in message
    for hint in (
        "NISPA_MNIST_DIR",
        "NISPA_DATA_ROOT",
        "NISPA_DATA_DIR",
        "NISPA_CACHE_DIR",
        "MNIST/raw/train-images-idx3-ubyte",
        "train-images-idx3-ubyte.gz",
        "'mnist/' sub-directory",
        "download=True",
        str(cache / "unpacked"),
    ):
        assert hint in message, hint


def test_error_for_cifar_explains_its_layout(tmp_path):
    (tmp_path / "some-root").mkdir()
    with pytest.raises(DatasetNotFoundError) as caught:
        resolve_dataset_root("cifar100", tmp_path / "some-root")
    message = str(caught.value)
    assert (
        "no torchvision layout (missing cifar-100-python/train and 2 more)" in message
    )
    assert "IDX directories: none for cifar100" in message
    assert (
        "NISPA_CIFAR100_DIR" in message
        and "IDX files" not in message.split("To provide")[1]
    )


def test_error_for_fashion_mnist_names_the_debian_package(monkeypatch, tmp_path):
    spec = data._SPECS["fashion_mnist"]
    not_installed = tmp_path / "usr-share-datasets-fashion-mnist"
    monkeypatch.setitem(
        data._SPECS, "fashion_mnist", replace(spec, system_dirs=(str(not_installed),))
    )
    with pytest.raises(DatasetNotFoundError) as caught:
        resolve_dataset_root("fashion_mnist")
    assert f"system directory {not_installed}: does not exist" in caught.value.tried
    assert "apt-get install dataset-fashion-mnist" in str(caught.value)
