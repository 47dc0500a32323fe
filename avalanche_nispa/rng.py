"""The random number generators a run draws from, captured and restored as plain data:
torch (CPU and every CUDA device), NumPy's global generator and Python's ``random``.
Every state is a CPU tensor (a CUDA generator's too), and is put back from the CPU
whatever device a checkpoint was loaded onto.

Checkpoints store them; input checks that must look at data without changing what a
seeded run draws wrap themselves in :func:`preserved_rng`."""
from __future__ import annotations

import random
import warnings
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List

import numpy as np
import torch
from torch import Tensor

__all__ = ["capture_rng", "restore_rng", "preserved_rng"]


def capture_rng() -> Dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    cuda: List[Tensor] = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = list(torch.cuda.get_rng_state_all())
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64, device="cpu"),
            "gauss_next": gauss_next,
        },
    }


def restore_rng(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())  # a generator state is a CPU byte tensor
    if state["cuda"]:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(state["cuda"]):
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        else:
            warnings.warn(
                f"the checkpoint holds the RNG state of {len(state['cuda'])} CUDA device(s) "
                "that this machine does not have; CUDA random numbers will differ from "
                "the uninterrupted run",
                RuntimeWarning,
                stacklevel=3,
            )
    numpy_state = state["numpy"]
    np.random.set_state((
        numpy_state["kind"],
        numpy_state["keys"].cpu().numpy().astype(np.uint32),
        numpy_state["position"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()),
                     python["gauss_next"]))


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Every generator is back in its state on leaving the block."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)
