"""The toy task as a submitit job (test_slurm.py): registered in the job's own process, and
preempted once at a chosen training call by the signal Slurm sends (USR2)."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

from reprolab.engine.slurm import TrainJob
from tests.engine.toy import ToyTask

PREEMPT_AT = "REPROLAB_TEST_PREEMPT_AT"  # "<call>:<marker file>": preempt once, at that call


class PreemptedOnceToyTask(ToyTask):
    def training_loss(self, model, batch):
        spec = os.environ.get(PREEMPT_AT)
        if spec:
            call, marker = spec.split(":", 1)
            if self.calls + 1 == int(call) and not Path(marker).exists():
                Path(marker).write_text(f"preempted at training call {call}\n")
                os.kill(os.getpid(), signal.SIGUSR2)  # submitit's handler: checkpoint, requeue, exit
        return super().training_loss(model, batch)


@dataclasses.dataclass
class ToyTrainJob(TrainJob):
    def __call__(self) -> str:
        from reprolab.tasks import TASKS

        TASKS._entries.setdefault("toy-test", PreemptedOnceToyTask)
        return super().__call__()
