"""What a run read is recorded by content hash, and its log path relative to the checkout."""

from __future__ import annotations

import hashlib

import pytest

from reprolab import cli, paths, provenance
from reprolab.data.layout import DatasetLayout
from reprolab.results import ResultsStore
from reprolab.tasks import TASKS
from tests.engine.test_commands import TOY_RECIPE

WEIGHTS_CARD = """\
id: weights-toy
name: Toy weights
kind: weights
modality: weights
citation: test fixture
license: CC0
homepage: https://example.org/weights
sources:
  - filename: toy.pth
    extract: false
    unpinned: the test publisher gives no checksum
    urls: [https://example.org/toy.pth]
expect: {}
"""


class _Split:
    """Stands for a PreparedSplit: the identity a task's open splits carry."""

    def __init__(self, dataset, split, profile):
        self.dataset, self.split, self.profile = dataset, split, profile
        self.fingerprint = "sha256:" + hashlib.sha256(f"{dataset}/{split}".encode()).hexdigest()


@pytest.fixture
def reading_root(mini_root, monkeypatch):
    """The toy task of the command tests, opening the benchmark's splits as a real task does."""
    from reprolab.data import reader
    from tests.engine.toy import ToyTask

    class ReadingToyTask(ToyTask):
        def check_data(self):
            self.open_split(self.split_names["train"])
            self.open_split(self.split_names["eval"])

    monkeypatch.setattr(reader, "open_split", lambda d, s, p="full", **_: _Split(d, s, p))
    monkeypatch.setitem(TASKS._entries, "toy-test", ReadingToyTask)
    monkeypatch.setenv("REPROLAB_NO_PROGRESS", "1")
    (mini_root / "reproductions" / "toy" / "recipes" / "toy-run.yaml").write_text(TOY_RECIPE)
    prepared = DatasetLayout("toyvid", "tiny", mini_root).prepared
    prepared.mkdir(parents=True)
    (mini_root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare@toyvid:\n    cmd: reprolab data prepare toyvid --profile tiny\n"
        "    outs:\n    - path: datasets/toyvid/tiny/prepared\n      hash: md5\n"
        "      md5: 0123456789abcdef0123456789abcdef.dir\n")
    return mini_root


def test_a_result_records_the_splits_it_read_and_a_relative_log(reading_root, capsys):
    run_dir = reading_root / "runs" / "toy-run" / "r1"
    assert cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir)]) == 0
    assert cli.main(["evaluate", str(run_dir)]) == 0
    (result,) = ResultsStore(reading_root / "results").runs("toy-run")
    assert result.provenance.data_hashes == {
        "toy/tiny/train": _Split("toy", "train", "tiny").fingerprint,
        "toy/tiny/validation": _Split("toy", "validation", "tiny").fingerprint,
        "dvc:datasets/toyvid/tiny/prepared": "md5:0123456789abcdef0123456789abcdef.dir",
    }
    assert result.log_path == "runs/toy-run/r1/metrics.jsonl"
    assert paths.in_checkout(result.log_path) == run_dir / "metrics.jsonl"


def test_a_failed_training_records_what_it_read(reading_root):
    run_dir = reading_root / "runs" / "toy-run" / "r2"
    code = cli.main(["train", "toy-run", "--profile", "tiny", "--out", str(run_dir), "+model.fail_at_call=3"])
    assert code == cli.EXIT_FAILED
    (result,) = ResultsStore(reading_root / "results").runs("toy-run")
    assert result.status == "failed"
    assert sorted(result.provenance.data_hashes) == ["dvc:datasets/toyvid/tiny/prepared",
                                                     "toy/tiny/train", "toy/tiny/validation"]


def test_weights_fetched_with_the_data_are_hashed(mini_root):
    layout = DatasetLayout("weights-toy", "full", mini_root)
    layout.card_path.parent.mkdir(parents=True)
    layout.card_path.write_text(WEIGHTS_CARD)
    config = {"profile": "full", "benchmark_spec": {"dataset": "toyvid"},
              "data": {"extra_datasets": ["weights-toy"]}}
    assert provenance.data_hashes(mini_root, config) == {}  # nothing fetched yet, nothing read
    layout.raw.mkdir(parents=True)
    layout.raw_file("toy.pth").write_bytes(b"weights bytes")
    (mini_root / "datasets/weights-toy/full/raw.dvc").write_text(
        "outs:\n- md5: fedcba9876543210fedcba9876543210.dir\n  path: raw\n")
    assert provenance.data_hashes(mini_root, config, {"toyvid/full/train": "sha256:aa"}) == {
        "toyvid/full/train": "sha256:aa",
        "weights-toy/toy.pth": "sha256:" + hashlib.sha256(b"weights bytes").hexdigest(),
        "dvc:datasets/weights-toy/full/raw": "md5:fedcba9876543210fedcba9876543210.dir",
    }


def test_paths_outside_the_checkout_stay_as_given(mini_root, tmp_path):
    assert paths.checkout_relative(mini_root / "runs" / "a" / "log.jsonl") == "runs/a/log.jsonl"
    outside = tmp_path / "elsewhere" / "log.jsonl"
    assert paths.checkout_relative(outside) == str(outside)
    assert paths.in_checkout(str(outside)) == outside
