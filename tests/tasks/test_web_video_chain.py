"""Web-video WSSS's four-stage tiny chain through the CLI: `reprolab run-stages crawlseg-vgg16-val
--profile tiny` trains the encoder on the VOC fixture's image labels, filters, localizes and
segments the fixture's web videos (distractor videos included), trains the class-agnostic decoder
on the video masks and scores encoder + decoder on the VOC fixture's val images, exporting them
as evaluation-server PNGs.

Measured (chain seeds 0 / 1 / 2 at 1 thread; seed 0 at 2 threads), before flip averaging of the
decoder: distractor frames rejected 33/36, 24/36, 36/36 (33/36); relevant frames kept 45/54, 48/54,
52/54 (45/54); encoder + decoder mIoU on val 58.5, 47.6, 62.4 (51.7), its CAM baseline 45.4, 51.6,
65.6 (44.5); with flip averaging (the recipe's) the decoder gives 60.5, 48.5, 63.2. The thresholds leave a margin under the worst seed (reproductions/web-videos-wsss/NOTES.md).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from reprolab.cli import main
from tests.conftest import prepare_tiny, registry_checkout

RECIPE = "crawlseg-vgg16-val"
DISTRACTOR_REJECTED_AT_LEAST = 0.6   # worst seed 0.667 (24/36): still most of them
RELEVANT_KEPT_AT_LEAST = 0.7        # worst seed 0.833
MIOU_AT_LEAST = 35.0                 # worst seed 47.6; chance < 5


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    root = registry_checkout(tmp_path_factory.mktemp("web-video") / "checkout")
    prepare_tiny(root, "voc2012")
    prepare_tiny(root, "web-videos-voc")
    old = os.environ.get("REPROLAB_ROOT")
    os.environ["REPROLAB_ROOT"] = str(root)
    try:
        assert main(["run-stages", RECIPE, "--profile", "tiny", "--seed", "0"]) == 0
    finally:
        if old is None:
            os.environ.pop("REPROLAB_ROOT")
        else:
            os.environ["REPROLAB_ROOT"] = old
    stages = root / "runs" / RECIPE / "tiny" / "stages"
    records = {name: json.loads((stages / name / "stage.json").read_text())
               for name in ("encoder", "video-masks", "decoder")}
    result = json.loads(sorted((root / "results" / RECIPE).glob("*.json"))[-1].read_text())
    return {"root": root, "stages": stages, "records": records, "result": result}


@pytest.mark.slow
def test_every_stage_is_recorded_with_its_provenance(chain):
    records, result = chain["records"], chain["result"]
    assert records["video-masks"]["metrics"]["videos"] == 9
    assert result["status"] == "ok" and result["split"]["name"] == "val" and result["split"]["samples"] == 48
    assert [s["stage"] for s in result["provenance"]["stages"]] == ["encoder", "video-masks", "decoder"]
    assert result["chance"]["miou"] < 5
    assert {"miou", "cam_miou", "iou/background"} <= set(result["metrics"])


@pytest.mark.slow
def test_frame_filter_rejects_most_distractor_frames(chain):
    """Stage 2 with the tiny trained encoder: frames of videos retrieved for a class but showing
    another one are rejected, frames showing the query class are mostly kept."""
    from reprolab.data.datasets.masks import decode_array
    from reprolab.data.fixtures.web_videos_voc import videos
    from reprolab.data.reader import PreparedSplit
    from reprolab.registry import load_card

    root = chain["root"]
    split = PreparedSplit(chain["stages"] / "video-masks" / "split", "all", dataset="web-videos-voc",
                          profile="tiny", root=root)
    keep = {split.ids[i]: decode_array(split[i].extra["video_masks"])["keep"] for i in range(len(split))}
    truth = videos(load_card(root / "datasets" / "web-videos-voc" / "card.yaml"))
    kept_distractor = shown = kept_relevant = relevant = 0
    for video in truth:
        kept = keep.get(video.name.removeprefix("web_videos/"), np.zeros(len(video.frames), bool))
        if "distractor" in video.name:
            kept_distractor += int(kept.sum())
            shown += len(video.frames)
        else:
            kept_relevant += int((kept & video.relevant).sum())
            relevant += int(video.relevant.sum())
    rejected = 1 - kept_distractor / shown
    assert rejected >= DISTRACTOR_REJECTED_AT_LEAST, (kept_distractor, shown)
    assert kept_relevant / relevant >= RELEVANT_KEPT_AT_LEAST, (kept_relevant, relevant)


@pytest.mark.slow
def test_video_masks_train_a_decoder_that_segments_still_images(chain):
    metrics = chain["result"]["metrics"]
    assert metrics["miou"] >= MIOU_AT_LEAST   # encoder + decoder on VOC val
    # the derived split holds one graph-cut mask per frame of each kept video
    from reprolab.data.datasets.masks import decode_array
    from reprolab.data.reader import PreparedSplit

    split = PreparedSplit(chain["stages"] / "video-masks" / "split", "all", dataset="web-videos-voc",
                          profile="tiny", root=chain["root"])
    stored = decode_array(split[0].extra["video_masks"])
    assert stored["masks"].shape == (12, 64, 80) and set(np.unique(stored["masks"])) <= {0, 1}
    assert not stored["masks"][~stored["keep"]].any()   # rejected frames are background


@pytest.mark.slow
def test_val_predictions_are_exported_for_the_evaluation_server(chain):
    folder = chain["stages"] / "decoder" / "voc-export" / "results" / "VOC2012" / "Segmentation" / "comp6_val_cls"
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 48
    from PIL import Image

    labels = np.array(Image.open(pngs[0]))
    assert labels.ndim == 2 and labels.max() <= 20


def test_full_profile_stops_without_the_users_videos(tmp_path, monkeypatch, capsys):
    """The full chain needs the user's crawl: with VOC and the weights in place, `reprolab
    reproduce` stops before training (exit 4) and says what to place where."""
    root = registry_checkout(tmp_path / "checkout")
    for dataset in ("voc2012", "weights-vgg16-imagenet"):   # stand-ins: prepared_splits() sees a split
        prepared = root / "datasets" / dataset / "full" / "prepared"
        prepared.mkdir(parents=True)
        (prepared / "val.json").write_text("{}")
        (prepared / "val.parquet").write_bytes(b"")
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    assert main(["reproduce", "web-videos-wsss", "--recipe", RECIPE]) == 4
    err = capsys.readouterr().err
    assert "web-videos-voc" in err and "datasets/web-videos-voc/raw/" in err
    assert "web_videos/<class>/<any name>" in err
    assert not (root / "runs").exists()


def test_an_inference_stage_may_read_another_dataset():
    from reprolab.registry.stages import Stage

    stage = Stage.model_validate({"infer": "video-masks", "from": "encoder", "dataset": "web-videos-voc",
                                  "split": "all"})
    assert stage.dataset == "web-videos-voc" and stage.split == "all"
    with pytest.raises(ValueError, match="'all': use train or eval"):
        Stage.model_validate({"infer": "video-masks", "from": "encoder", "split": "all"})
    with pytest.raises(ValueError, match="`dataset` belong to inference stages"):
        Stage.model_validate({"dataset": "web-videos-voc"})
