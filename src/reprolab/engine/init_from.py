"""Start training from another run's weights: the engine's warm start, for every task.

Two spellings reach it, both resolved to one checkpoint file:

- a pipeline stage's top-level `init_from` (reprolab.pipeline.resolve):
      init_from: {stage: teacher, checkpoint: runs/<recipe>/<profile>/stages/teacher/run/checkpoints/final.pt}
  (the path relative to the checkout, or absolute);
- a recipe's `model.init_from`: `{recipe: <id>}` (that recipe's latest evaluated run of the same
  profile) or `{checkpoint: <path>}`: fine-tuning, e.g. MotionSqueeze's Kinetics -> UCF101 rows.

`fit` calls `load_init_weights(model, config)` right after `task.build_model()` and before the
optimizer exists: each tensor whose name and shape match is copied, and a layer that differs (a
classifier for another label set) keeps its fresh initialisation. A resumed run then loads its own
last checkpoint over it, as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from reprolab import paths
from reprolab.errors import ConfigError, MissingDataError


def _latest_checkpoint_of(recipe: str, profile: str) -> Path:
    from reprolab.results import ResultsStore

    done = [r for r in ResultsStore().runs(recipe) if r.status == "ok" and r.profile == profile and r.log_path]
    for result in reversed(done):  # newest first
        path = paths.in_checkout(result.log_path).parent / "checkpoints" / "final.pt"
        if path.is_file():
            return path
    raise MissingDataError(
        f"model.init_from: no evaluated {profile} run of {recipe} with its weights; run "
        f"`reprolab train {recipe} --profile {profile}` and `reprolab evaluate <run>` first"
    )


def init_checkpoint(config: dict[str, Any]) -> Path | None:
    """The checkpoint a resolved config starts from, or None; an error saying what to run first."""
    from reprolab import paths

    stage_init = config.get("init_from")
    model_init = (config.get("model") or {}).get("init_from")
    if stage_init and model_init:
        raise ConfigError("init_from: a pipeline stage's init_from and model.init_from both given; keep one")
    init = stage_init or model_init
    if not init:
        return None
    if not isinstance(init, dict) or not (init.get("checkpoint") or init.get("recipe")):
        raise ConfigError(f"init_from: expected {{checkpoint: <path>}} or {{recipe: <id>}}, got {init!r}")
    if init.get("recipe") and not init.get("checkpoint"):
        return _latest_checkpoint_of(init["recipe"], config.get("profile", "full"))
    path = Path(init["checkpoint"])
    if not path.is_absolute():
        path = paths.project_root() / path
    if not path.is_file():
        made_by = f" (stage {init['stage']!r} has not finished)" if init.get("stage") else ""
        raise FileNotFoundError(f"init_from: no checkpoint at {path}{made_by}")
    return path


def load_init_weights(model: nn.Module, config: dict[str, Any], *, verbose: bool = False) -> list[str] | None:
    """Copy the matching tensors of the `init_from` checkpoint into `model`; return the names of
    the tensors left as they were (None: the config starts from no other run)."""
    from reprolab.models.weights import load_matching_weights

    path = init_checkpoint(config)
    if path is None:
        return None
    skipped = load_matching_weights(model, path)
    if verbose:
        init = config.get("init_from") or config["model"]["init_from"]
        kept = f"; kept fresh: {', '.join(skipped)}" if skipped else ""
        print(f"init_from: weights of {init.get('stage') or init.get('recipe') or path} ({path.name}){kept}",
              flush=True)
    return skipped
