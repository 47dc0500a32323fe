"""Find the image data sets NISPA is evaluated on, without a download if possible.

Avalanche's ``SplitMNIST``, ``PermutedMNIST``, ``SplitFMNIST`` and
``SplitCIFAR10/100`` (and torchvision underneath) load a data set from a *root*
directory in torchvision's on-disk layout, and download it there when it is
missing. On a machine without internet that download fails. This module finds
(or builds) such a root from the places a user is likely to have the data:

1. an **explicit** place: the ``root`` argument, then the per-data-set
   environment variable (``NISPA_MNIST_DIR``, ``NISPA_FASHION_MNIST_DIR``,
   ``NISPA_EMNIST_DIR``, ``NISPA_CIFAR10_DIR``, ``NISPA_CIFAR100_DIR``), then the
   generic ``NISPA_DATA_ROOT``. Each may be a torchvision root or, for the
   MNIST family, a directory of the original IDX ``.gz`` files;
2. a default root that **already has torchvision's layout**: this module's
   download directory ``$NISPA_CACHE_DIR/torchvision`` and Avalanche's own
   download location (``~/.avalanche/data/<name>``);
3. a local **directory of IDX files** (MNIST family only):
   ``$NISPA_DATA_DIR/<mnist|fashion-mnist|emnist>`` and the directories of
   Debian packages (``dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist``);
4. a torchvision **download**, only when ``download=True``.

IDX files are unpacked once, atomically, into ``$NISPA_CACHE_DIR/unpacked/``
(default cache ``~/.cache/avalanche_nispa/data``), never into the source
directory and never over an existing file. When every place fails,
:class:`DatasetNotFoundError` lists them all and says how to provide the data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from .dataset_specs import SPECS as _SPECS
from .dataset_specs import DatasetSpec as _DatasetSpec

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "DATA_ROOT_ENV",
    "DATASET_NAMES",
    "DatasetNotFoundError",
    "dataset_env_var",
    "default_cache_dir",
    "resolve_dataset_root",
]

#: Generic explicit root (torchvision layout, or a directory of IDX files).
DATA_ROOT_ENV = "NISPA_DATA_ROOT"
#: A directory with one sub-directory of IDX ``.gz`` files per data set
#: (``mnist/``, ``fashion-mnist/``, ``emnist/``), like the project's shared data.
DATA_DIR_ENV = "NISPA_DATA_DIR"
#: Where IDX files are unpacked and downloads go.
CACHE_DIR_ENV = "NISPA_CACHE_DIR"

PathLike = Union[str, "os.PathLike[str]"]


#: The data sets :func:`resolve_dataset_root` knows (EMNIST means its balanced split).
DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a data set was found and none could be made.

    ``tried`` lists every place looked at, with the reason it was not used.
    """

    def __init__(self, message: str, tried: list[str]) -> None:
        super().__init__(message)
        self.tried = tried


def dataset_env_var(name: str) -> str:
    """Name of the environment variable that points at ``name``'s data."""
    return _spec(name).env_var


