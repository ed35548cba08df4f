"""Every recipe states what its tiny profile reaches, and the statement is well formed."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from reprolab.registry import load_registry
from reprolab.registry.models import TinyCheck
from reprolab.tasks.metric_learning import MetricLearning
from tests.conftest import REPO


def test_every_recipe_has_a_tiny_check_on_a_metric_its_benchmark_reports():
    registry = load_registry(REPO)
    for recipe in registry.recipes.values():
        assert recipe.tiny_check is not None, f"{recipe.id}: no tiny_check"
        assert recipe.tiny_check.metric in registry.benchmarks[recipe.benchmark].metrics, recipe.id


def test_a_tiny_check_has_one_bound_and_a_baseline_says_why():
    assert TinyCheck(metric="top1", at_least=60).learns
    with pytest.raises(ValidationError, match="exactly one"):
        TinyCheck(metric="top1", at_least=60, at_most=90)
    with pytest.raises(ValidationError, match="exactly one"):
        TinyCheck(metric="top1")
    with pytest.raises(ValidationError, match="why"):
        TinyCheck(metric="top1", at_most=50, learns=False)
    assert TinyCheck(metric="top1", at_most=50, learns=False, why="order-blind").why == "order-blind"


def test_retrieval_chance_is_the_share_of_same_class_neighbours():
    # 4 classes x 10 images: a random nearest neighbour shares the query's class 9 times in 39
    task = MetricLearning.__new__(MetricLearning)  # compute_metrics reads eval_cfg only
    task.eval_cfg = type("Eval", (), {"ks": [1, 2], "query_gallery": False})()
    labels = torch.arange(4).repeat_interleave(10)
    targets = torch.stack([labels, torch.zeros_like(labels)], 1)
    chance = task.chance_metrics(torch.zeros(40, 16), targets, draws=64)
    assert chance["recall@1"] == pytest.approx(100 * 9 / 39, abs=4)
    assert chance["recall@2"] > chance["recall@1"]
