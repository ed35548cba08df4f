"""TSN-style video classifier and the official optimiser parameter groups.

As in the official ``ops/models.py`` of SELFY and MotionSqueeze: every frame goes through the 2D
backbone, its pooled feature through dropout (0.5) and a linear classifier (Xavier-uniform weight,
zero bias), and the per-frame logits are averaged over the T segments.

Input layout: (B, T, C, H, W) clips, T == num_segments. Output: (B, num_classes) logits.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reprolab.models.backbones.resnet_tsm import TSMResNet


class TSN(nn.Module):
    def __init__(self, backbone: TSMResNet, num_classes: int, num_segments: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_segments = num_segments
        self.num_classes = num_classes
        self.dropout = nn.Dropout(p=dropout)
        # Official head: Conv1d(k=1) on (B*T, F, 1); a Linear on (B*T, F) is the same map.
        self.fc = nn.Linear(backbone.num_features, num_classes)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dim() != 5 or clips.shape[1] != self.num_segments:
            raise ValueError(
                f"expected clips of shape (B, T={self.num_segments}, C, H, W), got "
                f"{tuple(clips.shape)}"
            )
        b, t = clips.shape[:2]
        features = self.backbone(clips.flatten(0, 1))  # (B*T, F)
        logits = self.fc(self.dropout(features))
        return logits.view(b, t, -1).mean(dim=1)  # average consensus


_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)
_WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Parameter groups of the official ``get_optim_policies`` (RGB, partial BN off).

    conv/linear weights: lr x1, weight decay x1; conv/linear biases: lr x2, no decay; norm-layer
    scale and shift: lr x1, no decay. ``lr_mult`` and ``decay_mult`` are kept in each group for
    schedulers that set lr = base_lr * lr_mult. A leaf module with parameters of any other type
    raises, as the official code does, rather than being trained under a silent default.
    """
    weights, biases, norms = [], [], []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, _WEIGHT_TYPES):
            weights.append(module.weight)
            if module.bias is not None:
                biases.append(module.bias)
        elif isinstance(module, _NORM_TYPES):
            norms.extend(own)
        else:
            raise ValueError(
                f"module {name!r} ({type(module).__name__}) has parameters but no learning-rate "
                "policy; add its type to reprolab.models.video.tsn.param_groups"
            )
    groups = [
        {"name": "weight", "params": weights, "lr_mult": 1.0, "decay_mult": 1.0},
        {"name": "bias", "params": biases, "lr_mult": 2.0, "decay_mult": 0.0},
        {"name": "norm", "params": norms, "lr_mult": 1.0, "decay_mult": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["lr"] = lr * g["lr_mult"]
        g["weight_decay"] = weight_decay * g["decay_mult"]
    return groups
