"""IRNet's ResNet-50: torchvision's architecture, strides (2, 2, 2, 1) -> output stride 16.

jiwoon-ahn/irn ``net/resnet50.py`` is torchvision's ResNet-50 (stride on the 3x3 conv, the
same parameter names) with two changes reproduced here: ``layer4`` keeps stride 1 (no
dilation: ``strides=(2, 2, 2, 1)``, the first block of a layer never dilates), and every
BatchNorm is a ``FixedBatchNorm`` that always normalises with its running statistics while its
affine parameters stay trainable. So the model is torchvision's ``resnet50`` with
``norm_layer=FixedBatchNorm2d`` and ``layer4[0]``'s strides set to 1; torchvision's ImageNet
checkpoint (``resnet50-19c8e357.pth``, card weights-resnet50-imagenet) loads by name.

``forward`` returns the five stages IRNet's heads read (``x1`` after the max-pool, 64 ch,
stride 4; ``x2`` layer1, 256 ch, 4; ``x3`` layer2, 512 ch, 8; ``x4`` layer3, 1024 ch, 16;
``x5`` layer4, 2048 ch, 16) and stops gradients where the official nets do: ``detach_after``
names the stages whose outputs are detached. IRNet's CAM net (``net/resnet50_cam.py``)
detaches after layer2 (``("x3",)``) and freezes conv1/bn1; the IRNet boundary/displacement net
(``net/resnet50_irn.py``) detaches every stage (``DETACH_ALL``), so the backbone never trains.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.models.backbones.resnet import IMAGENET_INPUT

STAGES = ("x1", "x2", "x3", "x4", "x5")
DETACH_ALL = STAGES
CAM_DETACH = ("x3",)


class FixedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always uses its running statistics (IRNet's FixedBatchNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=self.eps)


class ResNet50IRN(nn.Module):
    feature_dim = 2048
    stride = 16
    input_config = IMAGENET_INPUT

    def __init__(self, detach_after: tuple[str, ...] = CAM_DETACH,
                 frozen: tuple[str, ...] = ("conv1", "bn1")):
        super().__init__()
        import torchvision

        unknown = set(detach_after) - set(STAGES)
        if unknown:
            raise ValueError(f"detach_after: unknown stages {sorted(unknown)}; the stages are {STAGES}")
        net = torchvision.models.resnet50(weights=None, norm_layer=FixedBatchNorm2d)
        net.layer4[0].conv2.stride = (1, 1)           # strides (2, 2, 2, 1)
        net.layer4[0].downsample[0].stride = (1, 1)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.detach_after = tuple(detach_after)
        for name in frozen:
            for p in getattr(self, name).parameters():
                p.requires_grad = False

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name, layer in zip(STAGES, (None, self.layer1, self.layer2, self.layer3, self.layer4), strict=True):
            if layer is not None:
                x = layer(x)
            if name in self.detach_after:
                x = x.detach()
            out[name] = x
        return out

    def load_imagenet(self, path: str | Path) -> None:
        """torchvision's ``resnet50-*.pth``; its ``fc`` is dropped, every other tensor must fit."""
        path = Path(path)
        state = {k: v for k, v in torch.load(path, map_location="cpu", weights_only=True).items()
                 if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} is not a torchvision ResNet-50 checkpoint: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")


def resnet50_irn(weights: str | Path | None = None, detach_after: tuple[str, ...] = CAM_DETACH,
                 frozen: tuple[str, ...] = ("conv1", "bn1")) -> ResNet50IRN:
    model = ResNet50IRN(detach_after, frozen)
    if weights is not None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"ResNet-50 weights not found at {weights}; fetch them with "
                                    f"`reprolab data fetch weights-resnet50-imagenet`")
        model.load_imagenet(weights)
    return model
