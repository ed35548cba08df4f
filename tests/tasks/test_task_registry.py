from pathlib import Path

import pytest

from reprolab.registry import load_registry
from reprolab.tasks import TASKS
from reprolab.tasks.base import Task

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", TASKS.names())
def test_every_registered_task_is_a_task_with_typed_blocks(name):
    task = TASKS.get(name)
    assert issubclass(task, Task)
    assert task.Model.model_config["extra"] == "forbid" and task.Data.model_config["extra"] == "forbid"


def test_every_recipe_names_a_registered_task():
    registry = load_registry(REPO)
    missing = {r.id: r.task for r in registry.recipes.values() if r.task not in TASKS}
    assert not missing, f"recipes whose task has no trainer in reprolab.tasks.TASKS: {missing}"
