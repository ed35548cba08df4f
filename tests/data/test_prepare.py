"""Prepare on the tiny SSv1 fixture: manifests, shards, checks, fingerprint, resume, reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from reprolab.data import decode_frames, open_split
from reprolab.data.fixtures import write_mirror
from reprolab.data.fixtures.sthv1 import MOTIONS
from reprolab.data.layout import DatasetLayout
from reprolab.data.manifest import load_manifest, split_fingerprint
from reprolab.data.prepare import FAIL_AT_SHARD_ENV, PrepareError, prepare_dataset
from reprolab.data.shards import sample_digest
from reprolab.errors import MissingDataError

from .conftest import card_of

SSV1_NAMES = sorted(name for name, _ in MOTIONS[:4])


def test_splits_counts_classes_and_frames(prepared_root):
    train = open_split("sthv1", "train", "tiny", root=prepared_root)
    val = open_split("sthv1", "validation", "tiny", root=prepared_root)
    assert (len(train), len(val)) == (64, 32)
    # Class index = alphabetical order of the real SSv1 names (the labels file is shuffled).
    assert train.classes == val.classes == SSV1_NAMES
    assert train.info["class_counts"] == dict.fromkeys(SSV1_NAMES, 16)
    assert val.info["class_counts"] == dict.fromkeys(SSV1_NAMES, 8)
    assert not set(train.ids) & set(val.ids)
    assert train.ids == sorted(train.ids, key=int)  # deterministic order: numeric video id
    sample = train[5]
    assert sample.num_frames == 16 and len(sample.frames) == 16
    assert all(f[:2] == b"\xff\xd8" for f in sample.frames)  # JPEG
    clip = decode_frames(sample.frames, [0, 8, 15])
    assert tuple(clip.shape) == (3, 3, 64, 80) and str(clip.dtype) == "torch.uint8"
    assert train.frames(5, [2, 3]) == sample.frames[2:4]
    assert train[-1].id == train.ids[-1]
    with pytest.raises(IndexError):
        train[64]


def test_labels_and_bytes_match_the_raw_files(prepared_root):
    layout = DatasetLayout("sthv1", "tiny", prepared_root)
    csv = layout.raw_file("something-something-v1-train.csv").read_text().splitlines()
    expected = dict(line.split(";") for line in csv)
    train = open_split("sthv1", "train", "tiny", root=prepared_root)
    frames_root = layout.extracted_dir("20bn-something-something-v1.tar") / "20bn-something-something-v1"
    for i in range(len(train)):
        sample = train[i]
        assert train.classes[sample.label] == expected[sample.id]
    first = train[0]
    assert first.frames[0] == (frames_root / first.id / "00001.jpg").read_bytes()  # kept as is


def test_fingerprint_is_sha256_over_ids_labels_and_bytes(prepared_root):
    split = open_split("sthv1", "validation", "tiny", root=prepared_root)
    digests = [sample_digest(s.id, s.label, {"frames": s.frames}) for s in (split[i] for i in range(len(split)))]
    assert split.fingerprint == split_fingerprint(digests)
    info = json.loads((DatasetLayout("sthv1", "tiny", prepared_root).split_info("validation")).read_text())
    assert info["fingerprint"] == split.fingerprint and info["samples"] == 32 and info["frames"] == 32 * 16


def test_manifest_is_parquet_with_classlabel(prepared_root):
    manifest = load_manifest(DatasetLayout("sthv1", "tiny", prepared_root).manifest("train"))
    assert manifest.num_rows == 64
    assert manifest.features["label"].names == SSV1_NAMES
    assert set(manifest.column_names) >= {"id", "label", "shard", "row", "sha256", "num_frames"}
    assert manifest[0]["shard"] == "shards/train/00000.arrow"


def test_manifest_columns_read_without_the_shards(prepared_root):
    split = open_split("sthv1", "validation", "tiny", root=prepared_root)
    assert split.column("id") == [split[i].id for i in range(len(split))]
    assert split.column("label") == split.labels
    with pytest.raises(KeyError, match=r"sthv1/validation: the manifest has no column 'captions'"):
        split.column("captions")


def test_fixture_is_deterministic(checkout, tmp_path):
    card = card_of(checkout, "sthv1")
    write_mirror(card, tmp_path / "a", seed=0)
    write_mirror(card, tmp_path / "b", seed=0)
    write_mirror(card, tmp_path / "c", seed=1)
    sums = [(tmp_path / d / "SHA256SUMS").read_text() for d in "abc"]
    assert sums[0] == sums[1] != sums[2]


def _motion_features(frames: np.ndarray) -> np.ndarray:
    """Global image motion (u, v) per frame pair, by least squares on the brightness constancy."""
    gray = frames.astype(np.float32).mean(axis=-1)
    gy, gx = np.gradient(gray, axis=(1, 2))
    features = []
    for t in range(len(gray) - 1):
        it = gray[t + 1] - gray[t]
        a = np.array([[np.sum(gx[t] ** 2), np.sum(gx[t] * gy[t])],
                      [np.sum(gx[t] * gy[t]), np.sum(gy[t] ** 2)]])
        b = -np.array([np.sum(gx[t] * it), np.sum(gy[t] * it)])
        features.append(np.linalg.solve(a + 1e-3 * np.eye(2), b))
    return np.mean(features, axis=0) * 100


def _features(split, order_blind: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in range(len(split)):
        sample = split[i]
        video = decode_frames(sample.frames).permute(0, 2, 3, 1).numpy()
        if order_blind:
            video = video[rng.permutation(len(video))]
        xs.append(_motion_features(video))
        ys.append(sample.label)
    return np.stack(xs), np.array(ys)


def test_fixture_needs_temporal_order(prepared_root):
    """Motion direction is learnable from frame order; with the order shuffled it is not."""
    from sklearn.linear_model import LogisticRegression

    train = open_split("sthv1", "train", "tiny", root=prepared_root)
    val = open_split("sthv1", "validation", "tiny", root=prepared_root)
    accuracy = {}
    for blind in (False, True):
        rng = np.random.default_rng(0)
        x_train, y_train = _features(train, blind, rng)
        x_val, y_val = _features(val, blind, rng)
        model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
        accuracy[blind] = float((model.predict(x_val) == y_val).mean())
    assert accuracy[False] >= 0.9, accuracy          # chance is 0.25
    assert accuracy[True] <= 0.75, accuracy          # order-blind: axis at best, not direction


@pytest.fixture
def fetched_copy(prepared_root, tmp_path) -> Path:
    """A private copy of the prepared checkout, without the prepared outputs."""
    root = tmp_path / "copy"
    shutil.copytree(prepared_root, root, symlinks=True)
    shutil.rmtree(DatasetLayout("sthv1", "tiny", root).prepared)
    return root


def test_killed_prepare_resumes_without_redoing_finished_shards(fetched_copy, prepared_root, monkeypatch):
    card = card_of(fetched_copy, "sthv1")
    layout = DatasetLayout("sthv1", "tiny", fetched_copy)
    monkeypatch.setenv(FAIL_AT_SHARD_ENV, "train:2")
    with pytest.raises(RuntimeError, match="failing shard 2"):
        prepare_dataset(card, "tiny", root=fetched_copy, workers=2, shard_size=16, progress=False)
    shards = layout.shards_dir("train")
    done = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.arrow")}
    assert "00002.arrow" not in done and {"00000.arrow", "00001.arrow"} <= set(done)
    assert not layout.manifest("train").exists() and not layout.split_info("train").exists()
    assert not list(shards.glob(".*.tmp"))  # nothing half-written

    (shards / ".00003.arrow.abc123.tmp").write_bytes(b"half a shard")  # as after a SIGKILL
    monkeypatch.delenv(FAIL_AT_SHARD_ENV)
    reports = prepare_dataset(card, "tiny", root=fetched_copy, workers=2, shard_size=16, progress=False)
    train = next(r for r in reports if r.split == "train")
    assert (train.shards, train.shards_written) == (4, 4 - len(done))
    for name, mtime in done.items():
        assert (shards / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    assert sorted(p.name for p in shards.iterdir()) == [
        "00000.arrow", "00001.arrow", "00002.arrow", "00003.arrow", "plan.json"]
    # Same content, other shard size and worker count: the fingerprint does not change.
    reference = open_split("sthv1", "train", "tiny", root=prepared_root).fingerprint
    assert train.fingerprint == reference
    assert open_split("sthv1", "train", "tiny", root=fetched_copy)[20].id == \
        open_split("sthv1", "train", "tiny", root=prepared_root)[20].id


def test_changed_plan_rewrites_shards(fetched_copy):
    card = card_of(fetched_copy, "sthv1")
    prepare_dataset(card, "tiny", root=fetched_copy, workers=1, shard_size=32, progress=False)
    reports = prepare_dataset(card, "tiny", root=fetched_copy, workers=1, shard_size=32, progress=False)
    assert [r.shards_written for r in reports] == [0, 0]
    reports = prepare_dataset(card, "tiny", root=fetched_copy, workers=1, shard_size=16, progress=False)
    assert [r.shards_written for r in reports] == [4, 2]


def test_damaged_shard_is_rebuilt(fetched_copy):
    card = card_of(fetched_copy, "sthv1")
    first = prepare_dataset(card, "tiny", root=fetched_copy, workers=1, shard_size=16, progress=False)
    shard = DatasetLayout("sthv1", "tiny", fetched_copy).shards_dir("train") / "00001.arrow"
    shard.write_bytes(shard.read_bytes()[:1000])
    again = prepare_dataset(card, "tiny", root=fetched_copy, workers=1, shard_size=16, progress=False)
    assert [r.shards_written for r in again] == [1, 0]
    assert [r.fingerprint for r in again] == [r.fingerprint for r in first]


def test_counts_are_checked_against_the_card(fetched_copy):
    card_path = fetched_copy / "datasets" / "sthv1" / "card.yaml"
    data = yaml.safe_load(card_path.read_text())
    data["tiny"]["splits"]["train"] = 65
    card_path.write_text(yaml.safe_dump(data, sort_keys=False))
    card = card_of(fetched_copy, "sthv1")
    with pytest.raises(PrepareError, match=r"train: 64 samples, the card expects 65 .*tiny\.splits\.train"):
        prepare_dataset(card, "tiny", root=fetched_copy, workers=1, progress=False)
    assert not DatasetLayout("sthv1", "tiny", fetched_copy).manifest("train").exists()
    with pytest.warns(UserWarning, match="counts differ"):
        prepare_dataset(card, "tiny", root=fetched_copy, workers=1, progress=False,
                        allow_count_mismatch=True)
    info = open_split("sthv1", "train", "tiny", root=fetched_copy).info
    assert info["count_problems"] and "65" in info["count_problems"][0]


def test_overlapping_splits_are_refused(fetched_copy):
    layout = DatasetLayout("sthv1", "tiny", fetched_copy)
    train_csv = layout.raw_file("something-something-v1-train.csv")
    val_csv = layout.raw_file("something-something-v1-validation.csv")
    val_csv.write_text(val_csv.read_text() + train_csv.read_text().splitlines()[0] + "\n")
    with pytest.raises(PrepareError, match="share 1 sample ids"):
        prepare_dataset(card_of(fetched_copy, "sthv1"), "tiny", root=fetched_copy, workers=1,
                        progress=False)


def test_bad_label_line_names_file_and_line(fetched_copy):
    layout = DatasetLayout("sthv1", "tiny", fetched_copy)
    val_csv = layout.raw_file("something-something-v1-validation.csv")
    val_csv.write_text(val_csv.read_text() + "123;Juggling something\n")
    with pytest.raises(PrepareError, match=r"validation\.csv:33: label 'Juggling something'"):
        prepare_dataset(card_of(fetched_copy, "sthv1"), "tiny", root=fetched_copy, workers=1,
                        progress=False)


def test_unprepared_split_says_what_to_run(checkout):
    with pytest.raises(MissingDataError, match="reprolab data fetch sthv1 --profile tiny && "
                                               "reprolab data prepare sthv1 --profile tiny"):
        open_split("sthv1", "train", "tiny", root=checkout)


def test_prepare_before_fetch_says_what_to_run(checkout):
    with pytest.raises(MissingDataError, match="Run: reprolab data fetch sthv1 --profile tiny"):
        prepare_dataset(card_of(checkout, "sthv1"), "tiny", root=checkout, progress=False)


class _Labels:
    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        sample = self.split[i]
        return sample.label, len(sample.frames), sample.id


def test_reader_works_in_dataloader_workers(prepared_root):
    from torch.utils.data import DataLoader

    split = open_split("sthv1", "train", "tiny", root=prepared_root)
    split[0]  # a shard opened in the parent must not be reused by the workers
    for context in ("fork", "spawn"):
        loader = DataLoader(_Labels(split), batch_size=8, num_workers=2, multiprocessing_context=context)
        labels, counts, ids = [], [], []
        for label, count, sample_id in loader:
            labels += label.tolist()
            counts += count.tolist()
            ids += list(sample_id)
        assert ids == split.ids and labels == split.labels and set(counts) == {16}


def test_a_mistyped_split_gets_a_suggestion(fetched_copy):
    from reprolab.names import UnknownNameError

    with pytest.raises(UnknownNameError, match="sthv1: unknown split 'validaton'; did you mean validation?"):
        prepare_dataset(card_of(fetched_copy, "sthv1"), "tiny", root=fetched_copy, workers=1,
                        progress=False, splits=["validaton"])
    assert not DatasetLayout("sthv1", "tiny", fetched_copy).prepared.exists()
