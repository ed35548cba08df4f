"""Unsupervised domain adaptation as DSBN trains it: MSTN (+DSBN) in stage 1, self-training in stage 2.

Official code: wgchang/DSBN@e0cd4bf (trainval_multi.py: stage 1; finetune_multi.py: stage 2).
Recipes: reproductions/dsbn/recipes/_base.yaml; deviations and choices: reproductions/dsbn/NOTES.md.

One training item holds one image of every stream: the source domains (one stream when
`data.merge_sources`) and then the target, so a batch of `optim.batch_size` items is a batch of that
size per domain, and each domain goes through the network in its own forward pass with its own
DSBN branch (sources 0..S-1, target S). An "epoch" is `data.iterations_per_epoch` iterations:
the official evaluation interval (--save-interval 500); the evaluated weights are those of the best
evaluation (the official, transductive selection on the labelled target) unless
`eval.selection` says otherwise.

Stage 1 (`model.pseudo_labels: none`): CE(source) + lambda (adversarial + semantic), the
adversarial term through gradient reversal into one discriminator per source, the semantic term
between moving class centroids of source logits (labels) and target logits (pseudo labels from
the same network in eval mode). Stage 2 (`model.pseudo_labels: ensemble`): CE(source) +
CE(target, argmax((1 - lambda) teacher + lambda student)), the teacher being the frozen model of
the stage's `init_from` (the stage-1 run); the student starts from ImageNet as in the official code.
"""

from __future__ import annotations

import hashlib
import io
import random
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field, field_validator, model_validator
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from reprolab import predictions
from reprolab.data.transforms.images import input_transform
from reprolab.errors import ConfigError
from reprolab.metrics.classification import mean_class_accuracy, topk_accuracy
from reprolab.models.backbones import backbone_input_config
from reprolab.models.mstn import (
    DomainAdaptationNet,
    DomainDiscriminator,
    MovingCentroids,
    adaptation_factor,
    domain_adversarial_loss,
    ensemble_pseudo_labels,
    semantic_loss,
)
from reprolab.tasks.base import (
    TASKS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Split,
    SplitDescription,
    Task,
)


class AdaptationModelConfig(ModelConfig):
    backbone: str = "resnet50"
    weights: str | None = Field(default=None, description="a weights card, e.g. weights-resnet50-imagenet")
    dsbn: bool = Field(default=True, description="false: shared BN (the 'MSTN reproduced' baseline)")
    adversarial: bool = Field(default=True, description="--adv-loss")
    semantic: bool = Field(default=True, description="--sm-loss (moving semantic centroids)")
    domain_loss_factor: float = Field(default=0.1, ge=0, description="--domain-loss-adjust-factor")
    semantic_weight: float = Field(default=1.0, ge=0, description="--sm-etha")
    centroid_decay: float = Field(default=0.3, gt=0, le=1)
    adaptation_gamma: float = Field(default=10.0, gt=0, description="lambda = 2/(1+exp(-gamma p)) - 1")
    backbone_lr_mult: float = Field(default=0.1, gt=0, description="--base-weight-factor")
    pseudo_labels: Literal["none", "teacher", "ensemble"] = Field(
        default="none", description="stage 2: target CE on pseudo labels of the init_from teacher")
    pseudo_threshold: float = Field(default=0.0, ge=0, le=1, description="--pseudo-target-threshold")
    target_loss_weight: Literal["one", "lambda"] = Field(default="one", description="one: --no-lambda")
    teacher_dsbn: bool | None = Field(default=None, description="the teacher's BN kind (default: as dsbn)")
    student_init: Literal["imagenet", "teacher"] = Field(
        default="imagenet", description="stage 2 student start (official: ImageNet)")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, backbone: str) -> str:
        from reprolab.models.backbones import BACKBONES

        BACKBONES.get(backbone)
        return backbone


class AdaptationDataConfig(DataConfig):
    sources: list[str] = Field(min_length=1, description="source domains (splits of the dataset)")
    target: str = Field(description="the target domain: adapted on without labels, and evaluated")
    merge_sources: bool = Field(default=False, description="--merge-sources: one stream, one BN branch")
    crop: int = Field(default=224, gt=0)
    resize: int = Field(default=256, gt=0)
    crop_scale: tuple[float, float] = Field(default=(0.08, 1.0), description="RandomResizedCrop scale "
                                            "(torchvision's default, as the official transform)")
    iterations_per_epoch: int = Field(default=500, gt=0, description="evaluate every N iterations")

    @model_validator(mode="after")
    def _target_not_a_source(self) -> AdaptationDataConfig:
        if self.target in self.sources:
            raise ValueError(f"data.target {self.target!r} is also in data.sources {self.sources}")
        return self