def default_cache_dir() -> Path:
    """``$NISPA_CACHE_DIR``, else ``~/.cache/avalanche_nispa/data``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "avalanche_nispa" / "data"


def resolve_dataset_root(
    name: str, root: Optional[PathLike] = None, *, download: bool = False
) -> Path:
    """Return a directory from which torchvision/Avalanche load ``name`` offline.

    The result can be passed as ``dataset_root=`` to Avalanche's classic
    benchmarks or as ``root=`` to the torchvision data set class. The search
    order is given in this module's docstring.

    Args:
        name: one of :data:`DATASET_NAMES` (``"mnist"``, ``"fashion_mnist"``,
            ``"emnist"``, ``"cifar10"``, ``"cifar100"``).
        root: an explicit place: a torchvision root, or (MNIST family) a
            directory of the IDX files. Tried before everything else.
        download: let torchvision download the data when no local copy is
            found (into ``root`` if given, else ``$NISPA_CACHE_DIR/torchvision``).

    Returns:
        A root directory in torchvision's layout.

    Raises:
        ValueError: ``name`` is not a known data set.
        DatasetNotFoundError: every place failed; the message lists them.

    Example:
        >>> from avalanche.benchmarks.classic import SplitMNIST
        >>> bm = SplitMNIST(5, dataset_root=resolve_dataset_root("mnist"))
    """
    spec = _spec(name)
    tried: list[str] = []

    # 1. Explicit places: the argument, then the specific and generic variables.
    explicit: list[tuple[str, Optional[str]]] = [
        ("root argument", None if root is None else os.fspath(root)),
        (f"${spec.env_var}", os.environ.get(spec.env_var) or None),
        (f"${DATA_ROOT_ENV}", os.environ.get(DATA_ROOT_ENV) or None),
    ]
    for label, value in explicit:
        if value is None:
            tried.append(f"{label}: not given")
            continue
        found = _use_place(spec, Path(value).expanduser(), label, tried)
        if found is not None:
            return found

    # 2. Default roots that may already hold torchvision's layout.
    for label, place in _default_roots(spec):
        if _has_layout(spec, place):
            return place
        tried.append(f"{label} {place}: {_missing_layout(spec, place)}")

    # 3. Local directories of IDX files, unpacked into the cache.
    for label, place in _idx_dirs(spec, tried):
        found = _use_idx_dir(spec, place, label, tried)
        if found is not None:
            return found

    # 4. A download, only when allowed.
    target = next(
        (Path(v).expanduser() for _, v in explicit if v is not None),
        default_cache_dir() / "torchvision",
    )
    if not download:
        tried.append(f"download into {target}: not attempted (download=False)")
    else:
        try:
            _torchvision_download(spec.name, target)
        except Exception as error:  # network, checksum or disk errors alike
            tried.append(f"download into {target}: failed ({error!r})")
        else:
            if _has_layout(spec, target):
                return target
            tried.append(
                f"download into {target}: finished but {_missing_layout(spec, target)}"
            )

    raise DatasetNotFoundError(_not_found_message(spec, tried), tried)


# --------------------------------------------------------------------------- #
# The steps


def _spec(name: str) -> _DatasetSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown data set {name!r}; expected one of {', '.join(DATASET_NAMES)}"
        ) from None


def _has_layout(spec: _DatasetSpec, root: Path) -> bool:
    return all((root / f).is_file() for f in spec.layout_files)


def _missing_layout(spec: _DatasetSpec, root: Path) -> str:
    if not root.exists():
        return "does not exist"
    if not root.is_dir():
        return "is not a directory"
    missing = [f for f in spec.layout_files if not (root / f).is_file()]
    return f"no torchvision layout (missing {missing[0]}" + (
        f" and {len(missing) - 1} more)" if len(missing) > 1 else ")"
    )


def _use_place(
    spec: _DatasetSpec, place: Path, label: str, tried: list[str]
) -> Optional[Path]:
    """An explicit place: a torchvision root, else a directory of IDX files."""
    if _has_layout(spec, place):
        return place
    if spec.idx_files and place.is_dir() and _idx_sources(spec, place) is not None:
        return _use_idx_dir(spec, place, label, tried)
    reason = _missing_layout(spec, place)
    if spec.idx_files and place.is_dir():
        reason += f", and no {spec.idx_files[0]}(.gz) IDX files"
    tried.append(f"{label} {place}: {reason}")
    return None


def _default_roots(spec: _DatasetSpec) -> list[tuple[str, Path]]:
    roots = [("download directory", default_cache_dir() / "torchvision")]
    if spec.avalanche_name:
        roots.append(
            ("Avalanche's data directory", _avalanche_data_dir() / spec.avalanche_name)
        )
    return roots


def _avalanche_data_dir() -> Path:
    """Avalanche's download location, read without importing avalanche (slow)."""
    config = Path.home() / ".avalanche" / "config.json"
    try:
        location = json.loads(config.read_text())["dataset_location"]
    except (OSError, ValueError, KeyError, TypeError):
        return Path.home() / ".avalanche" / "data"
    return Path(os.path.expanduser(location))


def _idx_dirs(spec: _DatasetSpec, tried: list[str]) -> list[tuple[str, Path]]:
    if not spec.idx_files:
        tried.append(
            f"IDX directories: none for {spec.name} (its files are not IDX; "
            f"use a torchvision root)"
        )
        return []
    places = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        places.append(
            (
                f"${DATA_DIR_ENV}/{spec.data_dir_subdir}",
                Path(data_dir).expanduser() / spec.data_dir_subdir,
            )
        )
    else:
        tried.append(f"${DATA_DIR_ENV}/{spec.data_dir_subdir}: {DATA_DIR_ENV} not set")
    places.extend(("system directory", Path(d)) for d in spec.system_dirs)
    return places


