"""The `distdl` command: train, evaluate, predict, resume, inspect, info.

Errors a user can fix are printed as one sentence (no traceback unless --debug)
and the command exits 2; only rank 0 prints an error every rank agreed on, and an error
on one rank alone ends the whole MPI job (MPI_Abort) instead of leaving the others waiting.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import traceback

import click

from ..comm import agree as agree_mod
from ..errors import DistdlError


def _env_rank() -> int:
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def friendly(fn):
    """Run a command; DistdlError -> one sentence on stderr and exit 2 (traceback with --debug)."""
    @functools.wraps(fn)
    def wrapper(*args, debug=False, **kwargs):
        if debug:
            os.environ["DISTDL_DEBUG"] = "1"
        try:
            return fn(*args, **kwargs)
        except DistdlError as e:
            from .. import comm as comm_mod
            rank = _env_rank()
            started = comm_mod._world is not None and comm_mod._world.size > 1
            # agreed: raised on every rank alike (distdl.comm.agree), so rank 0 tells it and every
            # rank exits; otherwise it may be this rank's alone, and the others would wait forever
            # in their next collective: it is told with the rank and ends the whole job
            alone = started and not agree_mod.is_agreed(e)
            if debug:
                traceback.print_exc()
            elif rank == 0 or alone:
                prefix = f"[rank {rank}] " if started and rank else ""
                click.echo(f"{prefix}error: {e}", err=True)
            sys.stderr.flush()
            if alone:
                time.sleep(0.2)  # let the launcher read the sentence before the job is torn down
                comm_mod._world.abort(2)
            sys.exit(2)
    return click.option("--debug", is_flag=True, help="Show full tracebacks.")(wrapper)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="distdl")
def main():
    """distdl: Keras-style deep learning on NumPy, data-parallel over MPI."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--epochs", type=int, default=None, help="Override [training].epochs.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="Write checkpoints here (every epoch unless [checkpoint].save_freq says otherwise).")
@click.option("--resume", default=None, help="'auto' (newest valid checkpoint in --checkpoint-dir) or a checkpoint path.")
@friendly
def train(config, epochs, checkpoint_dir, resume):
    """Train the model described by the TOML CONFIG (data-parallel under mpirun)."""
    from .run import train_from_config
    train_from_config(config, epochs=epochs, checkpoint_dir=checkpoint_dir, resume=resume)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--epochs", type=int, default=None, help="Train up to this epoch instead of the recorded one.")
@friendly
def resume(checkpoint, epochs):
    """Continue the run that wrote CHECKPOINT, with the data and settings it recorded."""
    from .run import resume_from_checkpoint
    resume_from_checkpoint(checkpoint, epochs=epochs)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", required=True, help="digits, breast_cancer, an .npz/.h5 file or an IDX folder.")
@click.option("--batch-size", type=int, default=32)
@friendly
def evaluate(checkpoint, data, batch_size):
    """Loss and metrics of the model in CHECKPOINT on --data (its test split when it has one)."""
    from .run import evaluate_checkpoint
    evaluate_checkpoint(checkpoint, data, batch_size)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", required=True, help="digits, breast_cancer, an .npz/.h5 file or an IDX folder.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the .npy array.")
@click.option("--batch-size", type=int, default=32)
@friendly
def predict(checkpoint, data, out, batch_size):
    """Write the predictions of the model in CHECKPOINT for --data to a .npy file."""
    from .run import predict_checkpoint
    predict_checkpoint(checkpoint, data, out, batch_size)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@friendly
def inspect(checkpoint):
    """Format version, position, world size, layers and parameter counts, checksum status;
    exits 2 (after printing all it could read) when the file does not verify."""
    from ..errors import CheckpointError
    from .run import inspect_lines
    lines, verified = inspect_lines(checkpoint)
    for line in lines:
        click.echo(line)
    if not verified:
        raise CheckpointError(f"Checkpoint {checkpoint} fails its checksum: its contents were changed "
                              f"or damaged after it was written.")


@main.command()
@friendly
def info():
    """Show the MPI library, world size, rank-to-host map and BLAS threads per rank."""
    import numpy as np

    from ..comm import world
    comm = world()
    desc = comm.describe()
    if comm.rank == 0:
        click.echo(f"distdl {__import__('distdl').__version__}, numpy {np.__version__}")
        click.echo(f"MPI library: {desc['library']}")
        if "mpi_version" in desc:
            click.echo(f"MPI standard: {desc['mpi_version']}")
        click.echo(f"world size: {desc['size']}")
        for r, host in desc["hosts"].items():
            threads = desc.get("blas_threads", {}).get(r, os.environ.get("OMP_NUM_THREADS", "default"))
            click.echo(f"  rank {r}: host {host}, BLAS threads {threads}")
        for line in _shm_lines():
            click.echo(line)


def _shm_lines() -> list[str]:
    """/dev/shm on rank 0's host: free room, and segment files that ended jobs left there."""
    from . import shm
    measured = shm.room()
    if measured is None:
        return [f"{shm.SHM_DIR}: not present (MPI's shared memory lives elsewhere)"]
    left = shm.leftovers()
    lines = [f"{shm.SHM_DIR}: {shm.size_text(measured[0])} free of {shm.size_text(measured[1])}"]
    if left:
        lines.append(f"{shm.SHM_DIR}: {len(left)} leftover MPI segment file(s) of ended jobs, "
                     f"{shm.size_text(sum(left.values()))}, that no process uses (safe to delete): "
                     f"{', '.join(sorted(left)[:5])}{', ...' if len(left) > 5 else ''}")
    else:
        lines.append(f"{shm.SHM_DIR}: no leftover MPI segment files")
    return lines

