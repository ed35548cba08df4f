"""The recipe's `optim:` block, typed: what the one training loop and its optimizer read.

Unknown keys and wrong types fail when a recipe is resolved (`reprolab check`, or before a run
starts), naming the key, instead of falling back to a default minutes into a run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt, model_validator

from reprolab.config import Options


class TrainOptions(Options):
    # optimizer (reprolab.engine.optim)
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0)            # sgd
    nesterov: bool = False                                # sgd
    betas: tuple[float, float] = (0.9, 0.999)             # adamw
    eps: float = Field(default=1e-8, gt=0)                # adamw
    # learning-rate schedule, per iteration
    schedule: Literal["step", "cosine", "constant", "inverse"] = "constant"
    milestones: list[int] = Field(default_factory=list, description="step: epochs at which lr *= gamma")
    gamma: float = Field(default=0.1, gt=0)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="cosine: final lr / peak lr")
    decay: float = Field(default=0.0, ge=0, description="inverse: lr = lr0 / (1 + it * decay)")
    warmup_epochs: float = Field(default=0.0, ge=0)
    warmup_start_factor: float | None = Field(default=None, ge=0, le=1)
    # the loop (reprolab.engine.loop)
    batch_size: PositiveInt = Field(description="global batch, split evenly across ranks")
    epochs: PositiveInt
    drop_last: bool = True
    clip_grad_norm: float | None = Field(default=None, gt=0)
    clip_grad_value: float | None = Field(default=None, gt=0)
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    num_workers: int = Field(default=0, ge=0)
    eval_every: int = Field(default=1, ge=0, description="0: never during training")
    checkpoint_every: int = Field(default=0, ge=0, description="iterations; 0: epoch ends only")
    deterministic: bool = False
    max_steps_per_epoch: PositiveInt | None = Field(default=None, description="cap for smoke runs")

    @model_validator(mode="before")
    @classmethod
    def _lower_case_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("name", "schedule", "amp"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].lower()
        return data

    @classmethod
    def of(cls, optim: TrainOptions | dict[str, Any]) -> TrainOptions:
        """Typed options from a recipe's `optim:` block (or options already typed)."""
        return cls.parse(optim, where="optim")