class AdaptationEvalConfig(EvalConfig):
    selection: Literal["target", "source", "last"] = Field(
        default="target", description="target: best labelled-target evaluation (official, transductive); "
                                      "source: best on held-out source images; last: the last epoch")
    selection_metric: Literal["acc", "mean_class_acc"] = "acc"
    source_holdout: float = Field(default=0.1, gt=0, lt=1, description="selection=source: held-out fraction")
    metric_alias: str | None = Field(default=None, description="also report `acc` under this name (acc_a2w)")
    per_class: bool = Field(default=False, description="acc_<class> for every class (VisDA)")


class StreamsDataset(Dataset):
    """Item i: one augmented image (and label) of every stream; stream 0 visits its samples in the
    sampler's order, the others draw theirs from the item's seed (independent shuffles)."""

    def __init__(self, streams: list[list[tuple[Any, int]]], transform, length: int):
        self.streams, self.transform, self.length = streams, transform, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, seed = item
        out: dict[str, Any] = {}
        for s, samples in enumerate(self.streams):
            position = index % len(samples) if s == 0 else random.Random(seed * 7919 + s).randrange(len(samples))
            split, row = samples[position]
            sample = split[row]
            image = Image.open(io.BytesIO(sample.frames[0])).convert("RGB")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + s)
                out[f"image{s}"] = self.transform(image)
            out[f"label{s}"] = sample.label
        return out


class DomainImages(Dataset):
    """Evaluation images with their labels and DSBN domain index."""

    def __init__(self, samples: list[tuple[Any, int, int]], transform):
        self.samples, self.transform = samples, transform   # (split, row, domain)
        self.split = samples[0][0]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        split, row, domain = self.samples[index]
        sample = split[row]
        image = Image.open(io.BytesIO(sample.frames[0])).convert("RGB")
        return {"image": self.transform(image), "label": sample.label, "domain": domain}


class AdaptationModel(nn.Module):
    """The classifier and what trains beside it: discriminators, centroids, the stage-2 teacher."""

    def __init__(self, net: DomainAdaptationNet, num_sources: int, num_classes: int,
                 adversarial: bool, semantic: bool, decay: float, teacher: DomainAdaptationNet | None):
        super().__init__()
        self.net = net
        self.discriminators = nn.ModuleList(
            DomainDiscriminator(num_classes) for _ in range(num_sources if adversarial else 0))
        self.source_centroids = nn.ModuleList(
            MovingCentroids(num_classes, num_classes, decay) for _ in range(num_sources if semantic else 0))
        self.target_centroids = MovingCentroids(num_classes, num_classes, decay) if semantic else None
        self.teacher = teacher.requires_grad_(False).eval() if teacher is not None else None
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, domain: int | torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, domain)

    def train(self, mode: bool = True) -> AdaptationModel:
        super().train(mode)
        if self.teacher is not None:  # frozen: always its running statistics
            self.teacher.eval()
        return self


