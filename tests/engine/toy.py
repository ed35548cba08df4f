"""A toy task for engine tests: 4 classes of noisy 16-d points, an MLP, synthetic in memory."""

from __future__ import annotations

import random

import torch
from torch import nn
from torch.utils.data import Dataset

from reprolab import predictions
from reprolab.metrics.classification import classification_metrics
from reprolab.tasks.base import DataConfig, ModelConfig, SplitDescription, Task


class ToyModelConfig(ModelConfig):
    dropout: float = 0.2
    fail_at_call: int | None = None  # raise in the training step of this call (crash tests)


class ToyDataConfig(DataConfig):
    dataset: str | None = "toy"
    samples: int = 96


class ToyPoints(Dataset):
    """Class centres plus noise; training items add seed-driven jitter (the augmentation)."""

    def __init__(self, samples: int, train: bool, data_seed: int = 1234):
        generator = torch.Generator().manual_seed(data_seed + (0 if train else 1))
        self.labels = torch.randint(0, 4, (samples,), generator=generator)
        centres = torch.randn(4, 16, generator=torch.Generator().manual_seed(data_seed))
        self.points = centres[self.labels] + 0.7 * torch.randn(samples, 16, generator=generator)
        self.train = train

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item):
        index, seed = item
        x = self.points[index]
        if self.train:
            rng = random.Random(seed)
            x = x + torch.tensor([rng.gauss(0.0, 0.1) for _ in range(16)])
        return {"x": x, "label": self.labels[index]}


class ToyTask(Task):
    Model = ToyModelConfig
    Data = ToyDataConfig

    def __init__(self, config, *, fail_at_call: int | None = None):
        super().__init__(config)
        self.fail_at_call = fail_at_call or self.model_cfg.fail_at_call
        self.calls = 0

    def check_data(self) -> None:
        return None  # the toy data is made in memory

    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        dropout = self.model_cfg.dropout
        return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 4))

    def param_groups(self, model):
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
        return [{"params": weights, "name": "weights"},
                {"params": biases, "lr_mult": 2, "wd_mult": 0, "name": "biases"}]

    def build_dataset(self, split):
        return ToyPoints(self.data_cfg.samples if split == "train" else 64, split == "train")

    def describe_split(self, dataset, split):
        return SplitDescription("toy", split, len(dataset), "toy-fingerprint")

    def training_loss(self, model, batch):
        self.calls += 1
        if self.fail_at_call is not None and self.calls == self.fail_at_call:
            raise RuntimeError("simulated crash")
        return nn.functional.cross_entropy(model(batch["x"]), batch["label"])

    def predict(self, model, batch):
        return model(batch["x"]), batch["label"]

    def sample_predictions(self, dataset, outputs, targets):
        return predictions.classification([f"toy-{i}" for i in range(len(dataset))], outputs, targets,
                                          ["a", "b", "c", "d"])

    def compute_metrics(self, outputs, targets):
        return classification_metrics(outputs, targets, num_classes=4, topk=(1, 2))


def toy_config(**optim) -> dict:
    base = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
            "batch_size": 16, "epochs": 3, "schedule": "step", "milestones": [2], "gamma": 0.1,
            "clip_grad_norm": 20}
    base.update(optim)
    return {"recipe": "toy", "task": "toy", "model": {"dropout": 0.2}, "data": {"samples": 96},
            "optim": base, "eval": {}}
