"""Claims benchmark: do masks segmented from web videos train a decoder that beats the encoder's CAMs?

A small-scale replay of the claim of Hong et al. (arXiv 1701.00352) on the tiny fixtures: the
chain of a web-videos-wsss recipe (default crawlseg-vgg16-val) trains its encoder on the voc2012
fixture's image labels, segments the web-videos-voc fixture's videos (distractors included) and
trains the class-agnostic decoder on those masks. On the voc2012 fixture's val images it compares

    thresholded CAMs of the same encoder (its multi-scale + flip CAMs of the classes its classifier
    picks, constant background 0.2: metric `cam_miou` of the decoder stage)
    < encoder + decoder trained from the video masks (metric `miou`)

with the encoder's CAMs given the true image labels (stage 1's own evaluation) beside them. Each
seed runs the whole tiny chain (`reprolab run-stages <recipe> --profile tiny --seed s`) in a
scratch checkout that links this checkout's prepared tiny datasets, so the checkout's own runs
and results are untouched.

Run (after `reprolab data fetch voc2012 --profile tiny && reprolab data prepare voc2012 --profile
tiny`, and the same for web-videos-voc):

    python -m reprolab.claims.web_video [--recipe crawlseg-vgg16-val] [--seeds 0 1 2] [--out table.md] [key=value ...]

Prints a markdown table of mIoU (mean +- std over seeds, and per seed). Not run in CI.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

from reprolab.claims.common import emit, mean_std, parser, run_tiny_chain, scratch_checkout

DATASETS = ("voc2012", "web-videos-voc")
ROWS = (
    ("CAMs of the encoder, true image labels (stage 1 evaluation)", "encoder", "miou"),
    ("thresholded CAMs of the encoder, classes it predicts", "decoder", "cam_miou"),
    ("encoder + decoder trained on the video masks", "decoder", "miou"),
)


def linked_checkout(root: Path, source: Path) -> Path:
    """Registries copied from `source`, its prepared tiny datasets linked (read only)."""
    from reprolab.errors import MissingDataError

    scratch_checkout(root, source)
    for dataset in DATASETS:
        tiny = source / "datasets" / dataset / "tiny"
        if not (tiny / "prepared").is_dir():
            raise MissingDataError(f"claims web-video: {dataset} is not prepared in the tiny profile; run: "
                                   f"reprolab data fetch {dataset} --profile tiny && reprolab data "
                                   f"prepare {dataset} --profile tiny")
        (root / "datasets" / dataset / "tiny").symlink_to(tiny, target_is_directory=True)
    return root


def run(recipe: str, seeds: Sequence[int], overrides: Sequence[str]) -> str:
    from reprolab import paths

    measured: list[dict[str, dict[str, float]]] = []
    wall = 0.0
    with tempfile.TemporaryDirectory(prefix="claims-web-video-") as tmp:
        root = linked_checkout(Path(tmp) / "checkout", paths.project_root())
        for seed in seeds:
            started = time.perf_counter()
            measured.append(run_tiny_chain(root, recipe, seed, overrides))
            wall += time.perf_counter() - started
            shown = ", ".join(f"{label.split(',')[0]} {m[stage][key]:.1f}" for (label, stage, key), m in
                              zip(ROWS, [measured[-1]] * len(ROWS), strict=True))
            print(f"seed {seed}: {shown}", file=sys.stderr, flush=True)
    rows = []
    for label, stage, key in ROWS:
        values = [m[stage][key] for m in measured]
        rows.append([label, mean_std(values), " / ".join(f"{v:.1f}" for v in values)])
    kept = [m["video-masks"]["kept_fraction"] for m in measured]
    rows.append(["(video frames kept by the filter, %)", mean_std([100 * k for k in kept]),
                 " / ".join(f"{100 * k:.0f}" for k in kept)])
    headers = ["model (VOC fixture val images)", f"mIoU (mean ± std, {len(seeds)} seeds)", "per seed"]
    table = tabulate(rows, headers=headers, tablefmt="github")
    return f"{table}\n\n{len(seeds)} tiny chains of {recipe}, {wall / max(1, len(seeds)):.0f} s each"


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("reprolab.claims.web_video", __doc__, "passed to run-stages, e.g. stages.decoder.optim.epochs=20")
    p.add_argument("--recipe", default="crawlseg-vgg16-val")
    args = p.parse_args(argv)
    return emit("reprolab.claims.web_video", lambda: run(args.recipe, args.seeds, args.overrides), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
