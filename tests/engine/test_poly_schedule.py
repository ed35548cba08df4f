"""The dann schedule (DANN/MSTN annealing) with a constant warm-up: DSBN's LRScheduler, per iteration."""

from __future__ import annotations

import pytest

from reprolab.engine.optim import lr_factor


def _official_lr(lr: float, warmup_lr: float, warmup: int, max_step: int, i_iter: int) -> float:
    # LRScheduler.__call__: the warm-up lr flat, then lr_poly(lr, i - warmup, alpha=10, beta=0.75)
    if i_iter < warmup:
        return warmup_lr
    return lr / (1 + 10 * (i_iter - warmup) / max_step) ** 0.75


def test_poly_with_constant_warmup_matches_official():
    options = {"lr": 1e-5, "batch_size": 40, "epochs": 140, "schedule": "dann", "dann_steps": 70000,
               "warmup_epochs": 40, "warmup_start_factor": 0.5, "warmup_constant": True}
    factor = lr_factor(options, iters_per_epoch=500)
    for it in (0, 1, 19999, 20000, 20001, 45000, 69999):
        assert 1e-5 * factor(it) == pytest.approx(_official_lr(1e-5, 5e-6, 20000, 70000, it), rel=1e-12)


def test_poly_default_steps_are_the_whole_run():
    factor = lr_factor({"lr": 1.0, "batch_size": 1, "epochs": 10, "schedule": "dann"}, iters_per_epoch=10)
    assert factor(0) == 1.0
    assert factor(100) == pytest.approx(1 / 11 ** 0.75)
