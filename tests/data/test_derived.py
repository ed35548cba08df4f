"""Derived splits: written from a prepared split, opened like one, identified by content."""

from __future__ import annotations

import json

import pytest

from reprolab.data import open_split
from reprolab.data.derived import DerivedRows, write_derived_split
from reprolab.errors import MissingDataError

KEEP = [3, 0, 7]


def write(root, folder, rows, run_id="run-1"):
    source = open_split("sthv1", "train", "tiny", root=root)
    return write_derived_split(folder, "train", source, rows, root=root,
                               derived={"stage": "pseudo-labels", "run_id": run_id})


def opened(root, folder):
    return open_split("sthv1", str(folder / "train"), "tiny", root=root)  # a path: a derived split


def test_labels_and_columns_are_new_the_bytes_are_the_sources(prepared_root, tmp_path):
    source = open_split("sthv1", "train", "tiny", root=prepared_root)
    info = write(prepared_root, tmp_path / "split",
                 DerivedRows(KEEP, [1, 2, 3], columns={"score": [0.5, 0.25, 1.0]}))
    derived = opened(prepared_root, tmp_path / "split")
    assert derived.ids == [source.ids[i] for i in KEEP] and derived.labels == [1, 2, 3]
    assert derived.classes == source.classes and len(derived) == info["samples"] == 3
    assert derived.column("score") == [0.5, 0.25, 1.0]
    assert derived.column("source_label") == [source.labels[i] for i in KEEP]
    assert derived[1].frames == source[0].frames
    assert derived.frames(0, [1, 2]) == source.frames(3, [1, 2])
    assert derived.num_frames == [source.num_frames[i] for i in KEEP]
    assert info["shards_from"] == {"dataset": "sthv1", "profile": "tiny", "split": "train",
                                   "fingerprint": source.fingerprint}
    assert info["derived"]["run_id"] == "run-1"
    assert info["derived"]["source"] == {"dataset": "sthv1", "split": "train",
                                         "samples": len(source), "fingerprint": source.fingerprint}
    assert not (tmp_path / "split" / "shards").exists()  # referenced, not copied


def test_the_fingerprint_is_the_content_not_the_run(prepared_root, tmp_path):
    rows = DerivedRows(KEEP, [1, 2, 3], columns={"score": [0.5, 0.25, 1.0]})
    first = write(prepared_root, tmp_path / "a", rows, run_id="run-1")
    again = write(prepared_root, tmp_path / "b", rows, run_id="run-2")
    assert first["fingerprint"] == again["fingerprint"] != open_split(
        "sthv1", "train", "tiny", root=prepared_root).fingerprint
    relabelled = write(prepared_root, tmp_path / "c", DerivedRows(KEEP, [1, 2, 0], columns={"score": [0.5, 0.25, 1.0]}))
    rescored = write(prepared_root, tmp_path / "d", DerivedRows(KEEP, [1, 2, 3], columns={"score": [0.5, 0.25, 0.9]}))
    assert len({first["fingerprint"], relabelled["fingerprint"], rescored["fingerprint"]}) == 3


def test_a_source_prepared_again_invalidates_the_derived_split(prepared_root, tmp_path):
    write(prepared_root, tmp_path / "split", DerivedRows(KEEP, [1, 2, 3]))
    info_path = tmp_path / "split" / "train.json"
    info = json.loads(info_path.read_text())
    info["shards_from"]["fingerprint"] = "sha256:" + "0" * 64  # as if the source changed since
    info_path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="prepared again"):
        opened(prepared_root, tmp_path / "split")


def test_payloads_go_into_own_shards_beside_the_source_payload(prepared_root, tmp_path):
    source = open_split("sthv1", "train", "tiny", root=prepared_root)
    info = write(prepared_root, tmp_path / "split",
                 DerivedRows([2, 5], [0, 1], payloads=[{"mask": b"m2"}, {"mask": b"m5"}]))
    assert info["shards_from"] is None and info["shards"] == 1
    derived = opened(prepared_root, tmp_path / "split")
    assert derived[0].frames == source[2].frames and derived[1].extra["mask"] == b"m5"
    assert (tmp_path / "split" / "shards" / "train" / "00000.arrow").is_file()
    with pytest.raises(ValueError, match="would replace"):
        write(prepared_root, tmp_path / "clash", DerivedRows([2], [0], payloads=[{"frames": [b"x"]}]))


def test_nothing_half_written_is_opened(prepared_root, tmp_path, monkeypatch):
    folder = tmp_path / "split"
    write(prepared_root, folder, DerivedRows(KEEP, [1, 2, 3]))
    assert len(opened(prepared_root, folder)) == 3

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("reprolab.data.derived.write_manifest", crash)
    with pytest.raises(OSError, match="disk full"):
        write(prepared_root, folder, DerivedRows([1], [0]))
    with pytest.raises(MissingDataError, match="no derived split"):  # not the old split's info
        opened(prepared_root, folder)


@pytest.mark.parametrize("rows, message", [
    (DerivedRows([0, 1], [0]), "2 indices but 1 labels"),
    (DerivedRows([0], [9]), "not class indices"),
    (DerivedRows([], []), "no samples kept"),
    (DerivedRows([0], [0], columns={"label": [1]}), "reserved"),
    (DerivedRows([0], [0], columns={"score": [1.0, 2.0]}), "has 2 values"),
])
def test_inconsistent_rows_are_refused(prepared_root, tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        write(prepared_root, tmp_path / "split", rows)
