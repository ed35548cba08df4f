"""Slurm through submitit: submit a training run, requeue it when preempted, resume it exactly.

    reprolab train <recipe> --slurm partition=gpu,nodes=2,gpus_per_node=8,time=4320 [--slurm-wait]

One Slurm task per GPU (`tasks_per_node = gpus_per_node`); every task runs `TrainJob`, which
exports submitit's view of the allocation (MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK,
WORLD_SIZE) and joins the process group the way `torchrun` does (reprolab.engine.distributed).

Preemption and time-outs: Slurm sends USR2 `signal_delay_s` before the kill; submitit's handler
calls `TrainJob.checkpoint`, which resubmits the same job with resume on, and requeues it. The
requeued job continues from `checkpoints/last.pt`, which the loop writes at every epoch end and
every `optim.checkpoint_every` iterations: a preempted run loses at most that many iterations
and ends with the weights of an uninterrupted run (the checkpoint holds RNG states and position).

The run directory is fixed at submission (runs/<recipe>/<run-id>, or --out), so every attempt
writes to the same place; submitit's pickles and logs live beside it, in `<run_dir>.slurm/`.
`--slurm-wait` blocks until the job ends and exits with its status: what a DVC stage needs.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolab.errors import UsageError

# `--slurm key=value,...` keys -> submitit AutoExecutor parameters (see `reprolab train --help`).
SLURM_KEYS: dict[str, tuple[str, type]] = {
    "partition": ("slurm_partition", str),
    "account": ("slurm_account", str),
    "qos": ("slurm_qos", str),
    "constraint": ("slurm_constraint", str),
    "nodes": ("nodes", int),
    "gpus_per_node": ("gpus_per_node", int),
    "cpus_per_task": ("cpus_per_task", int),
    "mem_gb": ("mem_gb", int),
    "time": ("timeout_min", int),  # minutes, as sbatch --time=<minutes>
    "signal_delay_s": ("slurm_signal_delay_s", int),
    "max_requeues": ("slurm_max_num_timeout", int),
    "job_name": ("name", str),
}
# Not Slurm parameters: where the job runs. "local" is submitit's local executor (same
# processes, signals and requeue logic, on this machine); "slurm" needs sbatch on PATH.
CLUSTERS = ("slurm", "local")


@dataclass(frozen=True)
class SlurmOptions:
    cluster: str = "slurm"
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SlurmOptions:
        """`partition=gpu,nodes=2,gpus_per_node=8` -> options; a bad key or value is a UsageError."""
        parameters: dict[str, Any] = {}
        cluster = "slurm"
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not value:
                raise UsageError(f"--slurm {text!r}: {item!r} is not key=value")
            if key == "cluster":
                if value not in CLUSTERS:
                    raise UsageError(f"--slurm cluster={value}: expected one of {', '.join(CLUSTERS)}")
                cluster = value
                continue
            if key not in SLURM_KEYS:
                raise UsageError(f"--slurm: unknown key {key!r}; expected cluster or one of "
                                 f"{', '.join(SLURM_KEYS)}")
            name, kind = SLURM_KEYS[key]
            try:
                parameters[name] = kind(value)
            except ValueError:
                raise UsageError(f"--slurm {key}={value}: expected an integer") from None
        gpus = parameters.get("gpus_per_node", 0)
        parameters["tasks_per_node"] = max(1, gpus)  # one process per GPU, as torchrun
        parameters.setdefault("nodes", 1)
        parameters.setdefault("name", "reprolab")
        return cls(cluster=cluster, parameters=parameters)

    @property
    def world_size(self) -> int:
        return self.parameters["nodes"] * self.parameters["tasks_per_node"]


@dataclass
class TrainJob:
    """One training run as a submitit job: picklable, checkpointable (requeued with resume)."""

    recipe: str
    profile: str
    overrides: list[str]
    seed: int | None
    run_dir: Path
    device: str | None = None
    resume: bool = False

    def __call__(self) -> str:
        from submitit.helpers import TorchDistributedEnvironment

        if int(os.environ.get("SUBMITIT_LOCAL_NTASKS", os.environ.get("SLURM_NTASKS", "1"))) > 1:
            # each task keeps every GPU of its node visible and picks cuda:LOCAL_RANK itself
            TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return str(run_training(self.recipe, self.profile, self.overrides, self.seed, self.run_dir,
                                device=self.device, resume=self.resume))

    def checkpoint(self):
        """Called by submitit on preemption or time-out: the same job again, resuming."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(dataclasses.replace(self, resume=True))


def run_training(recipe: str, profile: str, overrides: list[str], seed: int | None, run_dir: Path, *,
                 device: str | None = None, resume: bool = False) -> Path:
    """What `reprolab train --out RUN_DIR [--resume]` does, in this process (a Slurm task).
    With `resume`, a run directory that holds no run yet (preempted before it began) starts."""
    from reprolab.config import resolved_config
    from reprolab.engine import distributed
    from reprolab.engine.runs import CONFIG_FILE, train_run

    config = resolved_config(recipe, profile, overrides, seed)
    # before joining the group, which no rank leaves before all have joined: rank 0 cannot have
    # written a new run's config.yaml yet
    resume = resume and (Path(run_dir) / CONFIG_FILE).is_file()
    ctx = distributed.setup(device)
    try:
        train_run(config, ctx, out=run_dir, resume=resume, show_progress=False)
    finally:
        distributed.teardown()
    return Path(run_dir)


def submission_folder(run_dir: Path) -> Path:
    """submitit's pickles and logs of a run: beside the run directory, not in it (a run
    directory that is not empty needs --resume)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f"{run_dir.name}.slurm"


def executor(options: SlurmOptions, folder: Path):
    """A submitit AutoExecutor for `options` writing into `folder`."""
    import submitit

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parameters = dict(options.parameters)
    max_requeues = parameters.pop("slurm_max_num_timeout", 3)  # an executor argument, not sbatch's
    if options.cluster == "slurm":
        if shutil.which("srun") is None:
            raise UsageError("--slurm: srun is not on PATH; submit from a Slurm login node, or try "
                             "the job here with --slurm cluster=local")
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm",
                                         slurm_max_num_timeout=max_requeues)
    else:  # slurm_* keys mean nothing to the local executor, which rejects them
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=options.cluster)
        parameters = {k: v for k, v in parameters.items() if not k.startswith("slurm_")}
    executor.update_parameters(**parameters)
    return executor


def sbatch_script(options: SlurmOptions, folder: Path) -> str:
    """The sbatch file submitit writes for `options` into `folder` (--slurm-dry-run, tests)."""
    from submitit.slurm import slurm

    command = f"{sys.executable} -u -m submitit.core._submit {Path(folder) / '%j'}"
    # What SlurmExecutor does to its parameters, without its check that srun is on PATH.
    generic = slurm.SlurmExecutor._equivalence_dict()
    parameters = {}
    for key, value in options.parameters.items():
        if key == "slurm_max_num_timeout":
            continue
        parameters[generic.get(key) or key.removeprefix("slurm_")] = value
    if "mem" in parameters:
        parameters["mem"] = slurm._convert_mem(parameters["mem"])
    return slurm._make_sbatch_string(command=command, folder=Path(folder) / "%j", **parameters)


def submit(job: TrainJob, options: SlurmOptions):
    """Submit `job`; returns the submitit Job (job.job_id, job.result(), job.paths)."""
    return executor(options, submission_folder(job.run_dir)).submit(job)
