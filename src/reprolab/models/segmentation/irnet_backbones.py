"""IRNet's backbones seen by the WSSS tasks: the five stages x1-x5 of ResNet-50 (strides 4, 4, 8,
16, 16) as a dense backbone (CAM network: the last stage) or as the stage dict IRNet's heads read.

- ``resnet50_irn``: jiwoon-ahn/irn ``net/resnet50_cam.py``'s trunk (reprolab.models.backbones.
  resnet50_irn: FixedBatchNorm, conv1/bn1 frozen, detached after layer2);
- ``tiny_irn``: a small net with the same five strides for the tiny profile (no ImageNet weights
  offline, so it trains from scratch: plain BatchNorm, nothing detached). Its widths are not
  ResNet-50's; ``IRNet(stage_channels=...)`` sizes the heads' 1x1 branches to them.

The same module serves both stages of a chain (``stages=True`` returns the dict), so that the
IRNet stage can start from the CAM stage's weights by name (``init_from``) in the tiny profile,
where IRNet's ImageNet initialisation is not available.
"""

from __future__ import annotations

import torch
from torch import nn

from reprolab.models.backbones.resnet50_irn import STAGES
from reprolab.models.segmentation.dense_backbones import TappedBackbone

RESNET50_STAGE_CHANNELS = (64, 256, 512, 1024, 2048)


class TinyIRN(nn.Module):
    """Five stages at strides 4, 4, 8, 16, 16 (IRNet's), 24-128 channels."""

    stride = 16
    stage_channels = (24, 32, 48, 64, 96)

    def __init__(self):
        super().__init__()

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        c1, c2, c3, c4, c5 = self.stage_channels
        self.stem = nn.Sequential(block(3, 16, 2), block(16, c1, 2))
        self.layer1 = block(c1, c2, 1)
        self.layer2 = block(c2, c3, 2)
        self.layer3 = block(c3, c4, 2)
        self.layer4 = block(c4, c5, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"x1": self.stem(x)}
        for name, layer in zip(STAGES[1:], (self.layer1, self.layer2, self.layer3, self.layer4), strict=True):
            out[name] = layer(out[STAGES[STAGES.index(name) - 1]])
        return out


class StagedBackbone(TappedBackbone):
    """A five-stage trunk as a dense backbone ([x3, x4, x5]) or, with ``stages``, the stage dict."""

    def __init__(self, trunk: nn.Module, stage_channels: tuple[int, ...]):
        super().__init__(trunk, ("x3", "x4", "x5"), tuple(stage_channels[2:]))
        self.stage_channels = tuple(stage_channels)
        self.stages = False

    def forward(self, x):
        features = self.trunk(x)
        return features if self.stages else [features[name] for name in self.taps]


def resnet50_irn_backbone(weights=None) -> StagedBackbone:
    from reprolab.models.backbones.resnet50_irn import resnet50_irn

    return StagedBackbone(resnet50_irn(weights), RESNET50_STAGE_CHANNELS)


def tiny_irn_backbone(weights=None) -> StagedBackbone:
    if weights is not None:
        raise ValueError("tiny_irn has no pretrained weights; set model.weights: null")
    return StagedBackbone(TinyIRN(), TinyIRN.stage_channels)
