"""Claims benchmark: do PSA's random walk and IRNet's boundary walk improve on the CAMs?

A small-scale replay on the VOC 2012 tiny fixture, whose objects show their class only on a small
part (reprolab.data.fixtures.voc2012): every row runs the tiny profile of a published recipe's
chain through `reprolab run-stages`, in a scratch checkout, for each seed:

    PSA (rw-r38-train, train split)       CAM mIoU < CAM+RW mIoU
    PSA (rw-crf-r38-train-cvpr)           CAM+RW+dCRF (paper Table 1: 59.7 over CAM+RW 58.1, UNVERIFIED)
    IRNet (irn-sem-r50-train)             CAM mIoU < boundary-walk mIoU
    IRNet (irn-ins-r50-val)               "each connected CAM blob is an instance" mAP50 < IRNet mAP50
    PSA (seg-deeplab-val, val split)      segmentation net on CAM labels < on random-walk labels
                                          (as published: dCRF'd RW labels; and without the dCRF)

The "on CAM labels" row is the seg-deeplab-val chain with three overrides (the cams stage writes
the CAMs' own labels; the segmentation stage trains on them): not a published row.

Run:

    python -m reprolab.claims.wsss [--seeds 0 1 2] [--out table.md] [--only psa irnet seg]

Prints a markdown table (mean ± std over seeds, and per seed). Not run in CI (minutes per seed).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

from reprolab.claims.common import (
    emit,
    mean_std,
    parser,
    prepare_tiny,
    run_tiny_chain,
    scratch_checkout,
)

CAM_LABELS = ["stages.cams.options.pseudo_labels=true", "stages.seg.data.train_from=cams",
              "+stages.seg.data.label_key=cam_label"]
# (group, recipe, overrides, [(row label, where the number is: (stage or "result", metric))])
CHAINS = (
    ("psa", "rw-r38-train", [], [("PSA CAM (train)", ("cls", "miou")), ("PSA CAM+RW (train)", ("result", "miou"))]),
    ("psa", "rw-crf-r38-train-cvpr", [], [("PSA CAM+RW+dCRF, alpha 4/24 (train)", ("result", "miou"))]),
    ("irnet", "irn-sem-r50-train", [], [("IRNet CAM (train)", ("cls", "miou")),
                                        ("IRNet boundary walk (train)", ("result", "miou"))]),
    ("irnet", "irn-ins-r50-val", [], [("connected CAM blobs, mAP50 (val)", ("result", "blob_map@0.5")),
                                      ("IRNet instances, mAP50 (val)", ("result", "map@0.5"))]),
    ("seg", "seg-deeplab-val", CAM_LABELS, [("DeepLab stand-in on CAM labels (val)", ("result", "miou"))]),
    ("seg", "seg-deeplab-val", [], [("DeepLab stand-in on RW labels (val)", ("result", "miou"))]),
    # the published chain dCRFs the RW labels (psa issue #10); on the fixture the dCRF hurts
    ("seg", "seg-deeplab-val", ["stages.rw-labels.options.crf=false"],
     [("DeepLab stand-in on RW labels, no dCRF (val)", ("result", "miou"))]),
)
# (claim, smaller row, larger row)
CLAIMS = (
    ("CAM < CAM+RW", "PSA CAM (train)", "PSA CAM+RW (train)"),
    ("CAM+RW < CAM+RW+dCRF (paper Table 1)", "PSA CAM+RW (train)", "PSA CAM+RW+dCRF, alpha 4/24 (train)"),
    ("CAM < boundary walk", "IRNet CAM (train)", "IRNet boundary walk (train)"),
    ("CAM blobs < IRNet instances", "connected CAM blobs, mAP50 (val)", "IRNet instances, mAP50 (val)"),
    ("seg on CAM labels < on RW labels", "DeepLab stand-in on CAM labels (val)", "DeepLab stand-in on RW labels (val)"),
    ("seg on CAM labels < on RW labels, no dCRF", "DeepLab stand-in on CAM labels (val)",
     "DeepLab stand-in on RW labels, no dCRF (val)"),
)


def run(seeds: Sequence[int], groups: Sequence[str]) -> str:
    values: dict[str, list[float]] = {}
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="claims-wsss-") as tmp:
        root = scratch_checkout(Path(tmp) / "checkout")
        prepare_tiny(root, ["voc2012"])
        for group, recipe, overrides, rows in CHAINS:
            if group not in groups:
                continue
            for seed in seeds:
                started = time.perf_counter()
                metrics = run_tiny_chain(root, recipe, seed, overrides)
                wall = time.perf_counter() - started
                for label, (where, key) in rows:
                    values.setdefault(label, []).append(float(metrics[where][key]))
                    walls[label] = walls.get(label, 0.0) + wall / len(seeds)
                    print(f"{label} seed {seed}: {values[label][-1]:.1f} ({wall:.0f} s)", file=sys.stderr, flush=True)
    table = [[label, mean_std(v), " / ".join(f"{x:.1f}" for x in v), f"{walls[label]:.0f}"]
             for label, v in values.items()]
    text = tabulate(table, headers=["row", f"% (mean ± std, {len(seeds)} seeds)", "per seed", "s per chain"],
                    tablefmt="github")
    claims = []
    for claim, low, high in CLAIMS:
        if low in values and high in values:
            margins = [b - a for a, b in zip(values[low], values[high], strict=True)]
            claims.append([claim, mean_std(margins), " / ".join(f"{m:+.1f}" for m in margins),
                           "yes" if min(margins) > 0 else "no"])
    if claims:
        text += "\n\n" + tabulate(claims, headers=["claim", "margin (mean ± std)", "per seed", "holds at every seed"],
                                  tablefmt="github")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("reprolab.claims.wsss", __doc__)
    p.add_argument("--only", nargs="+", choices=("psa", "irnet", "seg"), default=["psa", "irnet", "seg"])
    args = p.parse_args(argv)
    return emit("reprolab.claims.wsss", lambda: run(args.seeds, args.only), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
