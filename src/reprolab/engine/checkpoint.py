"""Checkpoints that resume exactly: model, optimizer, schedule, scaler, RNG states and position.

A run directory holds `checkpoints/last.pt` (rewritten atomically at the end of every epoch and
every `optim.checkpoint_every` iterations) and `checkpoints/final.pt` (the weights evaluation
reads: the last epoch's, as the official SELFY and MotionSqueeze test scripts use).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from reprolab import atomic

LAST = "last.pt"
FINAL = "final.pt"


def save(path: Path, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically: a crash leaves the previous checkpoint intact."""
    with atomic.atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    return Path(path)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here (train first, or check the run directory)")
    # The checkpoint holds RNG states (numpy arrays, tuples), so it is not weights-only.
    return torch.load(path, map_location=map_location, weights_only=False)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
