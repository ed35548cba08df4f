"""Manifests: one Parquet table per split (written through Hugging Face `datasets`) + a JSON info.

Manifest columns (one row per sample, in the split's deterministic order):
    id          string   the dataset's own sample id (e.g. the SSv1 video id "12345")
    label       ClassLabel(names=classes), or int64 -1 when the dataset has no single label
    shard       string   shard file, relative to the prepared folder (shards/<split>/00000.arrow)
    row         int32    row inside that shard
    sha256      string   hex digest of the sample (id, label, payload bytes)
    num_frames  int32    videos only
    ...                  dataset-specific scalar columns (e.g. SSv2 `template`)

`<split>.json` beside it records counts, class names, the shard count and the content
fingerprint: sha256 over the per-sample digests in manifest order, i.e. over the ids, labels
and bytes. It does not depend on file times or shard size, so it identifies the data itself.
The info file is written last: a split is prepared iff both files exist.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reprolab import atomic


def split_fingerprint(digests: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for digest in digests:
        h.update(digest)
    return "sha256:" + h.hexdigest()


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def write_manifest(path: Path, columns: dict[str, list[Any]], classes: list[str] | None) -> Path:
    """Write the manifest Parquet atomically, `label` typed as a ClassLabel with the class names."""
    _offline()
    import datasets

    features = {}
    for name, values in columns.items():
        if name == "label":
            features[name] = (datasets.ClassLabel(names=list(classes)) if classes is not None
                              else datasets.Value("int64"))
        elif name in ("row", "num_frames"):
            features[name] = datasets.Value("int32")
        elif values and isinstance(values[0], bool):
            features[name] = datasets.Value("bool")
        elif values and isinstance(values[0], int):
            features[name] = datasets.Value("int64")
        elif values and isinstance(values[0], float):
            features[name] = datasets.Value("float64")
        else:
            features[name] = datasets.Value("string")
    table = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with atomic.atomic_path(path) as tmp:
            table.to_parquet(str(tmp))
            os.chmod(tmp, 0o644)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return path


def read_manifest_table(path: Path):
    """The manifest as a pyarrow Table (no `datasets` import: usable on a bare training node)."""
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no manifest")
    return pq.read_table(path)


def load_manifest(path: Path):
    """The manifest as a Hugging Face `datasets.Dataset` (ClassLabel names included)."""
    _offline()
    import datasets
    from datasets.table import InMemoryTable

    # Not Dataset.from_parquet: that builds a copy in the user's cache folder for every path.
    # The features (ClassLabel names) come back from the Parquet schema's metadata.
    return datasets.Dataset(InMemoryTable(read_manifest_table(path)))


def write_split_info(path: Path, info: dict[str, Any]) -> Path:
    return atomic.write_json(path, info)


def read_split_info(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no split info (the split is not prepared)") from None
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); run prepare again") from None
