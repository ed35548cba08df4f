"""Start training from another run's weights: the top-level `init_from:` of a resolved config.

A pipeline stage with `init_from: teacher` resolves (reprolab.pipeline.resolve) to

    init_from: {stage: teacher, checkpoint: runs/<recipe>/<profile>/stages/teacher/run/checkpoints/final.pt}

(the path relative to the checkout, or absolute). `fit` calls `load_init_weights(model, config)`
right after `task.build_model()` and before the optimizer exists, so every task gets it without
knowing about it: each tensor whose name and shape match is copied, and a layer that differs
(a classifier for another label set) keeps its fresh initialisation. A resumed run then loads
its own last checkpoint over it, as usual.

This is the engine's warm start, for any task. The video task's `model.init_from: {recipe: ...}`
(fine-tuning from another recipe's latest result) is older and task-local; it can become a
spelling of this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn


def init_checkpoint(config: dict[str, Any]) -> Path | None:
    """The checkpoint `config["init_from"]` names, or None; FileNotFoundError when it is missing."""
    init = config.get("init_from")
    if not init:
        return None
    if not isinstance(init, dict) or "checkpoint" not in init:
        raise KeyError(f"init_from: expected {{checkpoint: <path>}} (with the stage that made it), "
                       f"got {init!r}")
    from reprolab import paths

    path = Path(init["checkpoint"])
    if not path.is_absolute():
        path = paths.project_root() / path
    if not path.is_file():
        made_by = f" (stage {init['stage']!r} has not finished)" if init.get("stage") else ""
        raise FileNotFoundError(f"init_from: no checkpoint at {path}{made_by}")
    return path


def load_init_weights(model: nn.Module, config: dict[str, Any], *, verbose: bool = False) -> list[str] | None:
    """Copy the matching tensors of the `init_from` checkpoint into `model`; return the names of
    the tensors left as they were (None: the config has no `init_from`)."""
    path = init_checkpoint(config)
    if path is None:
        return None
    # The shape-matching copy lives in the video task for now; it is task-independent.
    from reprolab.tasks.video_classification import load_matching_weights

    skipped = load_matching_weights(model, path)
    if verbose:
        kept = f"; kept fresh: {', '.join(skipped)}" if skipped else ""
        print(f"init_from: weights of {config['init_from'].get('stage') or path} ({path.name}){kept}",
              flush=True)
    return skipped
