"""LSUN room layout -> manifests `train` (training.mat) and `val` (validation.mat).

Label = the room type (0-10, the challenge's 11 layout types; class names `type0` ...). Extra
columns: `scene`, `points` (JSON list of the [x, y] layout corners) and the image `width`,
`height` from `resolution`. The mat structs are read by position (image, scene, type, point,
resolution), as the challenge's loaders do.
"""

from __future__ import annotations

import json

import numpy as np

from reprolab.data.prepare import PrepareContext, PrepareError, SampleSpec, SplitPlan
from reprolab.data.prepare.image_files import encode_image, require

CLASSES = [f"type{k}" for k in range(11)]
SPLITS = {"train": "training", "val": "validation"}
SHARD_SIZE = 256


def read_mat(path, variable: str) -> list[dict]:
    from scipy.io import loadmat

    try:
        table = loadmat(require(path, path.name))[variable][0]
        return [{"name": str(m[0][0]), "scene": str(m[1][0]), "type": int(m[2][0][0]),
                 "points": np.asarray(m[3], float).reshape(-1, 2).tolist(),
                 "resolution": [int(v) for v in np.asarray(m[4]).reshape(-1)[:2]]} for m in table]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise PrepareError(f"{path}: expected a 1 x N struct `{variable}` with fields image, scene, "
                           f"type, point, resolution ({type(error).__name__}: {error})") from None


def plan(ctx: PrepareContext) -> list[SplitPlan]:
    images = ctx.extracted_dir("image.zip") / "images"
    plans = []
    for split, variable in SPLITS.items():
        samples = []
        for r in read_mat(ctx.raw_file(f"{variable}.mat"), variable):
            if not 0 <= r["type"] < len(CLASSES):
                raise PrepareError(f"{variable}.mat: image {r['name']} has room type {r['type']}")
            samples.append(SampleSpec(
                id=r["name"], label=r["type"], source=str(require(images / f"{r['name']}.jpg", r["name"])),
                extra={"scene": r["scene"], "points": json.dumps(r["points"]),
                       "height": r["resolution"][0], "width": r["resolution"][1]}))
        plans.append(SplitPlan(split, CLASSES, samples))
    return plans


def encode(spec: SampleSpec, options: dict) -> dict:
    return encode_image(spec.source)
