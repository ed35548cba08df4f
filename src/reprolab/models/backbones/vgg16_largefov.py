"""VGG-16 DeepLab-LargeFOV trunk at output stride 8, as PSA's ``network/vgg16d.py``.

torchvision's VGG-16 does not match it (2x2 max-pools with stride 2 everywhere, fully connected
fc6/fc7 of 4096 units), so it is built here with PSA's module names (``conv1_1`` ... ``conv5_3``,
``fc6``, ``fc7``): 3x3 max-pools with padding 1, stride 2 after blocks 1-3 and stride 1 after
block 4, conv5 dilated by 2, fc6 a 3x3 conv to 1024 channels (dilation ``fc6_dilation``: 1 in
PSA's classifier, 4 in its AffinityNet, 12 in DeepLab-LargeFOV), fc7 a 1x1 conv to 1024, ReLUs,
dropout 0.5 after fc6. ``forward`` returns ``conv4``, ``conv5`` and ``conv5fc`` (fc7's output).

PSA defines but never calls the ``pool5`` (max 3x3/1) and ``pool5a`` (avg 3x3/1) layers that
its Caffe prototxt (``vgg16_20M.prototxt``) places before fc6; ``pool5=False`` follows PSA's
forward, ``pool5=True`` the prototxt. Inputs are BGR, mean-subtracted, 0-255 (Caffe's
convention, PSA's ``vgg16d.Normalize``). The DeepLab ``vgg16_20M.caffemodel`` init needs a Caffe
reader and is not loaded here: ``weights`` fails loudly.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.errors import NotBuiltError

VGG16_CAFFE_INPUT = {"channel_order": "BGR", "scale": 255.0, "mean": (104.008, 116.669, 122.675),
                     "std": (1.0, 1.0, 1.0), "input_size": (3, 321, 321)}


class VGG16LargeFOV(nn.Module):
    feature_dim = 1024
    stride = 8
    input_config = VGG16_CAFFE_INPUT

    def __init__(self, fc6_dilation: int = 1, pool5: bool = False, frozen: tuple[str, ...] = ()):
        super().__init__()
        widths = ((3, 64, 64), (64, 128, 128), (128, 256, 256, 256), (256, 512, 512, 512), (512, 512, 512, 512))
        for block, chans in enumerate(widths, start=1):
            for i in range(1, len(chans)):
                dilation = 2 if block == 5 else 1
                setattr(self, f"conv{block}_{i}",
                        nn.Conv2d(chans[i - 1], chans[i], 3, padding=dilation, dilation=dilation))
        self.pool5 = pool5
        self.fc6 = nn.Conv2d(512, 1024, 3, padding=fc6_dilation, dilation=fc6_dilation)
        self.drop6 = nn.Dropout2d(0.5)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        for name in frozen:
            for p in getattr(self, name).parameters():
                p.requires_grad = False

    def _block(self, x: torch.Tensor, block: int, convs: int) -> torch.Tensor:
        for i in range(1, convs + 1):
            x = F.relu(getattr(self, f"conv{block}_{i}")(x))
        return x

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for block, convs in ((1, 2), (2, 2), (3, 3)):
            x = F.max_pool2d(self._block(x, block, convs), 3, stride=2, padding=1)
        conv4 = self._block(x, 4, 3)
        conv5 = self._block(F.max_pool2d(conv4, 3, stride=1, padding=1), 5, 3)
        x = conv5
        if self.pool5:
            x = F.avg_pool2d(F.max_pool2d(x, 3, stride=1, padding=1), 3, stride=1, padding=1)
        x = self.drop6(F.relu(self.fc6(x)))
        return {"conv4": conv4, "conv5": conv5, "conv5fc": F.relu(self.fc7(x))}


def vgg16_largefov(weights: str | Path | None = None, fc6_dilation: int = 1, pool5: bool = False,
                   frozen: tuple[str, ...] = ()) -> VGG16LargeFOV:
    if weights is not None:
        raise NotBuiltError(
            f"vgg16_largefov: loading the DeepLab init {weights} (vgg16_20M.caffemodel) is not built: "
            "it needs a Caffe protobuf reader; train from scratch (weights=None) or convert it first")
    return VGG16LargeFOV(fc6_dilation, pool5, frozen)
