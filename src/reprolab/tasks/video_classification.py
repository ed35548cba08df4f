"""Video classification (SELFY, MotionSqueeze, TSM/TSN baselines) on the shared engine.

Recipe keys read here (see reproductions/selfy/recipes/_base.yaml for a full example):

    model:  name        a reprolab.models factory name, e.g. selfy_tsm_resnet50
            segments    frames per clip (T)
            pretrained  a weights card id (weights-resnet50-imagenet) or none
            init_from   {recipe: <id>} (its latest evaluated run's weights) or {checkpoint: <path>}:
                        fine-tuning; tensors whose shapes differ (the classifier) stay fresh
            dropout, width_multiplier, options (extra factory keywords, e.g. {window: [5, 9, 9]})
    data:   sampling    segment (TSN, --mode 1) | dense (I3D, --mode 0)
            resize      [h, w] exact size, or an int short side
            crop, scales, max_distort, flip, selective_flip
            train_split, eval_split   (default: the benchmark's)
    eval:   clips, crops (default: the benchmark's protocol), resize, crop, batch_size

Test-time views (clips x crops) are scored separately and their logits averaged, as the official
Kinetics test does.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprolab.data.transforms import mirror_sensitive
from reprolab.data.video import VideoClipDataset
from reprolab.metrics.classification import classification_metrics
from reprolab.tasks.base import Split, SplitDescription, Task


def _required(block: dict[str, Any], block_name: str, key: str) -> Any:
    if key not in block:
        raise KeyError(f"recipe key `{block_name}.{key}` is required by the video-classification task")
    return block[key]


def pretrained_weights_path(card_id: str | None, root: Path | None = None) -> Path | None:
    """The file a `weights-*` card fetched (its first source), or MissingDataError naming the fetch."""
    if card_id in (None, "none", False):
        return None
    from reprolab.cli import MissingDataError
    from reprolab.data.layout import DatasetLayout
    from reprolab.registry import load_card

    layout = DatasetLayout(str(card_id), "full", root)
    if not layout.card_path.is_file():
        raise KeyError(f"model.pretrained: {card_id!r} is not a weights card (no {layout.card_path})")
    card = load_card(layout.card_path)
    path = layout.raw_file(card.sources[0].filename)
    if not path.is_file():
        raise MissingDataError(
            f"{card_id}: pretrained weights not found at {path}. Run: reprolab data fetch {card_id}"
        )
    return path


def init_checkpoint_path(init_from: dict[str, Any] | None, profile: str) -> Path | None:
    """The weights `model.init_from` names: {checkpoint: path} or {recipe: id} (its latest result)."""
    if not init_from:
        return None
    if "checkpoint" in init_from:
        path = Path(init_from["checkpoint"])
        if not path.is_file():
            raise FileNotFoundError(f"model.init_from.checkpoint: {path} does not exist")
        return path
    if "recipe" not in init_from:
        raise KeyError("model.init_from: expected {recipe: <id>} or {checkpoint: <path>}")
    from reprolab.cli import MissingDataError
    from reprolab.results import ResultsStore

    recipe = init_from["recipe"]
    done = [r for r in ResultsStore().runs(recipe)
            if r.status == "ok" and r.profile == profile and r.log_path]
    for result in reversed(done):  # newest first
        path = Path(result.log_path).parent / "checkpoints" / "final.pt"
        if path.is_file():
            return path
    raise MissingDataError(
        f"model.init_from: no evaluated {profile} run of {recipe} with its weights; run "
        f"`reprolab train {recipe} --profile {profile}` and `reprolab evaluate <run>` first"
    )


def load_matching_weights(model: nn.Module, path: Path) -> list[str]:
    """Copy every tensor of a checkpoint whose name and shape match; return the names skipped.

    Fine-tuning on another label set skips the classifier, which keeps its fresh initialisation.
    """
    from reprolab.engine import checkpoint

    own = model.state_dict()
    saved = checkpoint.load(path)["model"]
    loadable = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(loadable))
    if len(skipped) > len(own) // 2:
        raise ValueError(f"{path}: only {len(loadable)} of {len(own)} tensors match this model; "
                         "is it a checkpoint of the same architecture?")
    model.load_state_dict(loadable, strict=False)
    return skipped


class VideoClassification(Task):
    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.model_cfg = config.get("model", {})
        self.data_cfg = config.get("data", {})
        self.eval_cfg = config.get("eval", {})
        bench = config.get("benchmark_spec") or {}
        self.protocol = bench.get("protocol", {})
        self.dataset_id = self.data_cfg.get("dataset", bench.get("dataset"))
        if not self.dataset_id:
            raise KeyError(f"recipe {config.get('recipe')!r}: no dataset (benchmark_spec.dataset or data.dataset)")
        self.split_names = {
            "train": self.data_cfg.get("train_split", bench.get("train_split", "train")),
            "eval": self.data_cfg.get("eval_split", bench.get("eval_split", "validation")),
        }
        self.profile = config.get("profile", "full")
        self.segments = int(_required(self.model_cfg, "model", "segments"))
        self._splits: dict[str, Any] = {}

    # ---- data ----------------------------------------------------------------------------
    def open_split(self, split: Split):
        if split not in self._splits:
            from reprolab.data.reader import open_split

            self._splits[split] = open_split(self.dataset_id, self.split_names[split], self.profile)
        return self._splits[split]

    def check_data(self) -> None:
        self.open_split("train")
        self.open_split("eval")
        pretrained_weights_path(self.model_cfg.get("pretrained"))
        init_checkpoint_path(self.model_cfg.get("init_from"), self.profile)

    @cached_property
    def classes(self) -> list[str]:
        classes = self.open_split("train").classes
        if not classes:
            raise ValueError(f"{self.dataset_id}/{self.split_names['train']}: the split lists no class names")
        return classes

    @property
    def views(self) -> tuple[int, int]:
        clips = int(self.eval_cfg.get("clips", self.protocol.get("clips", 1)))
        crops = int(self.eval_cfg.get("crops", self.protocol.get("crops", 1)))
        return clips, crops

    def build_dataset(self, split: Split) -> VideoClipDataset:
        data = self.data_cfg
        resize = data.get("resize", [240, 320])
        crop = int(data.get("crop", 224))
        no_flip = mirror_sensitive(self.classes) if data.get("selective_flip", True) else frozenset()
        common = dict(segments=self.segments, sampling=data.get("sampling", "segment"),
                      dense_window=int(data.get("dense_window", 64)))
        if split == "train":
            return VideoClipDataset(
                self.open_split("train"), train=True, resize=resize, crop=crop,
                scales=data.get("scales", (1.0, 0.875, 0.75, 0.66)),
                max_distort=int(data.get("max_distort", 1)), flip=bool(data.get("flip", True)),
                no_flip_classes=no_flip, **common,
            )
        clips, crops = self.views
        eval_split = self.open_split("eval")
        if eval_split.classes and eval_split.classes != self.classes:
            raise ValueError(f"{self.dataset_id}: splits {self.split_names['train']!r} and "
                             f"{self.split_names['eval']!r} list different classes; prepare again")
        return VideoClipDataset(
            eval_split, train=False, resize=self.eval_cfg.get("resize", resize),
            crop=int(self.eval_cfg.get("crop", crop)), clips=clips, crops=crops, **common,
        )

    def describe_split(self, dataset: VideoClipDataset, split: Split) -> SplitDescription:
        return SplitDescription(self.dataset_id, self.split_names[split], len(dataset.split),
                                dataset.split.fingerprint)

    # ---- model ---------------------------------------------------------------------------
    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        from reprolab.models import create_model

        model = self.model_cfg
        network = create_model(
            _required(model, "model", "name"),
            num_classes=len(self.classes),
            num_segments=self.segments,
            pretrained=pretrained_weights_path(model.get("pretrained")) if pretrained else None,
            dropout=float(model.get("dropout", 0.5)),
            width_multiplier=float(model.get("width_multiplier", 1.0)),
            **dict(model.get("options") or {}),
        )
        init = init_checkpoint_path(model.get("init_from"), self.profile) if pretrained else None
        if init is not None:
            load_matching_weights(network, init)
        return network

    def param_groups(self, model: nn.Module):
        from reprolab.models import param_groups

        optim = self.config["optim"]
        return param_groups(model, lr=float(optim["lr"]), weight_decay=float(optim.get("weight_decay", 0.0)))

    def eval_batch_size(self) -> int:
        if "batch_size" in self.eval_cfg:
            return int(self.eval_cfg["batch_size"])
        clips, crops = self.views
        return max(1, int(self.config["optim"]["batch_size"]) // (clips * crops))

    # ---- steps ---------------------------------------------------------------------------
    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(model(batch["frames"]), batch["label"])

    def predict(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        frames = batch["frames"]  # (B, views, T, C, H, W)
        logits = model(frames.flatten(0, 1))
        return logits.view(frames.shape[0], frames.shape[1], -1).mean(dim=1), batch["label"]

    def compute_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return classification_metrics(outputs, targets, num_classes=len(self.classes),
                                      topk=(1, 5), mean_class=True)
