"""Distributed data parallel under `torchrun`, and the same code single-process.

`torchrun --nproc-per-node N -m reprolab.cli train ...` sets RANK, LOCAL_RANK and WORLD_SIZE;
`setup()` then joins the process group (env:// init; nccl on GPU, gloo on CPU). Without those
variables the run is one process and every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from reprolab.config import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(requested: str | None) -> torch.device:
    """`cuda` when asked for (or, with no request, when available); `cpu` otherwise."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {requested}: no CUDA device is available here; use --device cpu")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ConfigError(f"--device {requested!r}: expected cpu or cuda")
    return torch.device(requested)


def setup(requested_device: str | None = None) -> DistContext:
    """Join the torchrun process group if there is one; return where this process works."""
    device = resolve_device(requested_device)
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return DistContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            init_method="env://",
            rank=rank,
            world_size=world_size,
        )
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (a one-element list when not distributed)."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_across_ranks(ctx: DistContext, value: float) -> float:
    if not ctx.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world_size
