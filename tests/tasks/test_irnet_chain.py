"""IRNet's tiny chain through the CLI: `reprolab reproduce irnet --recipe irn-sem-r50-train
--profile tiny` trains the CAM network, writes the stride-4 CAMs and relation labels (two label
dCRFs), trains the boundary/displacement heads and scores the boundary random walk's semantic
pseudo labels on the fixture's train split, recording every stage.

Measured on the fixture's train split (88 train_aug / 48 train images, 1 thread), CAM / IRNet walk
mIoU: seed 0 55.1 / 73.2, seed 1 50.6 / 70.1, seed 2 47.2 / 46.6 (walk - CAM: +18.2, +19.5, -0.6).
Two seeds show the paper's effect by a wide margin; at seed 2 the walk does not improve on the
CAMs (the tiny heads read a frozen random trunk: no ImageNet weights offline), so "walk > CAM"
stays a non-strict xfail until it holds at every seed (reproductions/irnet/NOTES.md). The CAM
check keeps a margin of 12 points under the worst seed.
"""

from __future__ import annotations

import json

import pytest

from reprolab.cli import main
from tests.conftest import prepare_tiny, registry_checkout

RECIPE = "irn-sem-r50-train"
WALK_MARGIN = 1.0   # walk - CAM: +18.2, +19.5, -0.6 over seeds 0-2
CAM_AT_LEAST = 35.0  # CAM mIoU 47.2-55.1 over seeds 0-2 (1 thread); chance (uniform labels) is below 5


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    import os

    root = registry_checkout(tmp_path_factory.mktemp("irnet") / "checkout")
    prepare_tiny(root, "voc2012")
    old = os.environ.get("REPROLAB_ROOT")
    os.environ["REPROLAB_ROOT"] = str(root)
    try:
        assert main(["reproduce", "irnet", "--recipe", RECIPE, "--profile", "tiny", "--seeds", "1", "seeds=[0]"]) == 0
    finally:
        if old is None:
            os.environ.pop("REPROLAB_ROOT")
        else:
            os.environ["REPROLAB_ROOT"] = old
    stages = root / "runs" / RECIPE / "tiny" / "stages"
    records = {name: json.loads((stages / name / "stage.json").read_text())
               for name in ("cls", "cams", "cams-eval", "irn")}
    result = json.loads(sorted((root / "results" / RECIPE).glob("*.json"))[-1].read_text())
    return {"root": root, "records": records, "result": result}


@pytest.mark.slow
def test_every_stage_is_recorded_and_reported(chain):
    records, result = chain["records"], chain["result"]
    assert records["cams"]["outputs"]["samples"] == 88  # train_aug: CAMs + relation labels
    assert records["cams-eval"]["outputs"]["samples"] == 48  # train
    assert result["status"] == "ok" and result["split"]["samples"] == 48
    assert [s["stage"] for s in result["provenance"]["stages"]] == ["cls", "cams", "cams-eval", "irn"]
    assert result["chance"]["miou"] < 5
    assert (chain["root"] / "reports" / "tiny" / "irnet.md").is_file()


@pytest.mark.slow
def test_relation_labels_mark_an_unsure_band(chain):
    """cam_to_ir_label: confident foreground, confident background and 255 between them."""
    import os

    import numpy as np
    import yaml

    from reprolab.data.datasets.masks import decode_png
    from reprolab.tasks import build_task

    config = yaml.safe_load((chain["root"] / "runs" / RECIPE / "tiny" / "stages" / "irn" / "run" / "config.yaml").read_text())
    os.environ["REPROLAB_ROOT"] = str(chain["root"])
    try:
        task = build_task(config)
        train = task.open_split(task.split_names["train"])
        values = np.concatenate([decode_png(train[i].extra["ir_label"]).ravel() for i in range(len(train))])
    finally:
        os.environ.pop("REPROLAB_ROOT")
    assert {0, 255} <= set(np.unique(values).tolist()) and values.max() == 255
    assert 0.02 < float(np.mean(values == 255)) < 0.6
    assert float(np.mean((values > 0) & (values < 255))) > 0.02


@pytest.mark.slow
def test_cams_are_well_above_chance(chain):
    assert chain["records"]["cls"]["metrics"]["miou"] >= CAM_AT_LEAST
    # the irn-cams step scores the same CAMs on the split it wrote
    assert chain["records"]["cams-eval"]["metrics"]["miou"] == pytest.approx(chain["records"]["cls"]["metrics"]["miou"])


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="tiny IRNet walk - CAM: +18.2, +19.5, -0.6 mIoU (seeds 0-2)")
def test_boundary_walk_beats_the_cams(chain):
    cam = chain["records"]["cls"]["metrics"]["miou"]
    walk = chain["result"]["metrics"]["miou"]
    assert walk >= cam + WALK_MARGIN, f"CAM {cam:.2f}, IRNet walk {walk:.2f}"