def _idx_sources(spec: _DatasetSpec, directory: Path) -> Optional[list[Path]]:
    """The IDX files in ``directory`` (``.gz`` preferred), or None if any is missing."""
    sources = []
    for base in spec.idx_files:
        for candidate in (directory / f"{base}.gz", directory / base):
            if candidate.is_file():
                sources.append(candidate)
                break
        else:
            return None
    return sources


def _use_idx_dir(
    spec: _DatasetSpec, directory: Path, label: str, tried: list[str]
) -> Optional[Path]:
    sources = _idx_sources(spec, directory) if directory.is_dir() else None
    if sources is None:
        reason = (
            "does not exist"
            if not directory.exists()
            else f"missing {spec.idx_files[0]}(.gz) or another of its 4 IDX files"
        )
        tried.append(f"{label} {directory}: {reason}")
        return None
    try:
        return _unpack(spec, sources)
    except (OSError, EOFError) as error:  # unreadable, corrupt gzip, disk full
        tried.append(f"{label} {directory}: could not unpack ({error!r})")
        return None


def _unpack(spec: _DatasetSpec, sources: list[Path]) -> Path:
    """Unpack ``sources`` once into a cache root of their own; return that root.

    The root's name depends on the sources' path, sizes and modification
    times, so a changed source gets a fresh root and nothing is overwritten.
    The files are written into a temporary directory that is then renamed,
    so a half-written root is never visible (and concurrent runs are safe).
    """
    key = hashlib.sha256()
    for source in sources:
        stat = source.stat()
        key.update(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    unpacked = default_cache_dir() / "unpacked"
    target = unpacked / f"{spec.name}-{key.hexdigest()[:12]}"
    if _has_layout(spec, target):
        return target
    if target.exists():
        raise FileExistsError(
            f"{target} exists but is incomplete; remove it to unpack again"
        )
    unpacked.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=unpacked))
    try:
        raw = staging / spec.raw_folder
        raw.mkdir(parents=True)
        for base, source in zip(spec.idx_files, sources):
            opener = gzip.open if source.suffix == ".gz" else open
            with opener(source, "rb") as src, open(raw / base, "xb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first: its copy is as good as ours.
            if not _has_layout(spec, target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _torchvision_download(name: str, root: Path) -> None:
    """Let torchvision fetch both splits of ``name`` into ``root``."""
    from torchvision import datasets

    classes = {
        "mnist": (datasets.MNIST, {}),
        "fashion_mnist": (datasets.FashionMNIST, {}),
        "emnist": (datasets.EMNIST, {"split": "balanced"}),
        "cifar10": (datasets.CIFAR10, {}),
        "cifar100": (datasets.CIFAR100, {}),
    }
    cls, kwargs = classes[name]
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        cls(str(root), train=train, download=True, **kwargs)


def _not_found_message(spec: _DatasetSpec, tried: list[str]) -> str:
    places = "\n".join(f"  {i}. {line}" for i, line in enumerate(tried, 1))
    layout = ", ".join(spec.layout_files[:2]) + ", ..."
    how = [
        f"  - set {spec.env_var} (or {DATA_ROOT_ENV}, or pass root=...) to a "
        f"directory in torchvision's layout, holding {layout}"
    ]
    if spec.idx_files:
        gz = ", ".join(f"{f}.gz" for f in spec.idx_files)
        how.append(
            f"  - or set {spec.env_var} to a directory holding the IDX files {gz}"
        )
        how.append(
            f"  - or set {DATA_DIR_ENV} to a directory whose "
            f"'{spec.data_dir_subdir}/' sub-directory holds those IDX files"
        )
        how.append(
            f"    (IDX files are unpacked once into {default_cache_dir() / 'unpacked'};"
            f" set {CACHE_DIR_ENV} to move it)"
        )
    if spec.system_dirs:
        how.append(
            f"  - or install the Debian package that provides {spec.system_dirs[0]}"
            " (apt-get install dataset-fashion-mnist)"
        )
    how.append(
        "  - or call resolve_dataset_root(..., download=True) on a machine with "
        "internet access (the benchmark builders take download=True too)"
    )
    return (
        f"could not find the {spec.name!r} data set. Tried, in order:\n{places}\n"
        "To provide it:\n" + "\n".join(how)
    )
