"""Read MXNet NDArray files (``.params``) without MXNet.

The layout is MXNet's ``NDArray::Save`` list format (apache/mxnet src/ndarray/ndarray.cc), all
little-endian:

    uint64 0x112 (list magic), uint64 0 (reserved)
    uint64 n, then n arrays; each array is
        uint32 magic: 0xF993FAC9 (V2) or 0xF993FACA (V3: numpy shapes) -> int32 storage type;
                      0xF993FAC8 (V1) -> no storage type;
                      anything else: a pre-V1 file, and the word is the shape's ndim
        shape: int32 ndim + ndim int64 dims (pre-V1: ndim uint32 dims)
        (an empty shape ends the array here)
        context: int32 device type, int32 device id
        int32 dtype flag (0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8, 6 int64)
        the data, C order
    uint64 m, then m names, each uint64 length + bytes (m == 0 or m == n)

Checkpoints name their tensors ``arg:<name>`` (parameters) and ``aux:<name>`` (BatchNorm moving
statistics). Only dense arrays are supported; a sparse one fails with the file's name.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.path}: truncated MXNet NDArray file (needed {size} bytes at {self.pos})")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def raw(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.path}: truncated MXNet NDArray file (array data at {self.pos})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk


def _read_array(r: _Reader, index: int) -> np.ndarray | None:
    magic = r.take("I")
    if magic in (V2_MAGIC, V3_MAGIC):
        stype = r.take("i")
        if stype != 0:
            raise ValueError(f"{r.path}: array {index} has sparse storage type {stype}; only dense arrays load")
    if magic in (V1_MAGIC, V2_MAGIC, V3_MAGIC):
        ndim = r.take("i")
        shape = tuple(r.take(f"{ndim}q")) if ndim > 1 else ((r.take("q"),) if ndim == 1 else ())
    else:  # pre-V1: the word just read is ndim, the dims are uint32
        ndim = magic
        shape = tuple(r.take(f"{ndim}I")) if ndim > 1 else ((r.take("I"),) if ndim == 1 else ())
    if ndim <= 0:
        return None
    r.take("2i")  # context (device type, id): arrays load onto the CPU
    flag = r.take("i")
    if flag not in DTYPES:
        raise ValueError(f"{r.path}: array {index} has unknown dtype flag {flag}")
    dtype = np.dtype(DTYPES[flag]).newbyteorder("<")
    count = int(np.prod(shape))
    return np.frombuffer(r.raw(count * dtype.itemsize), dtype=dtype).reshape(shape).astype(DTYPES[flag])


def read_ndarray_file(path: str | Path) -> dict[str, np.ndarray]:
    """name -> array of an MXNet ``.params``/``nd.save`` file (names as stored, ``arg:``/``aux:`` kept)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MXNet parameter file not found: {path}")
    r = _Reader(path.read_bytes(), path)
    header, _reserved = r.take("QQ")
    if header != LIST_MAGIC:
        raise ValueError(f"{path}: not an MXNet NDArray file (header {header:#x}, expected {LIST_MAGIC:#x})")
    arrays = [_read_array(r, i) for i in range(r.take("Q"))]
    names = [r.raw(r.take("Q")).decode("utf-8") for _ in range(r.take("Q"))]
    if len(names) != len(arrays):
        raise ValueError(f"{path}: {len(arrays)} arrays but {len(names)} names; a checkpoint names every array")
    if r.pos != len(r.data):
        raise ValueError(f"{path}: {len(r.data) - r.pos} trailing bytes after the NDArray list")
    return {name: array for name, array in zip(names, arrays, strict=True) if array is not None}
