"""DeepLab v2 (Chen et al., TPAMI 2017): a dilated ResNet with the ASPP classifier, trained on
pseudo labels: the segmentation network of IRNet's semantic rows ("DeepLab v2, ResNet-50").

IRNet's repository has no segmentation training code (irn issue #22): the network and schedule
follow DeepLab v2 (ASPP-L: four 3x3 classifiers with dilations 6, 12, 18, 24 on the stride-8
last stage, summed; poly schedule), recipe ours (reproductions/irnet/NOTES.md). Training data,
loss and evaluation are the `semantic-segmentation` task's (cross entropy on a derived split's
`pseudo_label`, 255 ignored; mIoU on the ground truth).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from reprolab.tasks.base import TASKS
from reprolab.tasks.segmentation import SegmentationModelConfig, SemanticSegmentation, _maybe_frozen


class DeepLabV2ModelConfig(SegmentationModelConfig):
    backbone: str = "resnet50_os8"
    dilations: tuple[int, ...] = Field(default=(6, 12, 18, 24), description="ASPP-L branch dilations")


class DeepLabV2(nn.Module):
    """Dense backbone (last level) -> sum of the ASPP branches' logits -> bilinear to the input size."""

    def __init__(self, backbone: nn.Module, dilations=(6, 12, 18, 24), num_labels: int = 21):
        super().__init__()
        self.backbone = backbone
        channels = backbone.level_channels[-1]
        self.aspp = nn.ModuleList(nn.Conv2d(channels, num_labels, 3, padding=d, dilation=d) for d in dilations)
        for conv in self.aspp:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        self.from_scratch = [self.aspp]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)[-1]
        logits = sum(branch(features) for branch in self.aspp)
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)


@TASKS.register(name="deeplab-v2")
class DeepLabV2Segmentation(SemanticSegmentation):
    Model = DeepLabV2ModelConfig

    def build_model(self, *, pretrained: bool = True) -> nn.Module:
        net = DeepLabV2(self.backbone(pretrained), self.model_cfg.dilations)
        return _maybe_frozen(net, self.model_cfg.freeze_bn)
