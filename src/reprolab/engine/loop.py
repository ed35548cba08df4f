"""The one training loop and the one evaluation loop every recipe runs.

`fit(task, config, run_dir, ctx)` trains a task's model as the recipe's `optim:` block
(reprolab.config.TrainOptions) says and leaves in `run_dir`: `checkpoints/last.pt`
(resumable), `checkpoints/final.pt` (weights of the last epoch) and `metrics.jsonl` (one line per
epoch). Reading top to bottom: `fit` builds the model (and applies `model.init_from`), the
optimizer and schedule, restores a checkpoint, then runs `train_one_epoch` and `evaluate` per
epoch, as torchvision's reference scripts do.
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

from reprolab.config import TrainOptions
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


def channels_last_(model: nn.Module) -> nn.Module:
    """Make the 4-d weights (2-d convolutions) channels_last in place. `model.to(memory_format=
    torch.channels_last)` raises on the 5-d weights of SELFY's 3-d convolutions."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return model


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
def predict_all(task: Task, model: nn.Module, dataset: Dataset, ctx: DistContext, *,
                batch_size: int | None = None, num_workers: int = 0, amp: str | None = None,
                channels_last: bool = False, show_progress: bool = True):
    """(outputs, targets) of `task.predict` for every sample of `dataset`, in dataset order:
    sharded across ranks, gathered on rank 0 (the other ranks get None)."""
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
    gathered = distributed.all_gather_objects(ctx, local)
    if not ctx.is_main:
        return None
    order = [i for part in gathered for i in part[0]]
    all_outputs = torch.cat([part[1] for part in gathered if part[1] is not None])
    all_targets = torch.cat([part[2] for part in gathered if part[2] is not None])
    permutation = torch.as_tensor(sorted(range(len(order)), key=order.__getitem__))
    return all_outputs[permutation], all_targets[permutation]


# Random outputs are scored this many times for the chance level: on a large split one draw is
# already close to the expectation, and retrieval over a full test set is not free.
CHANCE_DRAWS_SMALL, CHANCE_DRAWS_LARGE, LARGE_SPLIT = 8, 1, 5000


def evaluate(task: Task, model: nn.Module, dataset: Dataset, ctx: DistContext, *,
             batch_size: int | None = None, num_workers: int = 0, amp: str | None = None,
             channels_last: bool = False, show_progress: bool = True) -> dict[str, float]:
    """Every sample of `dataset` once (sharded across ranks); metrics computed on all of them."""
    return _evaluate(task, model, dataset, ctx, False, batch_size=batch_size, num_workers=num_workers,
                     amp=amp, channels_last=channels_last, show_progress=show_progress)[0]


def evaluate_with_predictions(task: Task, model: nn.Module, dataset: Dataset, ctx: DistContext, *,
                              batch_size: int | None = None, num_workers: int = 0, amp: str | None = None,
                              channels_last: bool = False, show_progress: bool = True):
    """As `evaluate`, and the task's per-sample predictions (reprolab.predictions.Predictions)
    from the same outputs: (metrics, predictions); predictions is None on ranks other than 0.
    The metrics add each metric's chance level as `chance:<metric>` (Task.chance_metrics)."""
    return _evaluate(task, model, dataset, ctx, True, batch_size=batch_size, num_workers=num_workers,
                     amp=amp, channels_last=channels_last, show_progress=show_progress)


def _evaluate(task: Task, model: nn.Module, dataset: Dataset, ctx: DistContext, per_sample: bool,
              **options) -> tuple[dict[str, float], Any]:
    predictions = predict_all(task, model, dataset, ctx, **options)
    metrics: dict[str, float] | None = None
    samples = None
    if ctx.is_main:
        outputs, targets = predictions
        metrics = task.compute_metrics(outputs, targets)
        metrics["samples"] = float(len(outputs))
        if per_sample:
            draws = CHANCE_DRAWS_SMALL if len(outputs) <= LARGE_SPLIT else CHANCE_DRAWS_LARGE
            chance = task.chance_metrics(outputs, targets, draws=draws)
            metrics.update({f"chance:{name}": value for name, value in chance.items()})
            samples = task.sample_predictions(dataset, outputs, targets)
    return distributed.broadcast_object(ctx, metrics), samples


