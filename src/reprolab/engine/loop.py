"""The one training loop and the one evaluation loop every recipe runs.

`fit(task, config, run_dir, ctx)` trains a task's model as the recipe's `optim:` block says and
leaves in `run_dir`: `checkpoints/last.pt` (resumable), `checkpoints/final.pt` (weights of the
last epoch) and `metrics.jsonl` (one line per epoch). Keys of `optim:` read here, beside those of
reprolab.engine.optim:

    batch_size          global batch (split evenly across ranks)
    epochs
    drop_last           drop the incomplete last training batch (default true)
    clip_grad_norm      max global L2 norm of the gradients (null: no clipping)
    clip_grad_value     max absolute gradient value (null: no clipping)
    amp                 none | bf16 | fp16 (CUDA only; fp16 uses a GradScaler)
    channels_last       NHWC memory format (CUDA only)
    num_workers         data-loader workers per process
    eval_every          evaluate every N epochs and after the last (0: never; `reprolab evaluate` does)
    checkpoint_every    also checkpoint every N iterations inside an epoch (0: epoch ends only)
    deterministic       deterministic cuDNN / torch kernels
    max_steps_per_epoch cap on iterations per epoch (null: the whole split); for smoke runs
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from reprolab.engine import checkpoint, distributed
from reprolab.engine.distributed import DistContext
from reprolab.engine.init_from import load_init_weights
from reprolab.engine.logs import JsonlLog, progress
from reprolab.engine.optim import build_optimizer, build_scheduler
from reprolab.engine.sampling import EpochSampler
from reprolab.engine.seeding import (
    deterministic_algorithms,
    rng_state,
    seed_everything,
    set_rng_state,
)
from reprolab.tasks.base import Task

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    final_checkpoint: Path | None = None
    wall_time_s: float = 0.0


class Precision:
    """Autocast and gradient scaling: real on CUDA, a no-op on CPU."""

    def __init__(self, amp: str | None, device: torch.device):
        amp = (amp or "none").lower()
        if amp not in ("none", *AMP_DTYPES):
            raise ValueError(f"optim.amp: {amp!r}; expected none, bf16 or fp16")
        self.enabled = amp != "none" and device.type == "cuda"
        self.dtype = AMP_DTYPES.get(amp)
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and amp == "fp16")

    def autocast(self):
        if not self.enabled:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def _loader(dataset: Dataset, sampler: EpochSampler, batch_size: int, task: Task, split: str,
            num_workers: int, device: torch.device, seed: int) -> DataLoader:
    # A dedicated generator: creating an iterator must not draw from the global torch RNG,
    # whose state is part of the exact-resume contract.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=task.collate_fn(split),  # type: ignore[arg-type]
        pin_memory=device.type == "cuda",
        drop_last=False,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )


def _per_rank(global_batch: int, ctx: DistContext) -> int:
    if global_batch % ctx.world_size:
        raise ValueError(
            f"optim.batch_size={global_batch} is not divisible by the {ctx.world_size} processes"
        )
    return global_batch // ctx.world_size


@torch.no_grad()
def evaluate(task: Task, model: nn.Module, dataset: Dataset, ctx: DistContext, *,
             batch_size: int | None = None, num_workers: int = 0, amp: str | None = None,
             channels_last: bool = False, show_progress: bool = True) -> dict[str, float]:
    """Every sample of `dataset` once (sharded across ranks); metrics computed on all of them."""
    model = checkpoint.unwrap(model)
    model.eval()
    per_rank = batch_size or task.eval_batch_size()
    sampler = EpochSampler(len(dataset), shuffle=False, rank=ctx.rank, world_size=ctx.world_size,
                           global_batch_size=per_rank * ctx.world_size)
    loader = _loader(dataset, sampler, per_rank, task, "eval", num_workers, ctx.device, seed=0)
    precision = Precision(amp, ctx.device)
    channels_last = channels_last and ctx.device.type == "cuda"
    outputs, targets = [], []
    for batch in progress(loader, enabled=show_progress and ctx.is_main, desc="eval"):
        batch = to_device(batch, ctx.device, channels_last)
        with precision.autocast():
            out, target = task.predict(model, batch)
        outputs.append(out.float().cpu())
        targets.append(target.cpu())
    indices = [index for index, _ in sampler]
    local = (indices, torch.cat(outputs) if outputs else None, torch.cat(targets) if targets else None)
    metrics: dict[str, float] | None = None
    gathered = distributed.all_gather_objects(ctx, local)
    if ctx.is_main:
        order = [i for part in gathered for i in part[0]]
        all_outputs = torch.cat([part[1] for part in gathered if part[1] is not None])
        all_targets = torch.cat([part[2] for part in gathered if part[2] is not None])
        permutation = torch.as_tensor(sorted(range(len(order)), key=order.__getitem__))
        metrics = task.compute_metrics(all_outputs[permutation], all_targets[permutation])
        metrics["samples"] = float(len(order))
    return distributed.broadcast_object(ctx, metrics)


def fit(task: Task, config: dict[str, Any], run_dir: Path, ctx: DistContext, *, seed: int,
        resume: bool = False, show_progress: bool = True, verbose: bool = False) -> FitResult:
    """Train `task` as `config["optim"]` says; `verbose` prints one summary line per epoch."""
    started = time.perf_counter()
    optim = config["optim"]
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    log = JsonlLog(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    on_cuda = ctx.device.type == "cuda"
    channels_last = bool(optim.get("channels_last", False)) and on_cuda
    deterministic_algorithms(bool(optim.get("deterministic", False)))

    seed_everything(seed)
    model = task.build_model().to(ctx.device)
    load_init_weights(model, config, verbose=verbose and ctx.is_main)  # a stage's `init_from`
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(task.param_groups(model), optim)

    train_set = task.build_dataset("train")
    eval_set = task.build_dataset("eval")
    global_batch = int(optim["batch_size"])
    per_rank = _per_rank(global_batch, ctx)
    sampler = EpochSampler(len(train_set), shuffle=True, seed=seed, rank=ctx.rank,
                           world_size=ctx.world_size, global_batch_size=global_batch,
                           drop_last=bool(optim.get("drop_last", True)))
    iters_per_epoch = sampler.global_batches()
    if optim.get("max_steps_per_epoch"):
        iters_per_epoch = min(iters_per_epoch, int(optim["max_steps_per_epoch"]))
    if iters_per_epoch == 0:
        raise ValueError(
            f"the training split has {len(train_set)} samples, fewer than one batch of "
            f"{global_batch}; lower optim.batch_size"
        )
    scheduler = build_scheduler(optimizer, optim, iters_per_epoch)
    precision = Precision(optim.get("amp"), ctx.device)
    epochs = int(optim["epochs"])
    num_workers = int(optim.get("num_workers", 0))
    clip_norm = optim.get("clip_grad_norm")
    clip_value = optim.get("clip_grad_value")
    checkpoint_every = int(optim.get("checkpoint_every", 0))
    eval_every = int(optim.get("eval_every", 1))

    start_epoch, start_batch, running = 0, 0, {"loss_sum": 0.0, "steps": 0}
    history: list[dict[str, Any]] = []
    last_path = ckpt_dir / checkpoint.LAST
    if resume and last_path.is_file():
        state = checkpoint.load(last_path, map_location=ctx.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        precision.scaler.load_state_dict(state["scaler"])
        start_epoch, start_batch = state["epoch"], state["batch"]
        running = state["running"]
        history = state["history"]
        set_rng_state(state["rng"][min(ctx.rank, len(state["rng"]) - 1)])
        log.truncate_after(start_epoch)
    elif resume and ctx.is_main:
        print(f"reprolab: no checkpoint at {last_path}; starting from scratch")

    train_model: nn.Module = model
    if ctx.distributed:
        train_model = DistributedDataParallel(model, device_ids=[ctx.device.index] if on_cuda else None)

    def save_last(epoch: int, batch: int) -> None:
        states = distributed.all_gather_objects(ctx, rng_state())
        if ctx.is_main:
            checkpoint.save(last_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": precision.scaler.state_dict(),
                "epoch": epoch, "batch": batch, "running": dict(running), "history": history,
                "rng": states, "config": config, "seed": seed,
            })
        distributed.barrier(ctx)

    for epoch in range(start_epoch, epochs):
        sampler.set_epoch(epoch, start_batch)
        loader = _loader(train_set, sampler, per_rank, task, "train", num_workers, ctx.device,
                         seed=seed * 1000 + epoch)
        train_model.train()
        epoch_started = time.perf_counter()
        bar = progress(loader, enabled=show_progress and ctx.is_main,
                       total=iters_per_epoch - start_batch, desc=f"epoch {epoch + 1}/{epochs}")
        for step, batch in enumerate(bar, start=start_batch):
            batch = to_device(batch, ctx.device, channels_last)
            with precision.autocast():
                loss = task.training_loss(train_model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch + 1}, iteration {step + 1}: loss is {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            precision.scaler.scale(loss).backward()
            if clip_norm is not None or clip_value is not None:
                precision.scaler.unscale_(optimizer)
                if clip_value is not None:
                    nn.utils.clip_grad_value_(model.parameters(), float(clip_value))
                if clip_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), float(clip_norm))
            precision.scaler.step(optimizer)
            precision.scaler.update()
            scheduler.step()
            running["loss_sum"] += float(loss.detach())
            running["steps"] += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{running['loss_sum'] / running['steps']:.4f}")
            if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < iters_per_epoch:
                save_last(epoch, step + 1)
            if step + 1 >= iters_per_epoch:
                break
        start_batch = 0

        record: dict[str, Any] = {
            "epoch": epoch,
            "split": "train",
            "loss": distributed.mean_across_ranks(ctx, running["loss_sum"] / max(1, running["steps"])),
            "lr": optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_mult", 1.0),
            "epoch_time_s": time.perf_counter() - epoch_started,
        }
        running = {"loss_sum": 0.0, "steps": 0}
        last_epoch = epoch + 1 == epochs
        if eval_every and ((epoch + 1) % eval_every == 0 or last_epoch):
            metrics = evaluate(task, model, eval_set, ctx, num_workers=num_workers,
                               amp=optim.get("amp"), channels_last=channels_last,
                               show_progress=show_progress)
            record.update({f"eval_{k}": v for k, v in metrics.items()})
        history.append(record)
        log.write(record)
        if ctx.is_main and verbose:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in record.items()
                              if isinstance(v, float) and math.isfinite(v) and k != "epoch_time_s")
            print(f"epoch {epoch + 1}/{epochs}: {shown}", flush=True)
        save_last(epoch + 1, 0)

    final_path = ckpt_dir / checkpoint.FINAL
    if ctx.is_main:
        checkpoint.save(final_path, {"model": model.state_dict(), "config": config, "seed": seed,
                                     "epochs": epochs, "history": history})
    distributed.barrier(ctx)
    return FitResult(history=history, final_checkpoint=final_path,
                     wall_time_s=time.perf_counter() - started)
