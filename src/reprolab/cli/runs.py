"""`reprolab train` and `reprolab evaluate`: the CLI over reprolab.engine.runs.

    reprolab train <recipe> [--profile tiny|full] [--seed N] [--out RUN_DIR] [--device cpu|cuda]
                   [--resume] [key=value ...]
    reprolab train <recipe> --slurm partition=P,nodes=N,gpus_per_node=G[,time=MIN,...] [--slurm-wait]
    reprolab evaluate <run-dir> [--metrics-out FILE] [--history-out FILE] [--device cpu|cuda]

A bad recipe key or override value exits 2 before a run directory or a result is written.
Multi-GPU: `torchrun --nproc-per-node N -m reprolab.cli train ...` (same for evaluate); many
nodes: the README's "Scale out". `--slurm` submits the same run through submitit
(reprolab.engine.slurm): a flag of `train` rather than its own command, because every option of
a run (recipe, profile, seed, --out, overrides) means the same there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reprolab import atomic
from reprolab.cli.options import add_profile_and_overrides
from reprolab.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a recipe",
        description="Train RECIPE (see `reprolab list recipes`) and leave a run directory that "
                    "`reprolab evaluate` scores.")
    p.add_argument("recipe")
    p.add_argument("--seed", type=int, default=None, help="default: the recipe's first seed")
    p.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                   help="run directory (default runs/<recipe>/<run-id>)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--slurm", default=None, metavar="KEY=VALUE,...",
                   help="submit to Slurm through submitit instead of training here; keys: partition, "
                        "account, qos, constraint, nodes, gpus_per_node, cpus_per_task, mem_gb, "
                        "time (minutes), signal_delay_s, max_requeues, job_name, cluster (slurm or "
                        "local: submitit's local executor, to try a job here)")
    p.add_argument("--slurm-wait", action="store_true",
                   help="with --slurm: wait for the job and exit with its status (for DVC stages)")
    p.add_argument("--slurm-dry-run", action="store_true",
                   help="with --slurm: print the sbatch script and submit nothing")
    add_profile_and_overrides(p)
    p.set_defaults(handler=train_command)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a trained run and record its result",
        description="Score RUN_DIR's final weights on its benchmark and write a RunResult to results/.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--metrics-out", type=Path, default=None, metavar="FILE",
                   help="also write the metrics as flat JSON (for `dvc metrics show`)")
    p.add_argument("--history-out", type=Path, default=None, metavar="FILE",
                   help="also write the per-epoch training history as a JSON array (for `dvc plots`)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=evaluate_command)


def train_command(args: argparse.Namespace) -> int:
    from reprolab.config import resolved_config
    from reprolab.engine import distributed
    from reprolab.engine.runs import RunFailedError, train_run
    from reprolab.tasks import build_task

    if args.no_progress:
        os.environ["REPROLAB_NO_PROGRESS"] = "1"
    config = resolved_config(args.recipe, args.profile, args.overrides, args.seed)
    build_task(config)  # a bad key or value: exit 2 now, before any process group or run directory
    if args.slurm:
        return slurm_train(args, config)
    if args.slurm_wait or args.slurm_dry_run:
        raise UsageError("--slurm-wait and --slurm-dry-run go with --slurm")
    ctx = distributed.setup(args.device)
    try:
        trained = train_run(config, ctx, out=args.out, resume=args.resume,
                            show_progress=not args.no_progress)
    except RunFailedError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        distributed.teardown()
    if ctx.is_main:
        print(f"run directory: {trained.run_dir}\nnext: reprolab evaluate {trained.run_dir}")
    return EXIT_OK


def slurm_train(args: argparse.Namespace, config: dict) -> int:
    from reprolab import paths
    from reprolab.engine import slurm
    from reprolab.results import new_run_id

    options = slurm.SlurmOptions.parse(args.slurm)
    # fixed now, so that a requeued job resumes the same directory
    run_dir = (args.out or paths.runs_dir() / config["recipe"] / new_run_id(config["seed"])).absolute()
    job = slurm.TrainJob(args.recipe, args.profile, list(args.overrides), args.seed, run_dir,
                         device=args.device, resume=args.resume)
    folder = slurm.submission_folder(run_dir)
    if args.slurm_dry_run:
        print(slurm.sbatch_script(options, folder), end="")
        return EXIT_OK
    submitted = slurm.submit(job, options)
    print(f"submitted job {submitted.job_id} ({options.world_size} processes on "
          f"{options.parameters['nodes']} node(s)); run directory: {run_dir}\nlogs: {folder}")
    if not args.slurm_wait:
        print(f"next, when it has finished: reprolab evaluate {run_dir}")
        return EXIT_OK
    try:
        submitted.result()
    except Exception as error:  # noqa: BLE001 - submitit's FailedJobError / UncompletedJobError
        print(f"reprolab: job {submitted.job_id} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"job {submitted.job_id} finished; run directory: {run_dir}\nnext: reprolab evaluate {run_dir}")
    return EXIT_OK


def evaluate_command(args: argparse.Namespace) -> int:
    from reprolab.engine import distributed
    from reprolab.engine.logs import plot_records
    from reprolab.engine.runs import RunFailedError, evaluate_run, read_history, read_run_dir
    from reprolab.predictions import PREDICTIONS_FILE

    if args.no_progress:
        os.environ["REPROLAB_NO_PROGRESS"] = "1"
    try:  # not a run directory is a usage error (exit 2), said before starting anything
        read_run_dir(args.run_dir)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    ctx = distributed.setup(args.device)
    try:
        evaluated = evaluate_run(args.run_dir, ctx, show_progress=not args.no_progress)
    except RunFailedError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        distributed.teardown()
    if evaluated is None:  # not rank 0
        return EXIT_OK
    if args.metrics_out:
        atomic.write_json(Path(args.metrics_out), evaluated.metrics)
    if args.history_out:
        atomic.write_json(Path(args.history_out), plot_records(read_history(evaluated.run_dir)))
    config, split = evaluated.config, evaluated.split
    shown = ", ".join(f"{k} {v:.2f}" for k, v in evaluated.metrics.items())
    print(f"{config['recipe']} ({config['profile']}, seed {config['seed']}) on "
          f"{split.dataset}/{split.name} ({split.samples} samples): {shown}\nresult: {evaluated.record}\n"
          f"predictions: {evaluated.run_dir / PREDICTIONS_FILE} (see them: reprolab browse "
          f"{split.dataset} --run {evaluated.run_dir})")
    return EXIT_OK
