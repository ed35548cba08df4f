"""Stage 4 of Hong et al. (arXiv 1701.00352): a class-agnostic decoder that turns the encoder's
attention (localization) map of one class into that class's foreground mask.

The paper follows the authors' TransferNet / DecoupledNet design: class-specific attention from
the classification encoder, a decoder shared by all classes that segments what the attention
points at. Its layers are not known to us (no code, no text of the method section was
readable); ours, in reproductions/web-videos-wsss/NOTES.md:

- attention of class c: the encoder's CAM of c at the feature stride (ReLU of fc8's row c on the
  last feature map), divided by its maximum: [B, 1, h, w] in [0, 1];
- decoder input: the encoder's last features, reduced by a 1x1 conv, multiplied by the attention
  (TransferNet's attention-modulated features), concatenated with the attention itself;
- two 3x3 conv + ReLU layers and a 1x1 conv to one foreground logit, upsampled bilinearly to the
  input size.

The encoder is frozen (a trained `wsss-cam` classifier): only the decoder learns from the video
masks, so the class scores and maps the still-image segmentation uses stay the encoder's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.models.segmentation.cam import CamNet


class ClassAgnosticDecoder(nn.Module):
    def __init__(self, in_channels: int, width: int = 256):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, width, 1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            nn.Conv2d(width + 1, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        x = self.reduce(features) * attention
        return self.head(self.body(torch.cat([x, attention], 1)))


class AttentionSegmentationNet(nn.Module):
    """Frozen encoder (CamNet) + class-agnostic decoder: `forward(image, classes)` gives the
    foreground logits [B, 1, H, W] of class classes[b] in image b."""

    def __init__(self, encoder: CamNet, width: int = 256):
        super().__init__()
        self.encoder = encoder
        self.decoder = ClassAgnosticDecoder(encoder.backbone.level_channels[-1], width)
        self.from_scratch = [self.decoder]
        for param in self.encoder.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()   # frozen: no dropout, BatchNorm statistics fixed
        return self

    def features(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.encoder.backbone(image)[-1]

    def class_probabilities(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 20] sigmoid probabilities of the encoder's classifier."""
        with torch.no_grad():
            return torch.sigmoid(self.encoder(image))

    def attention(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """[B, 1, h, w] max-normalized CAM of class classes[b] on features b."""
        weight = self.encoder.fc8.weight[classes.long()]                    # [B, C, 1, 1]
        cam = F.relu((features * weight).sum(1, keepdim=True))
        return cam / (cam.amax(dim=(2, 3), keepdim=True) + 1e-5)

    def forward(self, image: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        features = self.features(image)
        logits = self.decoder(features, self.attention(features, classes))
        return F.interpolate(logits, image.shape[-2:], mode="bilinear", align_corners=False)
