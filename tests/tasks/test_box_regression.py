"""The box-regression task's inputs: detection files and the configuration it refuses."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from reprolab.config import resolved_config
from reprolab.errors import ConfigError
from reprolab.tasks import build_task
from reprolab.tasks.box_regression import DETECTIONS_FORMAT


def task(recipe: str, profile: str, *overrides: str):
    return build_task(resolved_config(recipe, profile, list(overrides), 0))


def test_detection_files_are_read_per_image_in_the_documented_format(tmp_path, monkeypatch):
    folder = tmp_path / "dets"
    folder.mkdir()
    (folder / "000005.json").write_text(json.dumps(
        {"boxes": [[10, 20, 30, 40]], "scores": [0.7], "classes": ["dog"]}))
    (folder / "000007.json").write_text(json.dumps({"boxes": [[1, 2, 3, 4]], "scores": [], "classes": ["cat"]}))
    t = task("ubbr-wsod-oicr-ubbr-map", "full", f"eval.detections={folder}")
    monkeypatch.setattr("reprolab.paths.project_root", lambda: tmp_path)
    classes = ["cat", "dog"]
    inputs = t._detection_inputs([], classes)
    boxes, labels, scores = inputs(0, SimpleNamespace(id="000005"), None, 0.5, (100, 100))
    assert torch.equal(boxes, torch.tensor([[5.0, 10.0, 15.0, 20.0]])) and labels.tolist() == [1]
    with pytest.raises(ConfigError, match="1 boxes, 0 scores"):
        inputs(1, SimpleNamespace(id="000007"), None, 1.0, (100, 100))
    with pytest.raises(ConfigError, match="no .*000009.json") as error:
        inputs(2, SimpleNamespace(id="000009"), None, 1.0, (100, 100))
    assert DETECTIONS_FORMAT in str(error.value)


def test_refused_configurations_say_why():
    with pytest.raises(ConfigError, match="needs eval.detections"):
        task("ubbr-wsod-oicr-ubbr-map", "full", "eval.detections=null")
    full = task("ubbr-wsod-oicr-ubbr-map", "full", "eval.detections=fixture")
    with pytest.raises(ConfigError, match="synthetic detector"):
        full._detections_folder([], [])
    with pytest.raises(NotImplementedError, match="object discovery is not built"):
        task("ubbr-discovery-voc2007", "tiny").check_data()
