"""The one way this library writes a file: atomically.

The content goes to a temporary file in the same directory, which is flushed, synced
and renamed over the target, so a reader (or a crash mid-write) sees either the old
file or the new one, never half of one. An ``OSError`` (full disk, no permission) is
re-raised naming the target and leaves no temporary file.

A temporary is named ``.<name>.<pid>.<32 hex digits>.tmp`` after the process writing
it. The next write of the same target removes the temporaries that a killed process
left behind, and only those: a temporary whose pid is a live process (another writer
of the same file, this process's other threads) is never touched, so two processes
writing one file each finish their own write (the last rename wins). Pids are those
of this machine; where they cannot be checked (not POSIX), no pid-named temporary is
removed. A temporary named without a pid (``.<name>.<32 hex>.tmp``, from versions
before the pid was part of the name) is removed as before.

With ``keep_previous=True`` the file being replaced stays as ``<name>.previous`` (a
hard link made before the rename, so the target itself is never missing): a reader
that finds the new file damaged can fall back to the one before it.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Union

__all__ = ["atomic_write", "atomic_write_text", "previous_path"]

PathLike = Union[str, "os.PathLike[str]"]


def previous_path(path: PathLike) -> Path:
    """Where :func:`atomic_write` keeps the file it replaced (``keep_previous``)."""
    path = Path(path)
    return path.with_name(path.name + ".previous")


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None], *,
                 keep_previous: bool = False) -> Path:
    """Call ``write(handle)`` on a temporary binary file, then rename it to ``path``.

    Missing parent directories are created. Returns ``path`` as a ``Path``.
    """
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        with open(temporary, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous and path.is_file():
            _keep_as_previous(path)
        os.replace(temporary, path)
    except BaseException as error:
        try:
            temporary.unlink()
        except FileNotFoundError:
            pass
        if isinstance(error, OSError) and not isinstance(error, FileExistsError):
            raise OSError(
                error.errno, f"could not write {path}: {error.strerror or error}; nothing "
                "was changed there (free disk space or fix the permissions, then retry)"
            ) from error
        raise
    _fsync_directory(directory)
    _remove_stale_temporaries(path)
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _keep_as_previous(path: Path) -> None:
    previous = previous_path(path)
    link = _temporary(previous)
    try:
        try:
            os.link(path, link)
        except OSError:  # a file system without hard links: copy instead
            shutil.copyfile(path, link)
        os.replace(link, previous)
    except BaseException:
        try:
            link.unlink()
        except FileNotFoundError:
            pass
        raise
    _remove_stale_temporaries(previous)


def _temporary(path: Path) -> Path:
    """A fresh temporary name for ``path``, in its directory, carrying this process's pid."""
    return path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of ``path`` that a killed process could not remove.

    A temporary of a live process (its pid in the name) is kept: it may be
    another writer's file in the middle of its write.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)\.)?[0-9a-f]{32}\.tmp")
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match is None or (match.group(1) and _is_alive(int(match.group(1)))):
            continue
        try:
            candidate.unlink()
        except OSError:
            pass


def _is_alive(pid: int) -> bool:
    """Whether ``pid`` may be a running process (True when it cannot be told)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only the existence is checked
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, someone else's
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
