"""Parity of the WSSS backbones with the official code, float64, on seeded random weights.

reference/wsss_backbones.pt holds, per network, the seeded input and every 16th/32nd channel
plus the channel sum of each tapped feature, computed by jiwoon-ahn/psa@9493e59
network/resnet38d.py ``Net.forward_as_dict`` and network/vgg16d.py (fc6 dilation 1 and 12), and
by jiwoon-ahn/irn@a2ece00 net/resnet50.py ``ResNet(Bottleneck, [3, 4, 6, 3], strides=(2, 2, 2, 1))``
run stage by stage, all in eval mode with the weights of tests/parity/_seeded.py (see
reference/README.md).
"""

from __future__ import annotations

import pytest
import torch

from reprolab.models.backbones.resnet38 import ResNet38d
from reprolab.models.backbones.resnet50_irn import ResNet50IRN
from reprolab.models.backbones.vgg16_largefov import VGG16LargeFOV
from tests.parity._reference import assert_matches, load_reference
from tests.parity._seeded import seeded_state

CASES = {
    "resnet38d": (lambda: ResNet38d(), 38, 32),
    "vgg16d_fc6_dilation1": (lambda: VGG16LargeFOV(fc6_dilation=1), 16, 16),
    "vgg16d_fc6_dilation12": (lambda: VGG16LargeFOV(fc6_dilation=12), 16, 16),
    "resnet50_irn": (lambda: ResNet50IRN(), 50, 32),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backbone_matches_official(case):
    build, seed, step = CASES[case]
    reference = load_reference("wsss_backbones")[case]
    model = build().double().eval()
    model.load_state_dict(seeded_state(model, seed))
    with torch.no_grad():
        features = model(reference["input"])
    names = [k for k in reference if k != "input" and not k.endswith("_channel_sum")]
    assert sorted(names) == sorted(features)
    for name in names:
        assert_matches(features[name][:, ::step], reference[name], f"{case}.{name}")
        assert_matches(features[name].sum(1), reference[f"{name}_channel_sum"], f"{case}.{name} channel sum")
