"""MPII full-body pose retrieval (log-ratio loss) -> manifests `train` (12,366) and `test` (9,919).

Reads the authors' ImageFolder root (fullbody/: class folder 0 = train, 1 = test, files in
sorted order, as torchvision's ImageFolder indexes them) with its label-distance files. Labels
are not classes (label -1); the payload carries each image's label distances:
- train: `pose_nn` (int32 .npy: every other training image by rising pose distance, from
  list_nn.pkl["trn"]) and `pose_nn_dist` (float32 .npy, dist_nn.pkl["trn"]);
- test: `pose_dist` (float32 .npy: the image's row of dist_pose_val.mat).
Column `role` marks the first 1,919 test images `query` and the rest `database`, as the official
evaluation (utils.eval_retrieval). The pickles are read with an unpickler that only accepts
NumPy arrays (a downloaded pickle must not run code) and converted once to memory-mapped .npy.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from reprolab import atomic
from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import IMAGE_SUFFIXES, encode_image, require

ARCHIVE = "fullbody.zip"
NUM_QUERY = 1919
SHARD_SIZE = 128
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"),
            ("_codecs", "encode")}  # protocol-2 pickles rebuild array bytes with it


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays)")
        return super().find_class(module, name)


def load_arrays(path: Path) -> dict:
    with open(require(path, path.name), "rb") as handle:
        try:
            data = _ArraysOnly(handle, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise PrepareError(f"{path}: not a pickle of NumPy arrays ({error})") from None
    if not isinstance(data, dict) or not {"trn", "val"} <= set(data):
        raise PrepareError(f"{path}: expected a dict with keys 'trn' and 'val'")
    return data


def cached_npy(source: Path, key: str, cache: Path, dtype) -> Path:
    """`cache/<stem>_<key>.npy` from a pickle of arrays, written once (atomically)."""
    target = cache / f"{source.stem}_{key}.npy"
    if not target.is_file():
        array = np.asarray(load_arrays(source)[key], dtype=dtype)
        cache.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, array)
    return target


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    from scipy.io import loadmat

    root = ctx.extracted_dir(ARCHIVE) / "fullbody"
    folders = sorted(p for p in require(root, "fullbody/").iterdir() if p.is_dir())
    if len(folders) != 2:
        raise PrepareError(f"{root}: expected two class folders (train, then test), found "
                           f"{[f.name for f in folders]}")
    files = [sorted(p for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) for f in folders]
    cache = ctx.layout.extracted / "mpii_pose_npy"
    nn_index = cached_npy(root / "list_nn.pkl", "trn", cache, np.int32)
    nn_dist = cached_npy(root / "dist_nn.pkl", "trn", cache, np.float32)
    dist_val = cache / "dist_pose_val.npy"
    if not dist_val.is_file():
        mat = loadmat(require(root / "dist_pose_val.mat", "dist_pose_val.mat"))
        with atomic.atomic_path(dist_val) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(mat["dist_pose_val"], np.float32))
    shapes = (np.load(nn_index, mmap_mode="r").shape, np.load(dist_val, mmap_mode="r").shape)
    n_train, n_test = len(files[0]), len(files[1])
    if shapes[0][0] != n_train or shapes[1] != (n_test, n_test):
        raise PrepareError(f"{root}: {n_train} train / {n_test} test images, but list_nn['trn'] has "
                           f"{shapes[0][0]} rows and dist_pose_val is {shapes[1]}")
    query = min(NUM_QUERY, n_test // 3) if ctx.profile == "tiny" else NUM_QUERY
    query = int(ctx.card.tiny.get("query", query)) if ctx.profile == "tiny" else query
    train = [SampleSpec(id=f"{folders[0].name}/{p.name}", label=-1,
                        source={"image": str(p), "rows": [[str(nn_index), i], [str(nn_dist), i]],
                                "keys": ["pose_nn", "pose_nn_dist"]}, extra={"list_index": i})
             for i, p in enumerate(files[0])]
    test = [SampleSpec(id=f"{folders[1].name}/{p.name}", label=-1,
                       source={"image": str(p), "rows": [[str(dist_val), i]], "keys": ["pose_dist"]},
                       extra={"list_index": i, "role": "query" if i < query else "database"})
            for i, p in enumerate(files[1])]
    return [SplitPlan("train", None, train), SplitPlan("test", None, test)]


def _npy_row(path: str, row: int) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array(np.load(path, mmap_mode="r")[row]))
    return buffer.getvalue()


def encode(spec: SampleSpec, options: dict) -> dict:
    rows = {key: _npy_row(path, row) for key, (path, row) in zip(spec.source["keys"], spec.source["rows"], strict=True)}
    return encode_image(spec.source["image"], **rows)
