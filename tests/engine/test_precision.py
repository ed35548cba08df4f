"""bf16 autocast and channels_last give the float32 outputs within a stated tolerance.

On a GPU the loop runs under `optim.amp: bf16` (torch.autocast on CUDA) and `optim.channels_last`;
both are no-ops on CPU, so this checks the models themselves under CPU autocast (the same
bfloat16 rounding of matmuls and convolutions; CUDA's op lists differ in a few reductions) and
under `channels_last_`. Tolerances: bf16 logits within 2% of the largest |logit| (measured at
most 0.51% over the three video models x seeds 0 and 1), embeddings at cosine >= 0.999 with the
float32 ones (measured >= 0.99997); channels_last within 1e-5 relative (measured <= 2.6e-7).
"""

import pytest
import torch
import torch.nn.functional as F

from reprolab.engine.loop import channels_last_
from reprolab.models import create_model
from reprolab.models.embedding import build_embedding_model


def _outputs(model, x):
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x).float()
        channels_last_(model)
        channels_last = model(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
    return reference, bf16, channels_last


@pytest.mark.parametrize("name", ["tsm_resnet50", "selfy_tsm_resnet50", "ms_tsm_resnet50"])
def test_video_models_under_bf16_autocast_and_channels_last(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, num_segments=8, width_multiplier=0.25).eval()
    reference, bf16, channels_last = _outputs(model, torch.randn(2, 8, 3, 64, 64))
    scale = reference.abs().max()
    assert (bf16 - reference).abs().max() <= 0.02 * scale
    assert (channels_last - reference).abs().max() <= 1e-5 * scale
    # the 5-d weights of SELFY's 3-d convolutions stay as they are; the 4-d ones are converted
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


@pytest.mark.parametrize("backbone", ["bn_inception", "resnet50"])
def test_embedding_models_under_bf16_autocast_and_channels_last(backbone):
    torch.manual_seed(0)
    model = build_embedding_model(backbone, 512).eval()
    reference, bf16, channels_last = _outputs(model, torch.randn(2, 3, 96, 96) * 50)
    assert F.cosine_similarity(bf16, reference).min() >= 0.999
    assert (channels_last - reference).abs().max() <= 1e-5 * reference.abs().max()
