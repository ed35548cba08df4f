"""`stages:` is validated with the recipe: errors name the file and the key, references are checked."""

from __future__ import annotations

import pytest

from reprolab import cli
from reprolab.registry import RegistryError, load_recipe, load_registry

CHAIN = """\
base: _base.yaml
title: A toy chain
benchmark: toyvid-val
stages:
  teacher: {}
  labels: {infer: predicted-labels, from: teacher, split: train, options: {min_score: 0.5}}
  student:
    data: {train_from: labels}
    init_from: teacher
    optim: {lr: 0.001}
"""
PATH = "reproductions/toy/recipes/toyvid-chain.yaml"


@pytest.fixture
def chain_root(mini_root):
    (mini_root / PATH).write_text(CHAIN)
    return mini_root


def test_a_chain_loads_with_kinds_and_inputs(chain_root):
    recipe = load_registry(chain_root).recipe("toyvid-chain")
    stages = recipe.stages
    assert list(stages) == ["teacher", "labels", "student"]
    assert [s.kind for s in stages.values()] == ["task", "inference", "task"]
    assert stages["labels"].from_ == "teacher" and stages["labels"].options == {"min_score": 0.5}
    assert stages["student"].inputs == ["labels", "teacher"] and stages["student"].train_from == "labels"
    assert load_registry(chain_root).recipe("toyvid-toy-r18").stages == {}


@pytest.mark.parametrize("old, new, fragments", [
    ("init_from: teacher", "init_from: techer", ["`student.init_from`", "no stage 'techer'"]),
    ("from: teacher", "from: student", ["`labels.from`", "'student' is not declared before 'labels'"]),
    ("from: teacher", "from: labels", ["`labels.from`", "not declared before"]),
    ("train_from: labels", "train_from: teacher",
     ["`student.data.train_from`", "'teacher' is a task stage", "needs an inference stage"]),
    ("init_from: teacher", "init_from: labels", ["`student.init_from`", "is an inference stage"]),
    ("optim: {lr: 0.001}", "optimm: {lr: 0.001}", ["key `stages.student.optimm`: unknown key"]),
    ("split: train", "split: test", ["key `stages.labels.split`"]),
    ("split: train,", "split: train, optim: {lr: 1},", ["`optim` belong to task stages"]),
    ("teacher: {}", "teacher: {from: x}", ["`from` belong to inference stages"]),
    ("labels: {infer: predicted-labels, from: teacher,", "labels: {infer: predicted-labels,",
     ["`from`: required"]),
    ("  student:\n", "  Student:\n", ["stage name 'Student'"]),
    ("  teacher: {}", "  resolve: {}\n  teacher: {}", ["'resolve' is reserved"]),
])
def test_a_bad_chain_names_the_file_and_the_key(chain_root, old, new, fragments):
    path = chain_root / PATH
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(RegistryError) as caught:
        load_recipe(path)
    message = str(caught.value)
    assert "toyvid-chain.yaml" in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("old, new, fragments", [
    ("infer: predicted-labels", "infer: predicted-lables",
     ["key `stages.labels.infer`: unknown inference step 'predicted-lables'; did you mean predicted-labels?"]),
    ("{min_score: 0.5}", "{min_scor: 0.5}",
     ["key `stages.labels.options`", "`options.min_scor`: unknown option", "takes: min_score"]),
    ("{min_score: 0.5}", "{min_score: 2}", ["`options.min_score`", "less than or equal to 1"]),
    ("optim: {lr: 0.001}", "optim: {lr: slow}", ["key `optim.lr`: Input should be a valid number"]),
])
def test_reprolab_check_resolves_every_chain_and_names_the_file_and_key(chain_root, capsys, old, new,
                                                                         fragments):
    # The steps are pipeline code, above the registries: a chain's steps and options are checked
    # when it is resolved, which `reprolab check` does for every chain in both profiles.
    assert cli.main(["check"]) == cli.EXIT_OK
    path = chain_root / PATH
    path.write_text(path.read_text().replace(old, new, 1))
    assert cli.main(["check"]) == cli.EXIT_REGISTRY
    message = capsys.readouterr().err
    assert "toyvid-chain.yaml" in message and "profile full" in message and "profile tiny" in message
    for fragment in fragments:
        assert fragment in message, message


def test_the_chain_ends_with_a_task_run(chain_root):
    path = chain_root / PATH
    path.write_text(CHAIN.split("  student:")[0])
    with pytest.raises(RegistryError, match="ends with a task run"):
        load_recipe(path)


def test_reprolab_train_refuses_a_chain(chain_root, capsys):
    assert cli.main(["train", "toyvid-chain", "--profile", "tiny"]) == cli.EXIT_USAGE
    assert "reprolab run-stages toyvid-chain" in capsys.readouterr().err
