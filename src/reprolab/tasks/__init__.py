"""Tasks plug paper-specific problems into the shared engine; `build_task` maps Recipe.task to one.

Each task module registers its class in TASKS under the recipe's `task:` value, so a reader gets
from a recipe to the code it runs in one grep (`name="video-classification"`).
"""

from __future__ import annotations

from typing import Any

from reprolab.errors import ConfigError, NotBuiltError
from reprolab.tasks import (  # noqa: F401  (each module registers its task)
    box_regression,
    deeplab_v2,
    domain_adaptation,
    enhancement,
    irnet,
    log_ratio,
    metric_learning,
    psa,
    segmentation,
    video_classification,
    web_video,
)
from reprolab.tasks.base import TASKS, SplitDescription, Task


def build_task(config: dict[str, Any]) -> Task:
    """The task that runs a resolved config (`config["task"]` names it); its recipe blocks are
    validated here, so a bad key or value fails before any data is read."""
    name = config.get("task")
    if name not in TASKS:
        from reprolab.names import hint

        raise NotBuiltError(
            f"recipe {config.get('recipe')!r}: task {name!r} has no trainer yet ({hint(name, TASKS.names())}); "
            "add a module under reprolab/tasks/ that registers it in TASKS"
        )
    try:
        return TASKS.get(name)(config)
    except ConfigError:
        raise
    except ValueError as error:  # a task's own check of a recipe value (model.loss, ...)
        raise ConfigError(str(error)) from None


def check_recipes(reg, profiles: tuple[str, ...] = ("full", "tiny")) -> int:
    """Resolve every recipe in every profile and type-check it through its task's typed blocks;
    RegistryErrors names each recipe file and key at fault. Returns how many were checked."""
    from reprolab.config import resolve
    from reprolab.registry import RegistryError, RegistryErrors

    errors, checked = [], 0
    for recipe in sorted(reg.recipes.values(), key=lambda r: r.id):
        path = reg.files[f"recipe:{recipe.id}"]
        if recipe.task not in TASKS:
            continue  # a task without a trainer yet: its rows say "no trainer" in the reports
        for profile in profiles:
            try:
                config = resolve(recipe, profile)
                config["benchmark_spec"] = reg.benchmarks[recipe.benchmark].model_dump(mode="json")
                build_task(config)
            except (ConfigError, ValueError, KeyError) as error:
                message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
                errors.append(RegistryError(path, [f"profile {profile}: {message}"]))
            checked += 1
    if errors:
        raise RegistryErrors(errors)
    return checked


def list_tasks() -> list[str]:
    return TASKS.names()


__all__ = ["TASKS", "SplitDescription", "Task", "build_task", "check_recipes", "list_tasks"]
