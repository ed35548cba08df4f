"""Read a prepared split by sample index: the API training code uses.

```python
from reprolab.data import open_split, decode_frames

split = open_split("sthv1", "train", profile="tiny")
len(split), split.classes, split.fingerprint
sample = split[0]             # Sample(id, label, num_frames, frames=[JPEG bytes, ...], extra)
clip = decode_frames(sample.frames, [0, 4, 8, 12])   # uint8 tensor [T, 3, H, W]
```
Only pyarrow is needed to read (no `datasets`); shards are opened lazily in each process, so a
`PreparedSplit` can be handed to a DataLoader with workers (fork or spawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolab.data.layout import DatasetLayout, Profile
from reprolab.data.manifest import read_manifest_table, read_split_info
from reprolab.data.shards import ShardCache


@dataclass(frozen=True)
class Sample:
    """One sample as stored: encoded bytes, decoding is left to the caller."""

    index: int
    id: str
    label: int                  # class index into `PreparedSplit.classes`; -1: no single label
    num_frames: int             # videos: number of frames; images: 1
    frames: list[bytes]         # encoded JPEG frames (videos) or [image bytes] (images)
    extra: dict[str, Any] = field(default_factory=dict)  # other payload and manifest columns


_SKIP = {"id", "label", "shard", "row", "sha256", "num_frames"}


def shards_dir(prepared_dir: Path, info: Mapping[str, Any], root: Path | None = None) -> Path:
    """The folder a split's manifest `shard` paths are relative to: its own, or (a derived split
    with `shards_from`) the source dataset's prepared folder, checked against its fingerprint."""
    ref = info.get("shards_from")
    if not ref:
        return Path(prepared_dir)
    layout = DatasetLayout(ref["dataset"], ref["profile"], root)
    where = f"{ref['dataset']}/{ref['split']} ({ref['profile']})"
    try:
        source = read_split_info(layout.split_info(ref["split"]))
    except FileNotFoundError:
        from reprolab.errors import MissingDataError

        raise MissingDataError(
            f"{prepared_dir}: a derived split of {where}, which is not prepared. Run: reprolab data "
            f"prepare {ref['dataset']} --profile {ref['profile']}, then the stage that made it"
        ) from None
    if source.get("fingerprint") != ref["fingerprint"]:
        raise ValueError(
            f"{prepared_dir}: derived from {where} with fingerprint {ref['fingerprint']}, but that "
            f"split now has {source.get('fingerprint')} (prepared again?); rerun the stage that "
            "made it"
        )
    return layout.prepared


class PreparedSplit:
    """Random access to a prepared split: `len`, `classes`, `fingerprint`, `split[i] -> Sample`."""

    def __init__(self, prepared_dir: Path, split: str, *, dataset: str = "", profile: str = "",
                 cache_size: int = 64, root: Path | None = None):
        self.prepared_dir = Path(prepared_dir)
        self.split = split
        self.dataset = dataset
        self.profile = profile
        self.info = read_split_info(self.prepared_dir / f"{split}.json")
        # A derived split (reprolab.data.derived) may read its samples from its source's shards.
        self.shards_dir = shards_dir(self.prepared_dir, self.info, root)
        table = read_manifest_table(self.prepared_dir / f"{split}.parquet")
        self.ids: list[str] = table.column("id").to_pylist()
        self.labels: list[int] = table.column("label").to_pylist()
        self.num_frames: list[int] = (table.column("num_frames").to_pylist()
                                      if "num_frames" in table.column_names else [1] * len(self.ids))
        self._rows: list[int] = table.column("row").to_pylist()
        shard_col = table.column("shard").to_pylist()
        self.shard_files: list[str] = sorted(set(shard_col))
        index = {name: i for i, name in enumerate(self.shard_files)}
        self._shard_of: list[int] = [index[name] for name in shard_col]
        self._extra_columns = [c for c in table.column_names if c not in _SKIP]
        self._extras = {c: table.column(c).to_pylist() for c in self._extra_columns}
        self._cache = ShardCache(cache_size)
        if len(self.ids) != self.info.get("samples"):
            raise ValueError(f"{self.prepared_dir / split}.parquet has {len(self.ids)} rows but "
                             f"{split}.json says {self.info.get('samples')}; run prepare again")

    @property
    def classes(self) -> list[str]:
        return list(self.info.get("classes") or [])

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> list:
        """A manifest column (id, label or an extra column) for every sample, without reading shards."""
        if name in ("id", "label"):
            return list(self.ids if name == "id" else self.labels)
        if name not in self._extras:
            raise KeyError(f"{self.dataset}/{self.split}: the manifest has no column {name!r} "
                           f"(columns: id, label, {', '.join(self._extra_columns)})")
        return list(self._extras[name])

    def _locate(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.dataset}/{self.split}: index {index} out of range ({len(self)})")
        index %= len(self)
        table = self._cache.table(self.shards_dir / self.shard_files[self._shard_of[index]])
        return index, table, self._rows[index]

    def __getitem__(self, index: int) -> Sample:
        index, table, row = self._locate(index)
        extra = {c: self._extras[c][index] for c in self._extra_columns}
        frames: list[bytes] = []
        for name in table.column_names:
            if name in ("id", "label", "sha256"):
                continue
            value = table.column(name)[row].as_py()
            if name == "frames":
                frames = value
            elif name == "image" and not frames:
                frames = [value]
                extra[name] = value
            else:
                extra[name] = value
        return Sample(index, self.ids[index], self.labels[index], self.num_frames[index], frames, extra)

    def frames(self, index: int, frame_indices: Sequence[int]) -> list[bytes]:
        """Only the chosen frames of a video (cheaper than `split[i].frames` for long videos)."""
        _, table, row = self._locate(index)
        if "frames" not in table.column_names:
            raise KeyError(f"{self.dataset}/{self.split}: the shards have no `frames` column "
                           f"(columns: {table.column_names})")
        stored = table.column("frames")[row].values
        return [stored[int(i)].as_py() for i in frame_indices]

    def __repr__(self) -> str:
        return (f"PreparedSplit({self.dataset or self.prepared_dir}, split={self.split!r}, "
                f"samples={len(self)}, classes={len(self.classes)})")


