"""Shards: encoded frames and images in a few large files with random access by row.

A shard is one Arrow IPC file (`<split>/<nnnnn>.arrow`, uncompressed, memory-mapped on read)
holding up to a few hundred samples. Columns:

- `id` (string), `label` (int64, -1 when the dataset has no single label),
- `sha256` (32 bytes): digest of the sample's id, label and payload bytes (see `sample_digest`),
- payload columns as the preparer returns them, e.g. `frames` (list of JPEG bytes, one entry per
  frame) for videos, `image` (bytes) for images, `mask` (PNG bytes) for segmentation.

Shards are written atomically (a present shard is complete), so a killed prepare resumes without
redoing them. Readers open files lazily and per process, which makes them safe to use in
DataLoader workers (a forked worker never reuses its parent's memory map).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reprolab import atomic

SHARD_SUFFIX = ".arrow"


def shard_name(index: int) -> str:
    return f"{index:05d}{SHARD_SUFFIX}"


def sample_digest(sample_id: str, label: int, payload: Mapping[str, Any]) -> bytes:
    """sha256 over id, label and every payload byte, in a fixed order (column names sorted).

    Lengths are hashed before contents, so no two different samples hash the same stream.
    """
    h = hashlib.sha256()

    def blob(data: bytes) -> None:
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    blob(sample_id.encode())
    blob(str(int(label)).encode())
    for name in sorted(payload):
        blob(name.encode())
        value = payload[name]
        items = value if isinstance(value, list | tuple) else [value]
        h.update(len(items).to_bytes(8, "little"))
        for item in items:
            blob(item if isinstance(item, bytes) else str(item).encode())
    return h.digest()


def _arrow_type(value: Any):
    import pyarrow as pa

    if isinstance(value, bytes):
        return pa.binary()
    if isinstance(value, list | tuple) and (not value or isinstance(value[0], bytes)):
        return pa.list_(pa.binary())
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    raise TypeError(f"shard payload of type {type(value).__name__} is not supported; "
                    "use bytes, a list of bytes, or a scalar")


def write_shard(path: Path, ids: Sequence[str], labels: Sequence[int],
                payloads: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Write one shard atomically; return each sample's digest. All payloads share their keys."""
    import pyarrow as pa

    if not (len(ids) == len(labels) == len(payloads)) or not ids:
        raise ValueError("write_shard needs the same, non-zero number of ids, labels and payloads")
    keys = sorted(payloads[0])
    for sample_id, payload in zip(ids, payloads, strict=True):
        if sorted(payload) != keys:
            raise ValueError(f"sample {sample_id!r}: payload keys {sorted(payload)} differ from {keys}")
    digests = [sample_digest(i, lab, p) for i, lab, p in zip(ids, labels, payloads, strict=True)]
    columns = {
        "id": pa.array(list(ids), pa.string()),
        "label": pa.array([int(x) for x in labels], pa.int64()),
        "sha256": pa.array(digests, pa.binary(32)),
    }
    for key in keys:
        columns[key] = pa.array([p[key] for p in payloads], _arrow_type(payloads[0][key]))
    table = pa.table(columns)
    with atomic.atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.chmod(tmp, 0o644)
    return digests


def read_shard_table(path: Path):
    """The whole shard as a memory-mapped, zero-copy Arrow table."""
    import pyarrow as pa

    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


class ShardCache:
    """Open shards lazily, at most `capacity` at a time, and never across a fork."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._tables: OrderedDict[Path, Any] = OrderedDict()
        self._pid = os.getpid()

    def table(self, path: Path):
        if self._pid != os.getpid():  # inherited from a parent process: start afresh
            self._tables.clear()
            self._pid = os.getpid()
        table = self._tables.get(path)
        if table is None:
            table = read_shard_table(path)
            self._tables[path] = table
            if len(self._tables) > self.capacity:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(path)
        return table

    def __getstate__(self) -> dict[str, Any]:  # pickled into a spawned worker: no open maps
        return {"capacity": self.capacity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["capacity"])
