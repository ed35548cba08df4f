import json

from reprolab.engine.logs import JsonlLog


def test_history_array_gives_every_record_every_field(tmp_path):
    # DVC fails the whole plot when one record lacks a plotted field (eval_every > 1).
    log = JsonlLog(tmp_path / "metrics.jsonl")
    log.write({"epoch": 0, "loss": 1.5})
    log.write({"epoch": 1, "loss": 1.2, "eval_top1": 40.0})
    log.write({"epoch": 2, "loss": 1.0})
    assert json.loads((tmp_path / "history.json").read_text()) == [
        {"epoch": 0, "loss": 1.5, "eval_top1": None},
        {"epoch": 1, "loss": 1.2, "eval_top1": 40.0},
        {"epoch": 2, "loss": 1.0, "eval_top1": None},
    ]
    assert log.read()[0] == {"epoch": 0, "loss": 1.5}  # the JSON lines stay as written
    log.truncate_after(2)
    assert json.loads((tmp_path / "history.json").read_text())[-1] == {"epoch": 1, "loss": 1.2, "eval_top1": 40.0}