def open_split(dataset_id: str, split: str, profile: Profile = "full", *,
               root: Path | None = None) -> PreparedSplit:
    """Open a prepared split. Raises MissingDataError (with the command to run) if not prepared.

    `split` may also be the path of a derived split of the dataset, `<folder>/<split>` relative
    to the checkout (e.g. runs/<recipe>/tiny/stages/pseudo-labels/split/train): what a pipeline
    stage trains on when it reads an earlier stage's outputs (reprolab.pipeline).
    """
    if "/" in split:
        return _open_derived(dataset_id, split, profile, root)
    layout = DatasetLayout(dataset_id, profile, root)
    if split not in layout.prepared_splits():
        from reprolab.errors import MissingDataError

        have = ", ".join(layout.prepared_splits()) or "none"
        flag = "" if profile == "full" else f" --profile {profile}"
        raise MissingDataError(
            f"{dataset_id}: split {split!r} is not prepared in the {profile} profile "
            f"(prepared splits: {have}; looked in {layout.prepared}). Run: "
            f"reprolab data fetch {dataset_id}{flag} && reprolab data prepare {dataset_id}{flag}"
        )
    return PreparedSplit(layout.prepared, split, dataset=dataset_id, profile=profile)


def _open_derived(dataset_id: str, split: str, profile: Profile, root: Path | None) -> PreparedSplit:
    from reprolab import paths

    path = (root or paths.project_root()) / split
    if not (path.parent / f"{path.name}.json").is_file():
        from reprolab.errors import MissingDataError

        raise MissingDataError(f"{dataset_id}: no derived split {split} (no {path}.json); run the "
                               "pipeline stage that writes it (`reprolab run-stage ...`)")
    opened = PreparedSplit(path.parent, path.name, dataset=dataset_id, profile=profile, root=root)
    if opened.info.get("dataset") not in (None, dataset_id):
        raise ValueError(f"{split}: a split of {opened.info['dataset']}, not of {dataset_id}")
    return opened


def decode_frames(frames: Sequence[bytes], indices: Sequence[int] | None = None, *,
                  device: str = "cpu"):
    """Decode JPEG frames with torchvision into a uint8 tensor [T, 3, H, W]."""
    import warnings

    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    chosen = [frames[int(i)] for i in indices] if indices is not None else list(frames)
    if not chosen:
        raise ValueError("decode_frames: no frames to decode")
    data = [torch.frombuffer(bytearray(f), dtype=torch.uint8) for f in chosen]
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its image codecs in favour of torchcodec, which needs the
        # system FFmpeg libraries; decode_jpeg is still the fast, dependency-free path.
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    return torch.stack(decoded)
