import random
from pathlib import Path

import pytest
import torch

from reprolab.data.transforms.video import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalClipTransform,
    TrainClipTransform,
    fixed_offsets,
    mirror_sensitive,
    multiscale_crop_box,
    normalize,
    resize,
    three_crops,
)

SSV1_CLASSES = (Path(__file__).parent / "something_v1_classes.txt").read_text().splitlines()


def test_selective_flip_picks_exactly_the_official_ssv1_ids_by_class_name():
    assert len(SSV1_CLASSES) == 174
    assert sorted(mirror_sensitive(SSV1_CLASSES)) == [86, 87, 93, 94, 166, 167]


def test_selective_flip_ignores_words_that_are_not_directions():
    names = ["Pulling it right out", "Putting something upright", "Turning left", "Turning right",
             "Moving something up", "Moving something down"]
    assert mirror_sensitive(names) == {2, 3}
    assert mirror_sensitive(["Pushing something from left to right"]) == frozenset()  # no partner


def test_fixed_offsets_are_the_thirteen_official_positions():
    offsets = fixed_offsets(320, 240, 224, 224)  # w_step 24, h_step 4
    assert len(offsets) == 13 and len(fixed_offsets(320, 240, 224, 224, more_fix_crop=False)) == 5
    assert offsets[:5] == [(0, 0), (96, 0), (0, 16), (96, 16), (48, 8)]
    assert offsets[9:] == [(24, 4), (72, 4), (24, 12), (72, 12)]


def test_multiscale_crop_draws_the_official_size_pairs():
    rng = random.Random(0)
    boxes = [multiscale_crop_box(rng, 240, 320, (224, 224)) for _ in range(3000)]
    sizes = {(h, w) for _, _, h, w in boxes}
    # short side 240 x [1, .875, .75, .66] = 240, 210, 180, 158; pairs at most one step apart
    side = [240, 210, 180, 158]
    expected = {(side[i], side[j]) for i in range(4) for j in range(4) if abs(i - j) <= 1}
    assert sizes == expected
    for top, left, h, w in boxes:
        assert 0 <= top <= 240 - h and 0 <= left <= 320 - w


def test_multiscale_crop_snaps_sizes_within_three_pixels_to_the_output():
    rng = random.Random(1)
    sizes = {multiscale_crop_box(rng, 256, 340, (224, 224))[2] for _ in range(500)}
    assert sizes == {256, 224, 192, 168}  # int(256 * .875) = 224, snapped or not


def test_resize_exact_size_and_short_side():
    frames = torch.zeros(2, 3, 100, 176, dtype=torch.uint8)
    assert resize(frames, (240, 320)).shape == (2, 3, 240, 320)
    assert resize(frames, 256).shape == (2, 3, 256, 450)


def test_normalize_scales_then_standardises():
    frames = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize(frames)
    for c in range(3):
        assert out[0, c, 0, 0].item() == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-6)


def _gradient_clip(t=4, h=100, w=176):
    ramp = torch.linspace(0, 255, w).to(torch.uint8)
    return ramp.expand(t, 3, h, w).clone()


def test_train_transform_output_and_flip_only_where_allowed():
    transform = TrainClipTransform((240, 320), 224)
    flipped_any = False
    for seed in range(12):
        out = transform(_gradient_clip(), random.Random(seed), flip_allowed=True)
        assert out.shape == (4, 3, 224, 224) and out.dtype == torch.float32
        flipped = out[0, 0, 0, 0] > out[0, 0, 0, -1]
        flipped_any |= bool(flipped)
        kept = transform(_gradient_clip(), random.Random(seed), flip_allowed=False)
        assert kept[0, 0, 0, 0] < kept[0, 0, 0, -1]
    assert flipped_any


def test_train_transform_is_a_function_of_the_seed():
    transform = TrainClipTransform((240, 320), 224)
    clip = torch.randint(0, 255, (4, 3, 100, 176), dtype=torch.uint8)
    a = transform(clip, random.Random(5))
    assert torch.equal(a, transform(clip, random.Random(5)))
    assert any(not torch.equal(a, transform(clip, random.Random(s))) for s in range(6, 10))


def test_eval_transform_centre_and_three_crops():
    clip = _gradient_clip(h=256, w=340)
    one = EvalClipTransform(256, 224, crops=1)(clip)
    assert one.shape == (1, 4, 3, 224, 224)
    three = EvalClipTransform(256, 256, crops=3)(clip)
    assert three.shape == (3, 4, 3, 256, 256)
    left, right, centre = three_crops(clip, 256)
    assert left[0, 0, 0, 0] < centre[0, 0, 0, 0] < right[0, 0, 0, 0]
    with pytest.raises(ValueError, match="eval.crops"):
        EvalClipTransform(256, 224, crops=5)
