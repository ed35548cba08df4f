"""Seeding and random-number state: what makes a run repeatable and a resume exact.

Two kinds of randomness, kept apart on purpose:
- the *process* generators (python, numpy, torch CPU and CUDA) drive the model (dropout, init);
  their states go into every checkpoint;
- the *data* randomness (which clips, which crop, which flip) is derived from (run seed, epoch,
  sample index) by `sample_seed`, so it does not depend on the number of data-loader workers or
  ranks, and a run resumed in the middle of an epoch draws the same augmentations.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for the augmentation of sample `index` in `epoch` of a run seeded `seed`."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def deterministic_algorithms(enabled: bool) -> None:
    """Ask cuDNN and torch for deterministic kernels (slower; used by `optim.deterministic`)."""
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled
    torch.use_deterministic_algorithms(enabled, warn_only=True)
