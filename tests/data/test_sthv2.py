"""Something-Something V2: WebM (VP9) fixture in the real layout, decoded into JPEG frame shards."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from reprolab.data import decode_frames, open_split
from reprolab.data.fetch import fetch_dataset
from reprolab.data.fixtures import write_mirror
from reprolab.data.layout import DatasetLayout
from reprolab.data.prepare import prepare_dataset

from .conftest import card_of


@pytest.fixture(scope="module")
def sthv2_root(tmp_path_factory):
    from .conftest import make_checkout

    root = make_checkout(tmp_path_factory.mktemp("sthv2") / "checkout", ("sthv2",))
    card = card_of(root, "sthv2")
    fetch_dataset(card, "tiny", root=root, progress=False)
    prepare_dataset(card, "tiny", root=root, workers=2, progress=False)
    return root


def test_raw_layout_and_label_files(sthv2_root):
    import av

    layout = DatasetLayout("sthv2", "tiny", sthv2_root)
    labels = json.loads(layout.raw_file("something-something-v2-labels.json").read_text())
    assert labels == {"Moving something down": "0", "Moving something up": "1",
                      "Pushing something from left to right": "2",
                      "Pushing something from right to left": "3"}
    train = json.loads(layout.raw_file("something-something-v2-train.json").read_text())
    assert len(train) == 240 and set(train[0]) == {"id", "label", "template", "placeholders"}
    assert "[something]" in train[0]["template"]
    with tarfile.open(layout.raw_file("20bn-something-something-v2.tar.gz")) as tar:
        names = tar.getnames()
        assert f"20bn-something-something-v2/{train[0]['id']}.webm" in names
        data = tar.extractfile(f"20bn-something-something-v2/{train[0]['id']}.webm").read()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert container.format.name.startswith("matroska,webm") or "webm" in container.format.name
        assert stream.codec_context.name == "vp9" and stream.average_rate == 12
        frames = list(container.decode(stream))
    assert len(frames) == 32 and (frames[0].width, frames[0].height) == (80, 64)


def test_prepared_frames_labels_and_templates(sthv2_root):
    layout = DatasetLayout("sthv2", "tiny", sthv2_root)
    entries = json.loads(layout.raw_file("something-something-v2-validation.json").read_text())
    by_id = {e["id"]: e for e in entries}
    val = open_split("sthv2", "validation", "tiny", root=sthv2_root)
    assert len(val) == 48 and len(open_split("sthv2", "train", "tiny", root=sthv2_root)) == 240
    for i in range(len(val)):
        sample = val[i]
        entry = by_id[sample.id]
        assert sample.extra["template"] == entry["template"]
        assert val.classes[sample.label] == entry["template"].replace("[", "").replace("]", "")
        assert sample.num_frames == 32  # native frame rate: every frame kept
    clip = decode_frames(val[0].frames)
    assert tuple(clip.shape) == (32, 3, 64, 80)
    assert val.info["options"] == {"height": None, "jpeg_quality": 95}


def test_prepared_frames_match_the_video(sthv2_root):
    """Decoded shard frames are the WebM frames (up to JPEG loss)."""
    import av
    import numpy as np

    layout = DatasetLayout("sthv2", "tiny", sthv2_root)
    val = open_split("sthv2", "validation", "tiny", root=sthv2_root)
    sample = val[3]
    path = layout.extracted_dir("20bn-something-something-v2.tar.gz") / \
        "20bn-something-something-v2" / f"{sample.id}.webm"
    with av.open(str(path)) as container:
        reference = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    ours = decode_frames(sample.frames).permute(0, 2, 3, 1).numpy().astype(int)
    error = np.abs(ours - reference).mean()
    assert error < 8  # JPEG q95 of a noisy texture
    assert np.abs(ours - reference[::-1]).mean() > 1.5 * error  # the frames are in order


def test_fixture_is_deterministic(tmp_path):
    from .conftest import make_checkout

    root = make_checkout(tmp_path / "c", ("sthv2",))
    card = card_of(root, "sthv2")
    write_mirror(card, tmp_path / "a", seed=3)
    write_mirror(card, tmp_path / "b", seed=3)
    assert (tmp_path / "a/SHA256SUMS").read_text() == (tmp_path / "b/SHA256SUMS").read_text()


def test_full_profile_scales_to_height_256(tmp_path):
    """The full-profile option (TSM's scale=-1:256) applied to a fixture video."""
    from reprolab.data.prepare.sthv2 import decode_to_jpeg
    from reprolab.data.prepare.sthv2 import default_options as options_of

    from .conftest import make_checkout

    root = make_checkout(tmp_path / "c", ("sthv2",))
    card = card_of(root, "sthv2")
    fetch_dataset(card, "tiny", root=root, progress=False)
    layout = DatasetLayout("sthv2", "tiny", root)
    video = next((layout.extracted_dir("20bn-something-something-v2.tar.gz")
                  / "20bn-something-something-v2").glob("*.webm"))

    class _Ctx:
        profile = "full"

    options = options_of(_Ctx())
    assert options["height"] == 256
    frames = decode_to_jpeg(str(video), options["height"], options["jpeg_quality"])
    assert tuple(decode_frames(frames, [0]).shape) == (1, 3, 256, 320)
