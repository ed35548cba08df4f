"""HMDB-51, UCF-101, Diving48, Kinetics-400, FineGym and web-videos-voc, tiny profile: the real
fetch (local fixture mirror; RAR archives included) and prepare, then the frames themselves."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.data.reader import decode_frames, open_split
from tests.data.test_cub200 import prepare_tiny

EXPECTED = {
    "hmdb51": {"train1": 96, "test1": 48, "train2": 96, "test2": 48, "train3": 96, "test3": 48},
    "ucf101": {"train1": 96, "test1": 48, "train2": 96, "test2": 48, "train3": 96, "test3": 48},
    "diving48": {"v1_train": 96, "v1_test": 48, "v2_train": 92, "v2_test": 48},
    "kinetics400": {"train": 96, "val": 48},
    "finegym": {"gym99_train": 120, "gym99_val": 96, "gym288_train": 144, "gym288_val": 144},
    "web-videos-voc": {"all": 9},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    with pytest.warns(UserWarning) as caught:  # kinetics/web-videos-voc report what is missing
        for dataset, counts in EXPECTED.items():
            assert {s: r.samples for s, r in prepare_tiny(root, dataset).items()} == counts, dataset
    messages = " ".join(str(w.message) for w in caught)
    assert "kinetics400/train: 4 of 100 listed clips are missing" in messages
    assert "web-videos-voc: no videos for 17 classes" in messages
    return root


def drift(sample) -> tuple[float, float]:
    """(dx, dy) of the moving object's centroid from the first to the last frame."""
    clip = decode_frames(sample.frames).float().mean(1).numpy()  # T x H x W grey
    moving = np.abs(clip - np.median(clip, axis=0))
    ys, xs = np.mgrid[0:clip.shape[1], 0:clip.shape[2]]

    def centroid(weights):
        weights = weights * (weights > weights.max() * 0.5)
        return (xs * weights).sum() / weights.sum(), (ys * weights).sum() / weights.sum()

    (x0, y0), (x1, y1) = centroid(moving[0]), centroid(moving[-1])
    return x1 - x0, y1 - y0


def assert_motion_matches_label(split, label_of=lambda s: s.label):
    # classes 0-3 move right, left, up, down (the fixtures' motion code)
    for i in range(len(split)):
        sample = split[i]
        dx, dy = drift(sample)
        expected = [(dx > 2), (dx < -2), (dy < -2), (dy > 2)][label_of(sample)]
        assert expected, f"{split.dataset}/{sample.id}: drift ({dx:.1f}, {dy:.1f}) for class {label_of(sample)}"


def clips(split) -> set[str]:
    return {split[i].extra["clip"] for i in range(len(split))}


def test_hmdb51_folds(root):
    folds = [(open_split("hmdb51", f"train{k}", "tiny", root=root),
              open_split("hmdb51", f"test{k}", "tiny", root=root)) for k in (1, 2, 3)]
    assert folds[0][0].classes == ["brush_hair", "cartwheel", "catch", "chew"]
    train_test = [(clips(train), clips(test)) for train, test in folds]
    for train, test in train_test:
        assert train.isdisjoint(test)  # within a fold no clip is both train and test
    assert train_test[0][1] != train_test[1][1], "the folds differ"
    assert all(i.startswith("1/") for i in folds[0][0].ids)
    assert_motion_matches_label(folds[0][1])


def test_ucf101_folds_keep_groups_apart(root):
    for fold in (1, 2, 3):
        test = open_split("ucf101", f"test{fold}", "tiny", root=root)
        train = open_split("ucf101", f"train{fold}", "tiny", root=root)
        assert test.classes == ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling"]
        def groups(split):
            return {clip.split("_")[-2] for clip in clips(split)}

        assert groups(test) == {f"g{fold:02d}"} and f"g{fold:02d}" not in groups(train)
    assert test[0].num_frames == 32


def test_diving48_versions_are_kept_apart(root):
    v1 = open_split("diving48", "v1_train", "tiny", root=root)
    v2 = open_split("diving48", "v2_train", "tiny", root=root)
    assert all(i.startswith("v1/") for i in v1.ids) and all(i.startswith("v2/") for i in v2.ids)
    v1_labels = {v1[i].extra["vid_name"]: v1.labels[i] for i in range(len(v1))}
    v2_labels = {v2[i].extra["vid_name"]: v2.labels[i] for i in range(len(v2))}
    assert any(v1_labels[v] != v2_labels[v] for v in v2_labels), "V1's noisy labels differ from V2"
    assert v1.classes[0] == "Back_15som_05Twis_FREE"
    assert_motion_matches_label(v2)  # the cleaned labels match the motion


def test_kinetics_and_web_videos(root):
    train = open_split("kinetics400", "train", "tiny", root=root)
    val = open_split("kinetics400", "val", "tiny", root=root)
    assert train.classes == ["abseiling", "air drumming", "answering questions", "applauding"]
    assert set(train.ids).isdisjoint(val.ids)
    assert_motion_matches_label(val)
    web = open_split("web-videos-voc", "all", "tiny", root=root)
    assert len(web.classes) == 20 and sorted(set(web.labels)) == [0, 1, 2]


def test_finegym_cuts_the_annotated_elements(root):
    gym288 = open_split("finegym", "gym288_train", "tiny", root=root)
    gym99 = open_split("finegym", "gym99_train", "tiny", root=root)
    assert len(gym288.classes) == 288 and len(gym99.classes) == 99
    assert {i.split("/", 1)[1] for i in gym99.ids} < {i.split("/", 1)[1] for i in gym288.ids}
    for i in range(len(gym288)):
        sample = gym288[i]
        assert sample.num_frames == 16  # 2 s at 8 fps: exactly the element, none of the stills
        assert sample.extra["end_s"] - sample.extra["start_s"] == 2.0
    assert_motion_matches_label(gym288)
