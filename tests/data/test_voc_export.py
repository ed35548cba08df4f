"""VOC-server export: palette PNGs in results/VOC2012/Segmentation/<comp>_test_cls, a tarball."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from PIL import Image

from reprolab.data.prepare.voc2012 import voc_palette
from reprolab.data.voc_export import pack_submission, write_voc_segmentation


def test_pngs_carry_the_labels_and_the_voc_palette(tmp_path):
    rng = np.random.default_rng(0)
    labels = {"2008_000001": rng.integers(0, 21, (7, 9)), "2008_000002": np.zeros((5, 4), np.uint8)}
    folder = write_voc_segmentation(labels.items(), tmp_path, expected_ids=list(labels))
    assert folder == tmp_path / "results" / "VOC2012" / "Segmentation" / "comp6_test_cls"
    for image_id, expected in labels.items():
        image = Image.open(folder / f"{image_id}.png")
        assert image.mode == "P" and image.getpalette()[:63] == voc_palette()[:63]
        assert np.array_equal(np.asarray(image), expected)
        assert image.convert("RGB").getpixel((0, 0)) == tuple(voc_palette()[3 * int(expected[0, 0]):][:3])
    archive = pack_submission(tmp_path)
    with tarfile.open(archive) as tar:
        assert sorted(n for n in tar.getnames() if n.endswith(".png")) == [
            f"results/VOC2012/Segmentation/comp6_test_cls/{i}.png" for i in sorted(labels)]
    first = archive.read_bytes()
    assert pack_submission(tmp_path).read_bytes() == first  # deterministic


def test_bad_predictions_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"image a: labels \[255\] outside 0-20"):
        write_voc_segmentation([("a", np.full((2, 2), 255))], tmp_path)
    with pytest.raises(ValueError, match="H x W"):
        write_voc_segmentation([("b", np.zeros((2, 2, 3), int))], tmp_path)
    with pytest.raises(ValueError, match="1 expected images missing"):
        write_voc_segmentation([("c", np.zeros((2, 2), int))], tmp_path, expected_ids=["c", "d"])
    with pytest.raises(ValueError, match="comp5 .* or comp6"):
        write_voc_segmentation([], tmp_path, competition="comp4")