@TASKS.register(name="domain-adaptation")
class DomainAdaptation(Task):
    Model = AdaptationModelConfig
    Data = AdaptationDataConfig
    Eval = AdaptationEvalConfig

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        data = self.data_cfg
        self.split_names = {"train": data.sources[0], "eval": data.target}
        self.num_source_streams = 1 if data.merge_sources else len(data.sources)
        self.target_domain = self.num_source_streams
        self.selection_metric = None if self.eval_cfg.selection == "last" else self.eval_cfg.selection_metric
        if self.model_cfg.pseudo_labels != "none" and not (config.get("init_from") or self.model_cfg.init_from):
            raise ConfigError(f"recipe {config.get('recipe')!r}: model.pseudo_labels="
                              f"{self.model_cfg.pseudo_labels} needs a teacher: give the stage an "
                              "`init_from: <stage-1 stage>` (or model.init_from)")

    # ---- data ----------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return self.open_split(self.data_cfg.target).classes

    def check_data(self) -> None:
        from reprolab.models.weights import pretrained_weights_path

        target_classes = self.classes
        for name in self.data_cfg.sources:
            if self.open_split(name).classes != target_classes:
                raise ConfigError(f"{self.dataset_id}: source {name!r} and target {self.data_cfg.target!r} "
                                  "have different class lists; prepare the dataset again")
        pretrained_weights_path(self.model_cfg.weights)

    def _source_rows(self, name: str, held_out: bool) -> list[tuple[Any, int]]:
        split = self.open_split(name)
        rows = list(range(len(split)))
        if self.eval_cfg.selection == "source":  # every k-th image is held out for selection only
            every = max(2, round(1 / self.eval_cfg.source_holdout))
            rows = [r for r in rows if (r % every == 0) == held_out]
        elif held_out:
            rows = []
        return [(split, r) for r in rows]

    def transform(self, train: bool):
        transform = input_transform(backbone_input_config(self.model_cfg.backbone), train=train,
                                    crop=self.data_cfg.crop, resize=self.data_cfg.resize)
        if train:  # the official RandomResizedCrop(224) + flip, with the crop scale of the recipe
            from torchvision.transforms import v2

            transform.transforms[1] = v2.RandomResizedCrop(self.data_cfg.crop, scale=self.data_cfg.crop_scale,
                                                           antialias=True)
        return transform

    def build_dataset(self, split: Split) -> Dataset:
        self.check_data()
        if split == "eval":
            target = self.open_split(self.data_cfg.target)
            return DomainImages([(target, r, self.target_domain) for r in range(len(target))], self.transform(False))
        sources = [self._source_rows(name, held_out=False) for name in self.data_cfg.sources]
        if self.data_cfg.merge_sources:
            sources = [[row for rows in sources for row in rows]]
        target = self.open_split(self.data_cfg.target)
        streams = [*sources, [(target, r) for r in range(len(target))]]
        length = self.data_cfg.iterations_per_epoch * self.options.batch_size
        return StreamsDataset(streams, self.transform(True), length)

    def selection_dataset(self) -> Dataset | None:
        if self.eval_cfg.selection != "source":
            return None
        samples = []
        for k, name in enumerate(self.data_cfg.sources):
            domain = 0 if self.data_cfg.merge_sources else k
            samples += [(split, row, domain) for split, row in self._source_rows(name, held_out=True)]
        return DomainImages(samples, self.transform(False))

    def describe_split(self, dataset: Dataset, split: Split) -> SplitDescription:
        if split == "eval":
            target = self.open_split(self.data_cfg.target)
            return SplitDescription(self.dataset_id, target.split, len(target), target.fingerprint)
        names = [*self.data_cfg.sources, self.data_cfg.target]
        prints = "".join(self.open_split(n).fingerprint for n in names)
        return SplitDescription(self.dataset_id, "+".join(names), len(dataset),
                                "sha256:" + hashlib.sha256(prints.encode()).hexdigest())

    # ---- model ---------------------------------------------------------------------------
    def _net(self, dsbn: bool, weights) -> DomainAdaptationNet:
        from reprolab.models.backbones import create_backbone

        backbone = create_backbone(self.model_cfg.backbone, weights)
        return DomainAdaptationNet(backbone, backbone.feature_dim, len(self.classes),
                                   num_domains=self.num_source_streams + 1, dsbn=dsbn)

    def build_model(self, *, pretrained: bool = True) -> AdaptationModel:
        from reprolab.models.weights import pretrained_weights_path

        cfg = self.model_cfg
        weights = pretrained_weights_path(cfg.weights) if pretrained else None
        teacher = None
        if cfg.pseudo_labels != "none":
            teacher = self._net(cfg.dsbn if cfg.teacher_dsbn is None else cfg.teacher_dsbn, None)
        return AdaptationModel(self._net(cfg.dsbn, weights), self.num_source_streams, len(self.classes),
                               cfg.adversarial, cfg.semantic, cfg.centroid_decay, teacher)

    def init_weights(self, model: AdaptationModel, config: dict[str, Any], *, verbose: bool = False):
        """Stage 2: the init_from checkpoint is the teacher (frozen); the student keeps ImageNet."""
        if model.teacher is None:
            return super().init_weights(model, config, verbose=verbose)
        from reprolab.engine.init_from import init_checkpoint

        path = init_checkpoint(config)
        saved = torch.load(path, map_location="cpu", weights_only=False)["model"]
        state = {k.removeprefix("net."): v for k, v in saved.items() if k.startswith("net.")}
        try:
            model.teacher.load_state_dict(state)
            if self.model_cfg.student_init == "teacher":
                model.net.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError(f"init_from {path}: not a model of this architecture as the teacher "
                              f"(model.teacher_dsbn / model.backbone?): {str(error)[:300]}") from None
        if verbose:
            print(f"teacher: {path} (frozen); student from {self.model_cfg.student_init}", flush=True)
        return []

    def param_groups(self, model: AdaptationModel):
        head = {id(p) for p in model.net.head_parameters()}
        return [
            {"params": [p for p in model.net.parameters() if id(p) not in head],
             "lr_mult": self.model_cfg.backbone_lr_mult, "name": "backbone"},
            {"params": model.net.head_parameters(), "name": "fc"},
            {"params": list(model.discriminators.parameters()), "name": "discriminators"},
        ]

    # ---- steps ---------------------------------------------------------------------------
    def _lambda(self, iteration: int) -> float:
        """adaptation_factor((i_iter - warmup_step) / max_step), i_iter counted from 1."""
        ipe = self.data_cfg.iterations_per_epoch
        warmup = int(round(self.options.warmup_epochs * ipe))
        steps = self.options.dann_steps or self.options.epochs * ipe
        return adaptation_factor((iteration - warmup) / steps, gamma=self.model_cfg.adaptation_gamma)

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(model, DistributedDataParallel):
            raise NotImplementedError("domain-adaptation trains single-process (as the official code): "
                                      "its separate per-domain passes and eval-mode pseudo labels do not go "
                                      "through DistributedDataParallel; run without torchrun")
        cfg, S, T = self.model_cfg, self.num_source_streams, self.target_domain
        model.steps_done += 1
        lam = self._lambda(int(model.steps_done))
        net = model.net
        source_logits = [net(batch[f"image{k}"], k) for k in range(S)]
        loss = sum(F.cross_entropy(logits, batch[f"label{k}"]) for k, logits in enumerate(source_logits)) / S
        if not (cfg.adversarial or cfg.semantic or cfg.pseudo_labels != "none"):
            return loss  # source only: the target never goes through the network (nor its BN statistics)
        target_images = batch[f"image{T}"]
        target_logits = net(target_images, T)
        if cfg.adversarial:
            adversarial = sum(domain_adversarial_loss(model.discriminators[k], source_logits[k], target_logits,
                                                      cfg.domain_loss_factor) for k in range(S)) / S
            loss = loss + lam * adversarial
        if cfg.semantic or cfg.pseudo_labels != "none":
            with torch.no_grad():  # pseudo labels of the network itself, in eval mode (official)
                net.eval()
                student = net(target_images, T)
                net.train()
        if cfg.semantic:
            moved_target = model.target_centroids(target_logits, student.argmax(dim=1))
            moved_sources = [model.source_centroids[k](source_logits[k], batch[f"label{k}"]) for k in range(S)]
            loss = loss + lam * sum(cfg.semantic_weight * semantic_loss(m, moved_target) for m in moved_sources) / S
            model.target_centroids.store(moved_target)
            for k, moved in enumerate(moved_sources):
                model.source_centroids[k].store(moved)
        if cfg.pseudo_labels != "none":
            with torch.no_grad():
                teacher = model.teacher(target_images, T)
            mix = lam if cfg.pseudo_labels == "ensemble" else 0.0
            labels, kept = ensemble_pseudo_labels(teacher, student, mix, cfg.pseudo_threshold)
            if kept.any():
                weight = 1.0 if cfg.target_loss_weight == "one" else lam
                loss = loss + weight * F.cross_entropy(target_logits[kept], labels[kept])
        return loss

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images, domains = batch["image"], batch["domain"]
        outputs = None
        for domain in torch.unique(domains).tolist():  # one forward pass per domain (DSBN)
            part = domains == domain
            logits = model(images[part], int(domain))
            if outputs is None:
                outputs = logits.new_zeros((len(images), logits.shape[1]))
            outputs[part] = logits
        return outputs, batch["label"]

    def sample_predictions(self, dataset: DomainImages, outputs: torch.Tensor, targets: torch.Tensor):
        ids = [split.ids[row] for split, row, _ in dataset.samples]
        return predictions.classification(ids, outputs, targets, self.classes)

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        outputs, targets = outputs.float(), targets.long()
        metrics = {"acc": topk_accuracy(outputs, targets, 1), "mean_class_acc": mean_class_accuracy(outputs, targets)}
        if self.eval_cfg.per_class:
            predicted = outputs.argmax(dim=1)
            for k, name in enumerate(self.classes):
                mine = targets == k
                if mine.any():
                    metrics[f"acc_{name}"] = 100.0 * float((predicted[mine] == k).float().mean())
        if self.eval_cfg.metric_alias:
            metrics[self.eval_cfg.metric_alias] = metrics["acc"]
        return metrics
