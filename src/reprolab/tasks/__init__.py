"""Tasks plug paper-specific problems into the shared engine; `build_task` maps Recipe.task to one.

Each task module registers its class in TASKS under the recipe's `task:` value, so a reader gets
from a recipe to the code it runs in one grep (`name="video-classification"`).
"""

from __future__ import annotations

from typing import Any

from reprolab.errors import NotBuiltError
from reprolab.tasks.base import TASKS, SplitDescription, Task
from reprolab.tasks import log_ratio, metric_learning, video_classification  # noqa: F401  (register)


def build_task(config: dict[str, Any]) -> Task:
    """The task that runs a resolved config (`config["task"]` names it); its recipe blocks are
    validated here, so a bad key or value fails before any data is read."""
    name = config.get("task")
    if name not in TASKS:
        raise NotBuiltError(
            f"recipe {config.get('recipe')!r}: task {name!r} has no trainer yet (known tasks: "
            f"{', '.join(TASKS.names())}); add a module under reprolab/tasks/ that registers it in TASKS"
        )
    return TASKS.get(name)(config)


def list_tasks() -> list[str]:
    return TASKS.names()


__all__ = ["TASKS", "SplitDescription", "Task", "build_task", "list_tasks"]
