"""The URIE enhancement task: frozen recognizer, per-sample distortion draws, evaluation sets and
their metrics, on small in-memory splits (the tiny recipes run end to end in tests/test_smoke.py)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from reprolab.data import corruptions
from reprolab.errors import ConfigError
from reprolab.models.urie import SKUNet
from reprolab.tasks.enhancement import (
    DistortedTrainSet,
    EnhancedRecognizer,
    Enhancement,
    EvalSet,
    SmallCNN,
    _kept_rows,
)


class FakeSplit:
    """What the task reads of a PreparedSplit: ids, labels, columns, samples with JPEG bytes."""

    def __init__(self, ids, labels, images=None, columns=None, split="test"):
        self.ids, self.labels, self.split, self.dataset = list(ids), list(labels), split, "toy"
        self.images, self.columns = images, columns or {}
        self.classes, self.fingerprint = ["a", "b", "c", "d"], "sha256:" + "0" * 64

    def __len__(self):
        return len(self.ids)

    def column(self, name):
        return list(self.columns[name])

    def __getitem__(self, i):
        buffer = io.BytesIO()
        Image.fromarray(self.images[i]).save(buffer, format="PNG")  # lossless: exact comparisons
        return SimpleNamespace(id=self.ids[i], label=self.labels[i], frames=[buffer.getvalue()])


def _images(n, size=40, seed=0):
    return [(np.random.default_rng([seed, i]).random((size, size, 3)) * 255).astype(np.uint8) for i in range(n)]


def _config(**model):
    return {"recipe": "toy", "task": "enhancement", "profile": "tiny",
            "model": {"recognizer": "small_cnn", **model},
            "data": {"dataset": "toy", "eval_sets": {"clean": {"split": "c"}, "seen": {"split": "s"}}},
            "optim": {"name": "adam", "lr": 1e-3, "batch_size": 4, "epochs": 1}}


def test_the_frozen_recognizer_stays_in_eval_mode_and_only_the_enhancer_learns():
    model = EnhancedRecognizer(SKUNet(), SmallCNN(4, width=8), freeze_recognizer=True).train()
    assert model.enhancer.training and not model.recognizer.training
    assert not any(p.requires_grad for p in model.recognizer.parameters())
    stats = model.recognizer.features[1].running_mean.clone()
    torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    assert torch.equal(model.recognizer.features[1].running_mean, stats)  # BN statistics fixed
    assert all(p.grad is not None for p in model.enhancer.parameters())
    assert all(p.grad is None for p in model.recognizer.parameters())
    groups = Enhancement(_config()).param_groups(model)
    assert [len(g["params"]) for g in groups] == [len(list(model.enhancer.parameters()))]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.train: enhancer needs an enhancer"):
        Enhancement(_config(enhancer="none"))
    with pytest.raises(ConfigError, match="model.enhancer: none and model.loss: recognition"):
        Enhancement(_config(train="recognizer"))
    bad = _config()
    bad["data"]["eval_sets"] = {}
    with pytest.raises(ConfigError, match="data.eval_sets is empty"):
        Enhancement(bad)


def test_training_draws_are_fixed_by_the_sample_seed_and_share_one_crop_window():
    clean = FakeSplit(["1", "2"], [0, 1], _images(2), split="train")
    data = DistortedTrainSet(clean, None, distort=True, resize=40, crop=32)
    a, b = data[(1, 7)], data[(1, 7)]
    assert torch.equal(a["image"], b["image"]) and a["image"].shape == (3, 32, 32)
    draws = [data[(0, seed)] for seed in range(40)]
    # clean is one of the 16 options: then the input is the clean crop itself (same window, flip)
    kept_clean = [torch.equal(d["image"], d["clean"]) for d in draws]
    expected = [corruptions.draw(np.random.RandomState([seed, 0]), corruptions.SEEN, clean=True)[0] is None
                for seed in range(40)]
    assert kept_clean == expected and 0 < sum(expected) < 40


def test_a_missing_pool_sample_names_the_split_and_the_id():
    clean = FakeSplit(["1"], [0], _images(1), split="train")
    pool = FakeSplit(["1@gaussian_noise-1"], [0], _images(1), split="train_distorted")
    data = DistortedTrainSet(clean, pool, distort=True, resize=40, crop=32)
    with pytest.raises(ConfigError, match=r"train_distorted.*no sample '1@"):
        for seed in range(60):  # some draw is neither clean nor gaussian_noise-1
            data[(0, seed)]


def test_eval_sets_keep_one_severity_and_one_corruption_per_image():
    ids = [f"{c}/{s}/img{i}" for c in ("fog", "snow", "frost") for s in (1, 3) for i in range(4)]
    split = FakeSplit(ids, [0] * len(ids), columns={"severity": [int(x.split("/")[1]) for x in ids]})
    rows = _kept_rows(split, EvalSet(split="seen", severity=3, one_per_image=True), seed=2020)
    kept = [ids[r] for r in rows]
    assert len(kept) == 4 and all("/3/" in k for k in kept)
    assert sorted(k.rsplit("/", 1)[1] for k in kept) == [f"img{i}" for i in range(4)]
    assert rows == _kept_rows(split, EvalSet(split="seen", severity=3, one_per_image=True), seed=2020)
    assert _kept_rows(split, EvalSet(split="seen"), seed=0) == list(range(len(ids)))


def test_metrics_report_the_enhanced_and_the_recognizer_alone_per_set():
    task = Enhancement(_config())
    # 4 samples, 2 classes: enhanced logits then the recognizer-alone logits
    enhanced = torch.tensor([[1.0, 0], [0, 1], [1, 0], [1, 0]])
    alone = torch.tensor([[0.0, 1], [0, 1], [0, 1], [1, 0]])
    targets = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]])  # (label, set index)
    metrics = task.compute_metrics(torch.cat([enhanced, alone], dim=1), targets)
    assert metrics == {"top1_clean": 100.0, "baseline_top1_clean": 50.0,
                       "top1_seen": 50.0, "baseline_top1_seen": 0.0}
