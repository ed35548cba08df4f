"""BN-Inception (Inception-v2 with batch normalisation; Ioffe & Szegedy, 2015) as a feature extractor.

This is the network the Proxy Anchor paper calls Inception-BN: the Caffe model ported to PyTorch
by Cadene's pretrained-models (the weights ``bn_inception-52deb4733.pth`` that the official
Proxy-Anchor code loads). Layers carry the port's names (``inception_3a_1x1``,
``inception_3a_1x1_bn``, ...) so that file loads as is; :func:`load_bn_inception_weights` reads it
from a local path (never downloaded here: the weights card ``weights-bninception-imagenet``
fetches it).

Like the port, batch norms use ``momentum=0.9`` (Caffe's moving-average factor carried over
verbatim; in PyTorch it weights the *new* batch statistics) and the network expects BGR input in
[0, 255] minus the per-channel mean (104, 117, 128), std 1 (see :data:`INPUT_CONFIG`).
``forward`` returns the (batch, 1024, h, w) map of inception_5b; the embedding head pools it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

# Input convention of the Caffe weights, used by reprolab.data.transforms.images.input_transform.
INPUT_CONFIG = {"channel_order": "BGR", "scale": 255.0, "mean": (104.0, 117.0, 128.0), "std": (1.0, 1.0, 1.0),
                "input_size": (3, 224, 224)}
FEATURE_DIM = 1024


class Block(NamedTuple):
    """One inception module: branch widths; ``stride`` 2 marks a grid-reduction module."""

    name: str
    in_channels: int
    out_1x1: int  # 0: no 1x1 branch (reduction modules)
    reduce_3x3: int
    out_3x3: int
    reduce_double: int
    out_double: int
    pool: str  # "avg" or "max"
    pool_proj: int  # 0: the pooled input passes through unprojected
    stride: int = 1


BLOCKS = (
    Block("3a", 192, 64, 64, 64, 64, 96, "avg", 32),
    Block("3b", 256, 64, 64, 96, 64, 96, "avg", 64),
    Block("3c", 320, 0, 128, 160, 64, 96, "max", 0, stride=2),
    Block("4a", 576, 224, 64, 96, 96, 128, "avg", 128),
    Block("4b", 576, 192, 96, 128, 96, 128, "avg", 128),
    Block("4c", 576, 160, 128, 160, 128, 160, "avg", 128),
    Block("4d", 608, 96, 128, 192, 160, 192, "avg", 128),
    Block("4e", 608, 0, 128, 192, 192, 256, "max", 0, stride=2),
    Block("5a", 1056, 352, 192, 320, 160, 224, "avg", 128),
    Block("5b", 1024, 352, 192, 320, 192, 224, "max", 128),
)


class BNInception(nn.Module):
    feature_dim = FEATURE_DIM
    input_config = INPUT_CONFIG

    def __init__(self):
        super().__init__()
        self._conv("conv1_7x7_s2", 3, 64, 7, stride=2, padding=3)
        self._conv("conv2_3x3_reduce", 64, 64, 1)
        self._conv("conv2_3x3", 64, 192, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for block in BLOCKS:
            self._block(block)

    def _conv(self, name: str, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        setattr(self, name, nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding))
        setattr(self, f"{name}_bn", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.9))

    def _block(self, b: Block) -> None:
        p = f"inception_{b.name}"
        if b.out_1x1:
            self._conv(f"{p}_1x1", b.in_channels, b.out_1x1, 1)
        self._conv(f"{p}_3x3_reduce", b.in_channels, b.reduce_3x3, 1)
        self._conv(f"{p}_3x3", b.reduce_3x3, b.out_3x3, 3, stride=b.stride, padding=1)
        self._conv(f"{p}_double_3x3_reduce", b.in_channels, b.reduce_double, 1)
        self._conv(f"{p}_double_3x3_1", b.reduce_double, b.out_double, 3, padding=1)
        self._conv(f"{p}_double_3x3_2", b.out_double, b.out_double, 3, stride=b.stride, padding=1)
        if b.stride == 2:
            pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        elif b.pool == "max":
            pool = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        else:
            pool = nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True)
        setattr(self, f"{p}_pool", pool)
        if b.pool_proj:
            self._conv(f"{p}_pool_proj", b.in_channels, b.pool_proj, 1)

    def _cbr(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """conv -> batch norm -> ReLU, the unit every layer of the network uses."""
        return torch.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)))

    def _forward_block(self, b: Block, x: torch.Tensor) -> torch.Tensor:
        p = f"inception_{b.name}"
        branches = []
        if b.out_1x1:
            branches.append(self._cbr(f"{p}_1x1", x))
        branches.append(self._cbr(f"{p}_3x3", self._cbr(f"{p}_3x3_reduce", x)))
        double = self._cbr(f"{p}_double_3x3_1", self._cbr(f"{p}_double_3x3_reduce", x))
        branches.append(self._cbr(f"{p}_double_3x3_2", double))
        pooled = getattr(self, f"{p}_pool")(x)
        branches.append(self._cbr(f"{p}_pool_proj", pooled) if b.pool_proj else pooled)
        return torch.cat(branches, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self._cbr("conv1_7x7_s2", x))
        x = self.pool(self._cbr("conv2_3x3", self._cbr("conv2_3x3_reduce", x)))
        for block in BLOCKS:
            x = self._forward_block(block, x)
        return x


def load_bn_inception_weights(model: BNInception, path: str | Path) -> None:
    """Load the Cadene port's ImageNet weights (``bn_inception-52deb4733.pth``) from ``path``.

    The file stores batch-norm vectors as (1, C); they are squeezed as the official code does.
    Its classifier (``last_linear``) is dropped. Any other missing or unexpected key is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"BN-Inception weights not found at {path}; fetch them with "
            "`reprolab data fetch weights-bninception-imagenet` or place bn_inception-52deb4733.pth there"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.squeeze(0) if v.ndim > 1 and v.shape[0] == 1 else v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("last_linear.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match BN-Inception: missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
