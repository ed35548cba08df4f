"""Derived splits: what a run made from a prepared split (pseudo labels, predictions, CAMs),
stored as a prepared split, so that the next stage opens it like any dataset.

A derived split lives in a folder of its own (a pipeline stage's `split/`) and has the files of a
prepared split (reprolab.data.manifest), which `reprolab.data.reader` opens unchanged:

    <folder>/<split>.parquet   manifest: id, label (the new one), shard, row, sha256 (see below),
                               num_frames, `source_label` (the label the source split has), the
                               source's extra columns, then the step's own columns (e.g. `score`)
    <folder>/<split>.json      counts, classes and the content fingerprint, as prepare writes
                               them, plus `derived` (what made it: recipe, stage, run id, step,
                               options, the source split and its fingerprint) and `shards_from`
    <folder>/shards/<split>/   only when the step adds bytes per sample (a CAM, a mask): each row
                               holds the source sample's payload and the new payload together

The samples' bytes are either
- referenced (no payloads): `shards_from: {dataset, profile, split, fingerprint}` names the
  source dataset's prepared split, and the manifest's shard/row columns point into its shards.
  Nothing is copied (pseudo labels of a video dataset cost one Parquet file), and the reference
  goes through DatasetLayout, not a relative path that a symlinked runs/ or datasets/ would
  break. Opening checks that the source still has that fingerprint: a source prepared again
  invalidates the derived split loudly instead of pairing new bytes with old labels;
- or copied into own shards (payloads given): self-contained, like a prepared split.

The fingerprint is sha256 over per-sample digests of (id, new label, the source sample's digest,
the step's columns and payloads), in manifest order: it identifies the content, not the run (the
producing run id is recorded beside it, in `derived`).

As in prepare, the info file is written last and removed first: a split is readable iff its
`<split>.json` exists, so nothing half-written is ever opened.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reprolab.data.manifest import (
    read_manifest_table,
    split_fingerprint,
    write_manifest,
    write_split_info,
)
from reprolab.data.reader import PreparedSplit, shards_dir
from reprolab.data.shards import read_shard_table, sample_digest, shard_name, write_shard

SHARD_SIZE = 128
_CORE = ("id", "label", "shard", "row", "sha256", "num_frames")
_SHARD_KEYS = ("id", "label", "sha256")


@dataclass
class DerivedRows:
    """What an inference step returns: which source rows to keep, their new labels and columns."""

    indices: list[int]                      # rows of the source split, in the order to keep them
    labels: list[int]                       # the new label of each kept row (-1: no single label)
    columns: dict[str, list[Any]] = field(default_factory=dict)  # new scalar manifest columns
    payloads: list[dict[str, bytes]] | None = None  # new bytes per kept row (then own shards)
    classes: list[str] | None = None        # None: the source split's classes
    metrics: dict[str, float] = field(default_factory=dict)      # what the step measured


def write_derived_split(folder: Path, split: str, source: PreparedSplit, rows: DerivedRows, *,
                        derived: Mapping[str, Any], root: Path | None = None) -> dict[str, Any]:
    """Write `rows` of `source` as the derived split `folder/<split>`; return its info.

    `derived` is recorded as is in the info (the producing recipe, stage, run id, step, options).
    """
    folder = Path(folder)
    count = len(rows.indices)
    if len(rows.labels) != count:
        raise ValueError(f"derived split {split}: {count} indices but {len(rows.labels)} labels")
    for name, values in rows.columns.items():
        if len(values) != count:
            raise ValueError(f"derived split {split}: column {name!r} has {len(values)} values, "
                             f"expected {count}")
        if name in _CORE or name == "source_label":
            raise ValueError(f"derived split {split}: column {name!r} is reserved")
    if rows.payloads is not None and len(rows.payloads) != count:
        raise ValueError(f"derived split {split}: {len(rows.payloads)} payloads, expected {count}")
    if count == 0:
        raise ValueError(f"derived split {split}: no samples kept (every row was filtered out)")
    classes = rows.classes if rows.classes is not None else (source.classes or None)
    if classes is not None:
        bad = [label for label in rows.labels if int(label) != -1 and not 0 <= int(label) < len(classes)]
        if bad:
            raise ValueError(f"derived split {split}: labels {sorted(set(bad))[:5]} are not class "
                             f"indices (0..{len(classes) - 1})")

    manifest = read_manifest_table(source.prepared_dir / f"{source.split}.parquet")
    src = {name: manifest.column(name).to_pylist() for name in manifest.column_names}
    if "num_frames" not in src:
        src["num_frames"] = [1] * manifest.num_rows
    carried = [c for c in manifest.column_names if c not in _CORE and c not in rows.columns
               and c != "source_label"]

    info_path = folder / f"{split}.json"
    info_path.unlink(missing_ok=True)   # from here on the split is "not written"
    own_shards = folder / "shards" / split
    shutil.rmtree(own_shards, ignore_errors=True)

    digests: list[bytes] = []
    columns: dict[str, list[Any]] = {name: [] for name in _CORE}
    columns["source_label"] = []
    for name in [*carried, *sorted(rows.columns)]:
        columns[name] = []
    for k, index in enumerate(rows.indices):
        index = int(index)
        label = int(rows.labels[k])
        scalars = {name: rows.columns[name][k] for name in sorted(rows.columns)}
        payload = rows.payloads[k] if rows.payloads is not None else {}
        digests.append(sample_digest(src["id"][index], label, {
            "source": bytes.fromhex(src["sha256"][index]), **scalars, **payload}))
        columns["id"].append(src["id"][index])
        columns["label"].append(label)
        columns["shard"].append(src["shard"][index])
        columns["row"].append(src["row"][index])
        columns["sha256"].append(digests[-1].hex())
        columns["num_frames"].append(src["num_frames"][index])
        columns["source_label"].append(src["label"][index])
        for name in carried:
            columns[name].append(src[name][index])
        for name, value in scalars.items():
            columns[name].append(value)

    if rows.payloads is None:
        ref = source.info.get("shards_from")
        if ref is None:
            if source.info.get("derived"):
                raise NotImplementedError(
                    f"derived split {split}: its source {source.prepared_dir} is a derived split "
                    "with shards of its own; give the rows payloads (own shards) instead")
            ref = {"dataset": source.info["dataset"], "profile": source.info["profile"],
                   "split": source.split, "fingerprint": source.fingerprint}
        shards = len(set(columns["shard"]))
    else:
        ref = None
        shards = _write_own_shards(folder, split, source, rows, columns, src, root)

    write_manifest(folder / f"{split}.parquet", columns, classes)
    class_counts = None
    if classes is not None:
        counts = [0] * len(classes)
        for label in columns["label"]:
            if label != -1:  # -1: no single label (multi-label images)
                counts[label] += 1
        class_counts = dict(zip(classes, counts, strict=True))
    info = {
        "dataset": source.info.get("dataset", source.dataset),
        "profile": source.info.get("profile", source.profile),
        "split": split, "samples": count, "classes": classes,
        "num_classes": len(classes) if classes is not None else None,
        "class_counts": class_counts, "frames": sum(columns["num_frames"]), "shards": shards,
        "fingerprint": split_fingerprint(digests),
        "shards_from": ref,
        "derived": {**dict(derived), "source": {
            "dataset": source.info.get("dataset", source.dataset), "split": source.split,
            "samples": len(source), "fingerprint": source.fingerprint}},
        "prepared_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_split_info(info_path, info)   # last: the split exists from now on
    return info


def _write_own_shards(folder: Path, split: str, source: PreparedSplit, rows: DerivedRows,
                      columns: dict[str, list[Any]], src: dict[str, list[Any]],
                      root: Path | None) -> int:
    """Copy each kept sample's source payload and add its new payload, SHARD_SIZE rows a shard;
    point the manifest's shard/row columns at them."""
    base = shards_dir(source.prepared_dir, source.info, root)
    tables: dict[str, Any] = {}
    ids, labels, payloads = columns["id"], columns["label"], []
    for k, index in enumerate(rows.indices):
        shard = src["shard"][int(index)]
        if shard not in tables:
            tables[shard] = read_shard_table(base / shard)
        table, row = tables[shard], src["row"][int(index)]
        payload = {name: table.column(name)[row].as_py() for name in table.column_names
                   if name not in _SHARD_KEYS}
        clash = set(payload) & set(rows.payloads[k])
        if clash:
            raise ValueError(f"derived split {split}: payload {sorted(clash)} would replace the "
                             "source sample's own; name it differently")
        payloads.append({**payload, **rows.payloads[k]})
    shards = 0
    for start in range(0, len(ids), SHARD_SIZE):
        name = shard_name(shards)
        write_shard(folder / "shards" / split / name, ids[start:start + SHARD_SIZE],
                    labels[start:start + SHARD_SIZE], payloads[start:start + SHARD_SIZE])
        for offset in range(min(SHARD_SIZE, len(ids) - start)):
            columns["shard"][start + offset] = f"shards/{split}/{name}"
            columns["row"][start + offset] = offset
        shards += 1
    return shards


__all__ = ["DerivedRows", "write_derived_split"]
