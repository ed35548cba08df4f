"""Optimizers and learning-rate schedules, built from a recipe's `optim:` block.

Parameter groups come from the task (usually from the model): a list of dicts with `params` and
optional `lr_mult` and `wd_mult` (`decay_mult`, the TSN spelling, is accepted too) and `name`.
A group's learning rate is `optim.lr * lr_mult` and its weight decay `optim.weight_decay *
wd_mult`; the schedule then scales every group's learning rate by the same factor, per iteration.

The keys of `optim:` and their defaults: reprolab.config.TrainOptions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from reprolab.config import TrainOptions


def _groups(model_or_groups: nn.Module | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(model_or_groups, nn.Module):
        return [{"params": [p for p in model_or_groups.parameters() if p.requires_grad], "name": "all"}]
    groups = []
    for group in model_or_groups:
        group = dict(group)
        group["params"] = [p for p in group["params"] if p.requires_grad]
        if group["params"]:
            groups.append(group)
    if not groups:
        raise ValueError("no trainable parameters in any parameter group")
    return groups


def build_optimizer(model_or_groups: nn.Module | Iterable[dict[str, Any]],
                    optim: TrainOptions | dict[str, Any], *, fused: bool = False) -> torch.optim.Optimizer:
    """SGD or AdamW over the groups; `fused`: torch's fused CUDA kernels (same update rule)."""
    optim = TrainOptions.of(optim)
    extra = {"fused": True} if fused else {}
    lr, weight_decay = optim.lr, optim.weight_decay
    groups = []
    for group in _groups(model_or_groups):
        lr_mult = float(group.pop("lr_mult", 1.0))
        wd_mult = float(group.pop("wd_mult", group.pop("decay_mult", 1.0)))
        groups.append({**group, "lr": lr * lr_mult, "weight_decay": weight_decay * wd_mult,
                       "lr_mult": lr_mult, "wd_mult": wd_mult})
    if optim.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim.momentum, nesterov=optim.nesterov,
                               weight_decay=weight_decay, **extra)
    if optim.name == "adam":  # weight decay added to the gradient (coupled L2), as torch.optim.Adam
        return torch.optim.Adam(groups, lr=lr, betas=optim.betas, eps=optim.eps, weight_decay=weight_decay,
                                **extra)
    return torch.optim.AdamW(groups, lr=lr, betas=optim.betas, eps=optim.eps, weight_decay=weight_decay,
                             **extra)


def lr_factor(optim: TrainOptions | dict[str, Any], iters_per_epoch: int) -> Callable[[int], float]:
    """The learning-rate multiplier at iteration `it` (0-based, counted over the whole run)."""
    optim = TrainOptions.of(optim)
    total = max(1, optim.epochs * iters_per_epoch)
    warmup = int(round(optim.warmup_epochs * iters_per_epoch))
    start = optim.warmup_start_factor if optim.warmup_start_factor is not None else (0.0 if warmup else 1.0)
    schedule = optim.schedule
    if schedule == "step":
        milestones = sorted(m * iters_per_epoch for m in optim.milestones)
        gamma = optim.gamma

        def after_warmup(it: int) -> float:
            return gamma ** sum(it >= m for m in milestones)
    elif schedule == "cosine":
        floor = optim.min_lr_ratio

        def after_warmup(it: int) -> float:
            progress = min(1.0, (it - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    elif schedule == "inverse":
        decay = optim.decay

        def after_warmup(it: int) -> float:
            return 1.0 / (1.0 + (it - warmup) * decay)
    elif schedule == "poly":  # psa/irn's PolyOptimizer: lr0 * (1 - step / max_step) ** power
        power = optim.power

        def after_warmup(it: int) -> float:
            return max(0.0, 1 - (it - warmup) / max(1, total - warmup)) ** power
    else:  # constant

        def after_warmup(it: int) -> float:
            return 1.0

    def factor(it: int) -> float:
        if it < warmup:
            return start + (1 - start) * it / warmup
        return after_warmup(it)

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, optim: TrainOptions | dict[str, Any],
                    iters_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration schedule: call `.step()` after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(optim, iters_per_epoch))
