"""Run by test_distributed.py under torchrun: train the toy task with DDP into argv[1]."""

import sys
from pathlib import Path

from reprolab.engine import distributed
from reprolab.engine.loop import fit
from tests.engine.toy import ToyTask, toy_config

if __name__ == "__main__":
    config = toy_config(epochs=2, milestones=[1])
    config["model"]["dropout"] = 0.0  # dropout masks come from each rank's own RNG
    ctx = distributed.setup("cpu")
    assert ctx.world_size == 2, ctx
    try:
        fit(ToyTask(config), config, Path(sys.argv[1]), ctx, seed=5, show_progress=False)
    finally:
        distributed.teardown()
