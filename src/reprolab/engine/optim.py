"""Optimizers and learning-rate schedules, built from a recipe's `optim:` block.

Parameter groups come from the task (usually from the model): a list of dicts with `params` and
optional `lr_mult` and `wd_mult` (`decay_mult`, the TSN spelling, is accepted too) and `name`.
A group's learning rate is `optim.lr * lr_mult` and its weight decay `optim.weight_decay *
wd_mult`; the schedule then scales every group's learning rate by the same factor, per iteration.

Recognised keys of `optim:`
    name            sgd | adamw
    lr, weight_decay
    momentum, nesterov                  (sgd)
    betas, eps                          (adamw)
    schedule        step | cosine | constant | inverse
    milestones, gamma                   (step: epochs at which lr *= gamma)
    min_lr_ratio                        (cosine: final lr as a fraction of the peak)
    decay                               (inverse: lr = lr0 / (1 + it * decay), `it` counting
                                        optimizer steps over the whole run; the Lua/Torch7 SGD
                                        learningRateDecay of the log-ratio code, --lr-decay)
    warmup_epochs, warmup_start_factor  (linear warm-up, per iteration, before the schedule)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


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


def build_optimizer(model_or_groups: nn.Module | Iterable[dict[str, Any]], optim: dict[str, Any]) -> torch.optim.Optimizer:
    name = str(optim.get("name", "sgd")).lower()
    lr = float(optim["lr"])
    weight_decay = float(optim.get("weight_decay", 0.0))
    groups = []
    for group in _groups(model_or_groups):
        lr_mult = float(group.pop("lr_mult", 1.0))
        wd_mult = float(group.pop("wd_mult", group.pop("decay_mult", 1.0)))
        groups.append({**group, "lr": lr * lr_mult, "weight_decay": weight_decay * wd_mult,
                       "lr_mult": lr_mult, "wd_mult": wd_mult})
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(optim.get("momentum", 0.9)),
                               nesterov=bool(optim.get("nesterov", False)), weight_decay=weight_decay)
    if name == "adamw":
        betas = tuple(float(b) for b in optim.get("betas", (0.9, 0.999)))
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=float(optim.get("eps", 1e-8)),
                                 weight_decay=weight_decay)
    raise ValueError(f"optim.name: unknown optimizer {name!r}; expected sgd or adamw")


def lr_factor(optim: dict[str, Any], iters_per_epoch: int) -> Callable[[int], float]:
    """The learning-rate multiplier at iteration `it` (0-based, counted over the whole run)."""
    epochs = int(optim["epochs"])
    total = max(1, epochs * iters_per_epoch)
    warmup = int(round(float(optim.get("warmup_epochs", 0)) * iters_per_epoch))
    start = float(optim.get("warmup_start_factor", 0.0 if warmup else 1.0))
    schedule = str(optim.get("schedule", "constant")).lower()
    if schedule == "step":
        milestones = sorted(int(m) * iters_per_epoch for m in optim.get("milestones", []))
        gamma = float(optim.get("gamma", 0.1))

        def after_warmup(it: int) -> float:
            return gamma ** sum(it >= m for m in milestones)
    elif schedule == "cosine":
        floor = float(optim.get("min_lr_ratio", 0.0))

        def after_warmup(it: int) -> float:
            progress = min(1.0, (it - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    elif schedule == "inverse":
        decay = float(optim.get("decay", 0.0))
        if decay < 0:
            raise ValueError(f"optim.decay: the inverse schedule needs decay >= 0, got {decay}")

        def after_warmup(it: int) -> float:
            return 1.0 / (1.0 + (it - warmup) * decay)
    elif schedule == "constant":

        def after_warmup(it: int) -> float:
            return 1.0
    else:
        raise ValueError(f"optim.schedule: unknown schedule {schedule!r}; expected step, cosine, inverse or constant")

    def factor(it: int) -> float:
        if it < warmup:
            return start + (1 - start) * it / warmup
        return after_warmup(it)

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, optim: dict[str, Any], iters_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration schedule: call `.step()` after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(optim, iters_per_epoch))
