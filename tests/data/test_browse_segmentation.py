"""`reprolab browse voc2012`: ground-truth masks, a segmentation run's predicted masks and scores,
and a WSSS chain stage's CAMs and pseudo labels as FiftyOne fields, on the tiny VOC fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import prepare_tiny, registry_checkout

from .test_status_browse import _in_fiftyone


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    return prepare_tiny(registry_checkout(tmp_path_factory.mktemp("browse-voc") / "checkout"), "voc2012")


def _masks(split, count):
    from reprolab.data.browse_segmentation import mask_array

    return [mask_array(split[i].extra["mask"]) for i in range(count)]


def test_mask_targets_keep_ignore_apart():
    from reprolab.data.browse_segmentation import MASK_TARGETS

    assert MASK_TARGETS[0] == "background" and MASK_TARGETS[15] == "person" and MASK_TARGETS[20] == "tvmonitor"
    assert MASK_TARGETS[255] == "ignore" and len(MASK_TARGETS) == 22


def test_predictions_store_masks_as_png_and_read_back(tmp_path):
    from reprolab import predictions
    from reprolab.data.browse_segmentation import mask_array

    label = np.array([[0, 15, 15], [255, 3, 0]], np.uint8)
    confusion = torch.zeros(1, 21 * 21)
    samples = predictions.segmentation(["a"], confusion, masks=[torch.from_numpy(label.astype(np.int64))])
    back = predictions.read(predictions.write(tmp_path / "p.parquet", samples))
    assert np.array_equal(mask_array(back.table["mask"][0]), label)
    with pytest.raises(ValueError, match="1 sample ids for 2 predicted masks"):
        predictions.segmentation(["a"], confusion, masks=[label, label])
    with pytest.raises(ValueError, match=r"\[H, W\] label map of 0..255"):
        predictions.segmentation(["a"], confusion, masks=[np.full((2, 2), 300)])


def test_browse_voc_ground_truth_and_a_segmentation_runs_masks(voc_root, tmp_path):
    from reprolab import predictions
    from reprolab.data import open_split
    from reprolab.metrics.segmentation import confusion_matrix

    split = open_split("voc2012", "val", "tiny", root=voc_root)
    truths = _masks(split, len(split))
    # a run that predicts the truth on the first 3 images and all background elsewhere
    predicted = [t.copy() if i < 3 else np.where(t == 255, 0, 0).astype(np.uint8) for i, t in enumerate(truths)]
    confusions = torch.stack([confusion_matrix(torch.from_numpy(p).long(), torch.from_numpy(t).long(), 21)
                              .view(-1).float() for p, t in zip(predicted, truths, strict=True)])
    samples = predictions.segmentation(split.ids, confusions, masks=predicted)
    samples.meta.update(dataset="voc2012", split="val", fingerprint=split.fingerprint, profile="tiny",
                        run_id="test-seg-run")
    predictions.write(voc_root / "runs" / "seg-recipe" / "test-seg-run" / predictions.PREDICTIONS_FILE, samples)
    proc = _in_fiftyone(f"""
        import json
        import numpy as np
        from fiftyone import ViewField as F
        from reprolab.data.browse import build_fiftyone_dataset
        root = {str(voc_root)!r}
        ds = build_fiftyone_dataset("voc2012", "val", "tiny", root=root)
        out = {{"targets": {{str(k): v for k, v in ds.default_mask_targets.items()}},
               "truth": [s.ground_truth.get_mask().tolist() for s in ds],
               "ids": ds.values("sample_id"), "gt_type": type(ds.first().ground_truth).__name__}}
        ds.delete()
        ds = build_fiftyone_dataset("voc2012", run="test-seg-run", root=root)
        perfect = ds.match(F("miou") == 100.0)
        out.update(split=ds.info["split"], predicted=[s.prediction.get_mask().tolist() for s in ds],
                   miou=ds.values("miou"), accuracy=ds.values("pixel_accuracy"),
                   perfect=perfect.values("sample_id"), shown=ds.app_config.active_fields.paths)
        ds.delete()
        print(json.dumps(out))
    """, voc_root, tmp_path)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["targets"]["255"] == "ignore" and result["targets"]["12"] == "dog"
    assert result["gt_type"] == "Segmentation" and result["ids"] == split.ids
    for shown, truth in zip(result["truth"], truths, strict=True):  # the prepared masks, 255 kept
        assert np.array_equal(np.array(shown, np.uint8), truth)
    assert any((t == 255).any() for t in truths) and any((t > 0) & (t < 255) for t in truths[0].flat)
    assert result["split"] == "val"
    for shown, mask in zip(result["predicted"], predicted, strict=True):
        assert np.array_equal(np.array(shown, np.uint8), mask)
    assert result["miou"] == pytest.approx(samples.table["miou"].tolist())
    assert result["accuracy"] == pytest.approx(samples.table["pixel_accuracy"].tolist())
    assert set(split.ids[:3]) <= set(result["perfect"]) and len(result["perfect"]) < len(split)
    assert result["shown"] == ["ground_truth", "prediction", "miou"]


def test_browse_a_chain_stage_shows_its_cams_and_pseudo_labels(voc_root, tmp_path):
    from reprolab.data import open_split
    from reprolab.data.datasets.masks import encode_array, encode_label_png
    from reprolab.data.derived import DerivedRows, write_derived_split
    from reprolab.errors import MissingDataError, UsageError
    from reprolab.pipeline.layout import StageLayout

    source = open_split("voc2012", "train", "tiny", root=voc_root)
    generator = np.random.default_rng(0)
    truths = _masks(source, len(source))
    cams, pseudo, payloads = [], [], []
    for truth in truths:
        present = np.array(sorted({int(v) - 1 for v in np.unique(truth) if 0 < v < 255}), np.int16)
        scores = generator.random((len(present), *truth.shape)).astype(np.float32)
        if len(present) > 1:
            scores[1] *= 0.5  # the second class is weaker: the first is the top class
        label = np.where(truth == 255, 0, truth).astype(np.uint8)
        cams.append((present, scores))
        pseudo.append(label)
        payloads.append({"cam": encode_array(classes=present, scores=scores),
                         "pseudo_label": encode_label_png(label)})
    layout = StageLayout("some-chain", "tiny", voc_root)
    write_derived_split(layout.split_dir("rw"), "train", source,
                        DerivedRows(list(range(len(source))), [-1] * len(source), payloads=payloads),
                        derived={"recipe": "some-chain", "stage": "rw"}, root=voc_root)
    from reprolab.data.browse import build_fiftyone_dataset

    with pytest.raises(MissingDataError, match="stage cams has not run in the tiny profile"):
        build_fiftyone_dataset("voc2012", profile="tiny", run="some-chain", stage="cams", root=voc_root)
    with pytest.raises(UsageError, match="no derived split 'val' \\(it wrote: train\\)"):
        build_fiftyone_dataset("voc2012", "val", run="some-chain", stage="rw", root=voc_root)
    with pytest.raises(UsageError, match="--stage rw needs --run"):
        build_fiftyone_dataset("voc2012", stage="rw", root=voc_root)
    proc = _in_fiftyone(f"""
        import json
        from reprolab.data.browse import build_fiftyone_dataset
        ds = build_fiftyone_dataset("voc2012", run="some-chain", stage="rw", root={str(voc_root)!r})
        heat = [s.cam for s in ds]
        print(json.dumps({{"profile": ds.info["profile"], "ids": ds.values("sample_id"),
                          "truth": [s.ground_truth.get_mask().tolist() for s in ds],
                          "pseudo": [s.pseudo_label.get_mask().tolist() for s in ds],
                          "cam": [h.get_map().tolist() if h else None for h in heat],
                          "range": [list(h.range) for h in heat if h][0], "cam_class": ds.values("cam_class"),
                          "shown": ds.app_config.active_fields.paths}}))
        ds.delete()
    """, voc_root, tmp_path)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    from reprolab.metrics.segmentation import VOC_LABELS

    assert result["profile"] == "tiny" and result["ids"] == source.ids
    assert result["shown"] == ["ground_truth", "pseudo_label", "cam"]
    for i, (present, scores) in enumerate(cams):
        assert np.array_equal(np.array(result["truth"][i], np.uint8), truths[i])
        assert np.array_equal(np.array(result["pseudo"][i], np.uint8), pseudo[i])
        if len(present) == 0:
            assert result["cam"][i] is None and result["cam_class"][i] is None
            continue
        assert result["cam_class"][i] == VOC_LABELS[int(present[0]) + 1]  # the strongest: the first
        shown = np.array(result["cam"][i], np.float64) / 255
        assert np.abs(shown - scores[0]).max() <= 0.5 / 255 + 1e-6
    assert result["range"] == [0, 255] and sum(c is not None for c in result["cam"]) > 0


def test_a_stage_is_named_by_its_chain_or_by_a_run_of_the_chain(voc_root, monkeypatch, capsys):
    from reprolab.cli import main
    from reprolab.data.browse import stage_split
    from reprolab.errors import MissingDataError, UsageError
    from reprolab.pipeline.layout import StageLayout

    layout = StageLayout("other-chain", "tiny", voc_root)
    (layout.split_dir("cams") / "train_aug.json").parent.mkdir(parents=True)
    (layout.split_dir("cams") / "train_aug.json").write_text("{}")
    layout.run_dir("cls").mkdir(parents=True)
    expected = ("tiny", "runs/other-chain/tiny/stages/cams/split/train_aug")
    assert stage_split("other-chain", "cams", None, None, voc_root) == expected
    assert stage_split(str(layout.run_dir("cls")), "cams", None, None, voc_root) == expected
    with pytest.raises(UsageError, match="is a tiny run; drop --profile full"):
        stage_split(str(layout.run_dir("cls")), "cams", "full", None, voc_root)
    with pytest.raises(MissingDataError, match="'nochain' is no chain that has run .* reprolab run-stages nochain"):
        stage_split("nochain", "cams", None, None, voc_root)
    with pytest.raises(UsageError, match="neither a chain's recipe id"):
        stage_split(str(voc_root / "datasets"), "cams", None, None, voc_root)
    monkeypatch.setenv("REPROLAB_ROOT", str(voc_root))  # the CLI: bad usage exits 2 before FiftyOne starts
    assert main(["browse", "voc2012", "--stage", "cams"]) == 2
    assert "--stage cams needs --run: the chain's recipe id" in capsys.readouterr().err