@dataclass
class TrainState:
    """What one epoch needs besides the model: optimizer, schedule, precision and running loss."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    running: dict[str, float] = field(default_factory=lambda: {"loss_sum": 0.0, "steps": 0})


def train_one_epoch(task: Task, train_model: nn.Module, model: nn.Module, loader: DataLoader,
                    state: TrainState, options: TrainOptions, ctx: DistContext, *, epoch: int,
                    start_batch: int, iters_per_epoch: int, save_last, show_progress: bool) -> None:
    """One pass over `loader` (from `start_batch` on, after a resume inside the epoch)."""
    train_model.train()
    channels_last = options.channels_last and ctx.device.type == "cuda"
    precision, running = state.precision, state.running
    bar = progress(loader, enabled=show_progress and ctx.is_main, total=iters_per_epoch - start_batch,
                   desc=f"epoch {epoch + 1}/{options.epochs}")
    for step, batch in enumerate(bar, start=start_batch):
        batch = to_device(batch, ctx.device, channels_last)
        with precision.autocast():
            loss = task.training_loss(train_model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch + 1}, iteration {step + 1}: loss is {loss.item()}")
        state.optimizer.zero_grad(set_to_none=True)
        precision.scaler.scale(loss).backward()
        if options.clip_grad_norm is not None or options.clip_grad_value is not None:
            precision.scaler.unscale_(state.optimizer)
            if options.clip_grad_value is not None:
                nn.utils.clip_grad_value_(model.parameters(), options.clip_grad_value)
            if options.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), options.clip_grad_norm)
        precision.scaler.step(state.optimizer)
        precision.scaler.update()
        state.scheduler.step()
        running["loss_sum"] += float(loss.detach())
        running["steps"] += 1
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{running['loss_sum'] / running['steps']:.4f}")
        every = options.checkpoint_every
        if every and (step + 1) % every == 0 and step + 1 < iters_per_epoch:
            save_last(epoch, step + 1)
        if step + 1 >= iters_per_epoch:
            break


def fit(task: Task, config: dict[str, Any], run_dir: Path, ctx: DistContext, *, seed: int,
        resume: bool = False, show_progress: bool = True, verbose: bool = False) -> FitResult:
    """Train `task` as `config["optim"]` says; `verbose` prints one summary line per epoch."""
    started = time.perf_counter()
    options = TrainOptions.parse(config["optim"], where="optim", recipe=config.get("recipe"))
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    log = JsonlLog(run_dir / "metrics.jsonl", enabled=ctx.is_main)
    on_cuda = ctx.device.type == "cuda"
    channels_last = options.channels_last and on_cuda
    deterministic_algorithms(options.deterministic)
    if on_cuda and options.cudnn_benchmark and not options.deterministic:
        torch.backends.cudnn.benchmark = True

    seed_everything(seed)
    model = task.build_model()
    load_init_weights(model, config, verbose=verbose and ctx.is_main)  # init_from: another run's weights
    model = model.to(ctx.device)
    if channels_last:
        channels_last_(model)
    optimizer = build_optimizer(task.param_groups(model), options, fused=options.fused_optimizer and on_cuda)

    train_set = task.build_dataset("train")
    eval_set = task.build_dataset("eval")
    per_rank = _per_rank(options.batch_size, ctx)
    sampler = EpochSampler(len(train_set), shuffle=True, seed=seed, rank=ctx.rank,
                           world_size=ctx.world_size, global_batch_size=options.batch_size,
                           drop_last=options.drop_last)
    iters_per_epoch = sampler.global_batches()
    if options.max_steps_per_epoch:
        iters_per_epoch = min(iters_per_epoch, options.max_steps_per_epoch)
    if iters_per_epoch == 0:
        raise ValueError(
            f"the training split has {len(train_set)} samples, fewer than one batch of "
            f"{options.batch_size}; lower optim.batch_size"
        )
    state = TrainState(optimizer, build_scheduler(optimizer, options, iters_per_epoch),
                       Precision(options.amp, ctx.device))

    start_epoch, start_batch = 0, 0
    history: list[dict[str, Any]] = []
    last_path = ckpt_dir / checkpoint.LAST
    if resume and last_path.is_file():
        saved = checkpoint.load(last_path, map_location=ctx.device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state.scheduler.load_state_dict(saved["scheduler"])
        state.precision.scaler.load_state_dict(saved["scaler"])
        start_epoch, start_batch = saved["epoch"], saved["batch"]
        state.running = saved["running"]
        history = saved["history"]
        set_rng_state(saved["rng"][min(ctx.rank, len(saved["rng"]) - 1)])
        log.truncate_after(start_epoch)
    elif resume and ctx.is_main:
        print(f"reprolab: no checkpoint at {last_path}; starting from scratch")

    train_model: nn.Module = model
    if ctx.distributed:
        train_model = DistributedDataParallel(model, device_ids=[ctx.device.index] if on_cuda else None)
    if options.compile and on_cuda:  # the loss and the optimizer step stay eager
        train_model = torch.compile(train_model)

    def save_last(epoch: int, batch: int) -> None:
        states = distributed.all_gather_objects(ctx, rng_state())
        if ctx.is_main:
            checkpoint.save(last_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": state.scheduler.state_dict(), "scaler": state.precision.scaler.state_dict(),
                "epoch": epoch, "batch": batch, "running": dict(state.running), "history": history,
                "rng": states, "config": config, "seed": seed,
            })
        distributed.barrier(ctx)

    for epoch in range(start_epoch, options.epochs):
        sampler.set_epoch(epoch, start_batch)
        loader = _loader(train_set, sampler, per_rank, task, "train", options.num_workers, ctx.device,
                         seed=seed * 1000 + epoch)
        epoch_started = time.perf_counter()
        train_one_epoch(task, train_model, model, loader, state, options, ctx, epoch=epoch,
                        start_batch=start_batch, iters_per_epoch=iters_per_epoch, save_last=save_last,
                        show_progress=show_progress)
        start_batch = 0
        running = state.running
        record: dict[str, Any] = {
            "epoch": epoch,
            "split": "train",
            "loss": distributed.mean_across_ranks(ctx, running["loss_sum"] / max(1, running["steps"])),
            "lr": optimizer.param_groups[0]["lr"] / optimizer.param_groups[0].get("lr_mult", 1.0),
            "epoch_time_s": time.perf_counter() - epoch_started,
        }
        state.running = {"loss_sum": 0.0, "steps": 0}
        last_epoch = epoch + 1 == options.epochs
        if options.eval_every and ((epoch + 1) % options.eval_every == 0 or last_epoch):
            metrics = evaluate(task, model, eval_set, ctx, num_workers=options.num_workers,
                               amp=options.amp, channels_last=channels_last, show_progress=show_progress)
            record.update({f"eval_{k}": v for k, v in metrics.items()})
        history.append(record)
        log.write(record)
        if ctx.is_main and verbose:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in record.items()
                              if isinstance(v, float) and math.isfinite(v) and k != "epoch_time_s")
            print(f"epoch {epoch + 1}/{options.epochs}: {shown}", flush=True)
        save_last(epoch + 1, 0)

    final_path = ckpt_dir / checkpoint.FINAL
    if ctx.is_main:
        checkpoint.save(final_path, {"model": model.state_dict(), "config": config, "seed": seed,
                                     "epochs": options.epochs, "history": history})
    distributed.barrier(ctx)
    return FitResult(history=history, final_checkpoint=final_path,
                     wall_time_s=time.perf_counter() - started)
