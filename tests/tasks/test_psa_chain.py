"""PSA's tiny chain through the CLI: `reprolab run-stages rw-r38-train --profile tiny` trains the
classifier, writes the CAM and dCRF derived splits, trains AffinityNet and scores the random walk
on the fixture's train split, recording every stage.

Measured on the fixture's train split (1 thread; seed 0 at 2 threads agreed to 0.03 with the
earlier 20-epoch classifier): CAM mIoU 44.0 / 40.1 / 43.1 and CAM+RW 43.3 / 35.9 / 42.9 for seeds
0 / 1 / 2. The random walk does not beat the CAMs on this fixture yet (-0.7, -4.2, -0.2), so
"CAM+RW > CAM" is a non-strict xfail until the tiny affinity learns the object bodies
(reproductions/psa/NOTES.md); the CAM check has a margin of 10 points over the worst seed.
"""

from __future__ import annotations

import json

import pytest

from reprolab.cli import main
from tests.conftest import prepare_tiny, registry_checkout

CAM_AT_LEAST = 30.0   # measured minimum 40.1 (seed 1); chance (uniform labels) is below 5


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    import os

    root = registry_checkout(tmp_path_factory.mktemp("psa") / "checkout")
    prepare_tiny(root, "voc2012")
    old = os.environ.get("REPROLAB_ROOT")
    os.environ["REPROLAB_ROOT"] = str(root)
    try:
        assert main(["run-stages", "rw-r38-train", "--profile", "tiny", "--seed", "0"]) == 0
    finally:
        if old is None:
            os.environ.pop("REPROLAB_ROOT")
        else:
            os.environ["REPROLAB_ROOT"] = old
    stages = root / "runs" / "rw-r38-train" / "tiny" / "stages"
    records = {name: json.loads((stages / name / "stage.json").read_text())
               for name in ("cls", "cams", "cams-eval", "aff")}
    result = json.loads(sorted((root / "results" / "rw-r38-train").glob("*.json"))[-1].read_text())
    return {"root": root, "records": records, "result": result}


@pytest.mark.slow
def test_every_stage_is_recorded_with_its_provenance(chain):
    records, result = chain["records"], chain["result"]
    assert records["cams"]["outputs"]["samples"] == 24  # train_aug
    assert records["cams-eval"]["outputs"]["samples"] == 10  # train
    assert result["status"] == "ok" and result["split"]["samples"] == 10
    assert [s["stage"] for s in result["provenance"]["stages"]] == ["cls", "cams", "cams-eval", "aff"]
    assert {k for k in result["metrics"] if k.startswith("iou/")} >= {"iou/background"}
    assert result["chance"]["miou"] < 5


@pytest.mark.slow
def test_cams_are_well_above_chance(chain):
    assert chain["records"]["cls"]["metrics"]["miou"] >= CAM_AT_LEAST
    # the cams step scores the same CAMs on the split it wrote
    assert chain["records"]["cams-eval"]["metrics"]["miou"] == pytest.approx(chain["records"]["cls"]["metrics"]["miou"])


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="tiny CAM+RW - CAM: -0.7, -4.2, -0.2 mIoU (seeds 0-2)")
def test_random_walk_beats_cams(chain):
    cam = chain["records"]["cls"]["metrics"]["miou"]
    rw = chain["result"]["metrics"]["miou"]
    assert rw >= cam + 1.0, f"CAM {cam:.2f}, CAM+RW {rw:.2f}"
