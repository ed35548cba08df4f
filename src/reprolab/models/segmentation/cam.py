"""Class activation maps as PSA computes them (jiwoon-ahn/psa network/resnet38_cls.py, infer_cls.py).

Training: backbone -> Dropout2d(0.5) -> global average pooling -> 1x1 conv `fc8` (no bias) ->
20 logits, trained with the multi-label soft margin loss on image labels.
CAM: ReLU(fc8 applied at every position of the un-pooled features).
Inference (`multiscale_cam`): scales (1, 0.5, 1.5, 2.0) x {image, its mirror}; each CAM is
upsampled bilinearly (align_corners=False) to the image size, masked by the image labels and
mirrored back; the sum is divided per class by its maximum (+1e-5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PSA_CAM_SCALES = (1.0, 0.5, 1.5, 2.0)


class CamNet(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int = 20):
        super().__init__()
        self.backbone = backbone
        self.dropout7 = nn.Dropout2d(0.5)
        self.fc8 = nn.Conv2d(backbone.level_channels[-1], num_classes, 1, bias=False)
        nn.init.xavier_uniform_(self.fc8.weight)
        self.from_scratch = [self.fc8]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.dropout7(self.backbone(x)[-1])
        pooled = F.avg_pool2d(features, kernel_size=features.shape[2:])
        return self.fc8(pooled).flatten(1)

    def forward_cam(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.conv2d(self.backbone(x)[-1], self.fc8.weight))


def aggregate_cams(cams: Sequence[torch.Tensor], size: tuple[int, int], labels: torch.Tensor,
                   flipped: Sequence[bool]) -> torch.Tensor:
    """infer_cls.py's `_work` and the sum after it: [C, H, W] max-normalized CAMs of one image
    from the raw CAMs ([1, C, h, w] each) of its scaled (and `flipped`) copies."""
    total = None
    for cam, flip in zip(cams, flipped, strict=True):
        cam = F.interpolate(cam, size, mode="bilinear", align_corners=False)[0]
        cam = cam * labels.to(cam.dtype).view(-1, 1, 1)
        if flip:
            cam = cam.flip(-1)
        total = cam if total is None else total + cam
    return total / (total.amax(dim=(1, 2), keepdim=True) + 1e-5)


@torch.no_grad()
def multiscale_cam(model: CamNet, image: torch.Tensor, labels: torch.Tensor,
                   scales: Sequence[float] = PSA_CAM_SCALES, flip: bool = True) -> torch.Tensor:
    """[C, H, W] CAMs of one normalized image [3, H, W] (zero for classes not in `labels`).

    The official code resizes the PIL image with bicubic resampling before normalizing; here the
    normalized tensor is resized with torch's bicubic interpolation (NOTES.md)."""
    size = tuple(image.shape[-2:])
    cams, flips = [], []
    for scale in scales:
        target = (round(size[0] * scale), round(size[1] * scale))
        scaled = image[None] if scale == 1 else F.interpolate(image[None], target, mode="bicubic",
                                                              align_corners=False)
        for mirrored in ((False, True) if flip else (False,)):
            cams.append(model.forward_cam(scaled.flip(-1) if mirrored else scaled))
            flips.append(mirrored)
    return aggregate_cams(cams, size, labels, flips)


def background_from_alpha(cam: torch.Tensor, alpha: float) -> torch.Tensor:
    """PSA's background score (1 - max_c CAM)^alpha, [1, H, W]; low alpha: background everywhere
    the CAM is not confident (a cautious foreground), high alpha: a cautious background."""
    return (1 - cam.amax(dim=0, keepdim=True)).clamp(min=0) ** alpha


def cam_prediction(cam: torch.Tensor, background: float = 0.2) -> torch.Tensor:
    """infer_cls.py --out_cam_pred: argmax over [constant background, CAMs] -> 0..C labels."""
    return torch.cat([torch.full_like(cam[:1], background), cam]).argmax(0)
