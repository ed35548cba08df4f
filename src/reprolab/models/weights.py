"""Where initial weights come from: fetched weights cards, and other runs' checkpoints (init_from).

- ``pretrained_weights_path(card_id)``: the file a `weights-*` dataset card fetched (ImageNet
  checkpoints); nothing is downloaded here.
- ``load_matching_weights``: copy another run's tensors whose names and shapes match (the
  engine's warm start, reprolab.engine.init_from, uses it for every task).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from reprolab.errors import ConfigError, MissingDataError


def pretrained_weights_path(card_id: str | None, root: Path | None = None) -> Path | None:
    """The file a `weights-*` card fetched (its first source), or MissingDataError naming the fetch."""
    if card_id in (None, "none", False):
        return None
    from reprolab.data.layout import DatasetLayout
    from reprolab.registry import load_card

    layout = DatasetLayout(str(card_id), "full", root)
    if not layout.card_path.is_file():
        raise ConfigError(f"model weights: {card_id!r} is not a weights card (no {layout.card_path})")
    card = load_card(layout.card_path)
    path = layout.raw_file(card.sources[0].filename)
    if not path.is_file():
        raise MissingDataError(
            f"{card_id}: pretrained weights not found at {path}. Run: reprolab data fetch {card_id}"
        )
    return path


def load_matching_weights(model: nn.Module, path: Path) -> list[str]:
    """Copy every tensor of a checkpoint whose name and shape match; return the names skipped.

    Fine-tuning on another label set skips the classifier, which keeps its fresh initialisation.
    """
    import torch

    own = model.state_dict()
    # An engine checkpoint (reprolab.engine.checkpoint) also holds RNG states: not weights-only.
    saved = torch.load(path, map_location="cpu", weights_only=False)["model"]
    loadable = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(loadable))
    # A model may say which of its parts a warm start fills (URIE: the recognizer of an earlier
    # stage; its enhancer starts fresh); the architecture check then counts that part only.
    scope = getattr(model, "init_from_scope", None)
    if scope:
        own = {k: v for k, v in own.items() if k.startswith(scope)}
        loadable = {k: v for k, v in loadable.items() if k.startswith(scope)}
    if len(set(own) - set(loadable)) > len(own) // 2:
        raise ValueError(f"{path}: only {len(loadable)} of {len(own)} tensors match this model; "
                         "is it a checkpoint of the same architecture?")
    model.load_state_dict(loadable, strict=False)
    return skipped
