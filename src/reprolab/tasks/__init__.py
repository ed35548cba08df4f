"""Tasks plug paper-specific problems into the shared engine; `get_task` maps Recipe.task to one.

The registry is a plain mapping from the recipe's `task:` value to a module path and class, so a
reader gets from a recipe to the code it runs in one jump, and importing it stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from reprolab.tasks.base import SplitDescription, Task

TASKS: dict[str, str] = {
    "video-classification": "reprolab.tasks.video_classification:VideoClassification",
    "metric-learning": "reprolab.tasks.metric_learning:MetricLearning",
    "log-ratio": "reprolab.tasks.log_ratio:LogRatio",
}


def get_task(config: dict[str, Any]) -> Task:
    """The task that runs a resolved config (`config["task"]` names it)."""
    name = config.get("task")
    if name not in TASKS:
        known = ", ".join(sorted(TASKS))
        raise NotImplementedError(
            f"recipe {config.get('recipe')!r}: task {name!r} has no trainer yet (known tasks: {known}); "
            "add a module under reprolab/tasks/ and list it in reprolab.tasks.TASKS"
        )
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(config)


__all__ = ["TASKS", "SplitDescription", "Task", "get_task"]
