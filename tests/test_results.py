"""The results store: atomic, never overwriting, validated on read."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reprolab import atomic
from reprolab.results import Provenance, ResultsStore, RunResult, new_run_id


def make_result(run_id: str, **changes) -> RunResult:
    fields = dict(
        run_id=run_id, recipe="toyvid-toy-r18", paper="toy", benchmark="toyvid-val",
        profile="tiny", seed=0, status="ok", config={"optim": {"lr": 0.01}},
        metrics={"top1": 61.5, "top5": 97.0},
        provenance=Provenance(git_commit="abc", git_dirty=False, device="cpu",
                              packages={"torch": "2.14.1"}),
        started_at="2026-11-24T07:00:00Z", wall_time_s=12.5,
    )
    fields.update(changes)
    return RunResult(**fields)


def test_run_ids_sort_by_time_and_differ_within_a_second():
    now = datetime(2026, 11, 24, 7, 0, 0, tzinfo=UTC)
    ids = {new_run_id(3, now) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"20261124T070000Z-s3-[0-9a-f]{6}", i) for i in ids)
    assert new_run_id(0, now) < new_run_id(0, datetime(2026, 11, 24, 7, 0, 1, tzinfo=UTC))


def test_write_then_read_round_trips(tmp_path: Path):
    store = ResultsStore(tmp_path)
    result = make_result("r1")
    path = store.write(result)
    assert path == tmp_path / "toyvid-toy-r18" / "r1.json"
    assert store.read(path) == result
    assert json.loads(path.read_text())["metrics"] == {"top1": 61.5, "top5": 97.0}


def test_two_runs_never_overwrite_each_other(tmp_path: Path):
    store = ResultsStore(tmp_path)
    store.write(make_result("r1"))
    with pytest.raises(FileExistsError, match=r"r1 \(attempt 1\) already exists"):
        store.write(make_result("r1", metrics={"top1": 0.0}))
    assert store.runs("toyvid-toy-r18")[0].metrics["top1"] == 61.5
    store.write(make_result("r2", seed=1))
    assert [r.run_id for r in store.runs()] == ["r1", "r2"]
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_a_second_attempt_of_a_run_is_added_never_replacing_the_first(tmp_path: Path):
    store = ResultsStore(tmp_path)
    first = store.add(make_result("r1", status="failed", metrics={}, error="killed"))
    second = store.add(make_result("r1", metrics={"top1": 60.0}))
    assert first.is_file() and second.is_file() and first != second  # both records kept
    assert second.name == "r1.attempt2.json"
    (latest,) = store.runs("toyvid-toy-r18")
    assert latest.attempt == 2 and latest.status == "ok" and latest.metrics["top1"] == 60.0


def test_failed_run_keeps_its_error(tmp_path: Path):
    store = ResultsStore(tmp_path)
    store.write(make_result("bad", status="failed", metrics={}, error="CUDA out of memory"))
    assert store.runs()[0].error == "CUDA out of memory"


def test_corrupt_result_names_file_and_key(tmp_path: Path):
    store = ResultsStore(tmp_path)
    path = store.write(make_result("r1"))
    data = json.loads(path.read_text())
    del data["seed"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"r1.json: key `seed`"):
        store.read(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        store.read(path)


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path: Path):
    target = tmp_path / "out.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_files_get_ordinary_permissions(tmp_path: Path):
    umask = os.umask(0o022)
    try:
        path = atomic.write_text(tmp_path / "SHA256SUMS", "x\n")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
