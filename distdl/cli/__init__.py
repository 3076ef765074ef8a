"""The `distdl` command: train, resume, evaluate, predict, inspect, plot, configs, info.

Errors a user can fix are printed as one sentence (no traceback unless --debug)
and the command exits 2; only rank 0 prints an error every rank agreed on, and an error
on one rank alone ends the whole MPI job (MPI_Abort) instead of leaving the others waiting.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from typing import Any, Callable

import click

from .. import __version__
from ..comm import agree as agree_mod
from ..errors import DistdlError
from ..log import launcher_rank as _env_rank

__all__ = ["main", "friendly"]


def _examples(*lines: str) -> str:
    """A `--help` epilog: the examples, kept as written (click rewraps other paragraphs)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command: DistdlError -> one sentence on stderr and exit 2 (a traceback with --debug).

    Args:
        fn: the command's function; the wrapper adds the `--debug` option.
    """
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_examples("distdl configs                      # the example configs shipped with distdl",
                              "distdl train digits_mlp --epochs 5",
                              "distdlrun -np 4 digits_mlp          # the same on 4 MPI ranks",
                              "distdl COMMAND --help               # each command's options and examples"))
@click.version_option(__version__, "-V", "--version", prog_name="distdl", message="%(prog)s %(version)s")
def main() -> None:
    """distdl: Keras-style deep learning on NumPy, data-parallel over MPI."""


@main.command(epilog=_examples(
    "distdl train digits_mlp                      # a shipped config, by name",
    "distdl train my.toml --epochs 20 --checkpoint-dir runs/a",
    "distdl train my.toml --checkpoint-dir runs/a --resume auto   # continue where it stopped"))
@click.argument("config")
@click.option("--epochs", type=int, default=None, help="Override [training].epochs.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="Write checkpoints here (every epoch unless [checkpoint].save_freq says otherwise).")
@click.option("--resume", default=None, help="'auto' (newest valid checkpoint in --checkpoint-dir) or a checkpoint path.")
@friendly
def train(config: str, epochs: int | None, checkpoint_dir: str | None, resume: str | None) -> None:
    """Train the model described by CONFIG, a TOML file or the name of a shipped config (see
    `distdl configs`); data-parallel when started by distdlrun or mpirun."""
    from .run import train_from_config
    train_from_config(config, epochs=epochs, checkpoint_dir=checkpoint_dir, resume=resume)


@main.command(epilog=_examples("distdl resume runs/a/ckpt-e0003-s000000.h5",
                               "distdl resume runs/a/ckpt-e0003-s000000.h5 --epochs 30"))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--epochs", type=int, default=None, help="Train up to this epoch instead of the recorded one.")
@friendly
def resume(checkpoint: str, epochs: int | None) -> None:
    """Continue the run that wrote CHECKPOINT, with the data and settings it recorded."""
    from .run import resume_from_checkpoint
    resume_from_checkpoint(checkpoint, epochs=epochs)


@main.command(epilog=_examples("distdl evaluate runs/a/ckpt-e0020-s000000.h5 --data digits",
                               "distdl evaluate model.h5 --data test.npz --batch-size 256"))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", required=True, help="digits, breast_cancer, an .npz/.h5 file or an IDX folder.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@friendly
def evaluate(checkpoint: str, data: str, batch_size: int) -> None:
    """Loss and metrics of the model in CHECKPOINT on --data (its test split when it has one)."""
    from .run import evaluate_checkpoint
    evaluate_checkpoint(checkpoint, data, batch_size)


@main.command(epilog=_examples("distdl predict runs/a/ckpt-e0020-s000000.h5 --data digits --out preds.npy",
                               "distdl predict model.h5 --data new.npz --out preds.npy"))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", required=True, help="digits, breast_cancer, an .npz/.h5 file or an IDX folder.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the .npy array.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@friendly
def predict(checkpoint: str, data: str, out: str, batch_size: int) -> None:
    """Write the predictions of the model in CHECKPOINT for --data to a .npy file."""
    from .run import predict_checkpoint
    predict_checkpoint(checkpoint, data, out, batch_size)


@main.command(epilog=_examples(
    "distdl inspect runs/a/ckpt-e0003-s000000.h5",
    "distdl inspect ckpt.h5 --json | python -c 'import json,sys; print(json.load(sys.stdin)[\"epoch\"])'",
    "distdl inspect ckpt.h5 > /dev/null && echo verified"))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts) instead of text.")
@friendly
def inspect(checkpoint: str, as_json: bool) -> None:
    """Format version, position, world size, layers and parameter counts, checksum status.

    Exits 0 when the file verifies, and 2 with one sentence on stderr (after printing all it
    could read) when it does not."""
    from ..errors import CheckpointError
    from ..saving.checkpoint import inspect_checkpoint
    from .run import inspect_lines
    info = inspect_checkpoint(checkpoint)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        for line in inspect_lines(info):
            click.echo(line)
    if info["checksum"] != "ok":
        raise CheckpointError(f"Checkpoint {checkpoint} fails its checksum: its contents were changed "
                              f"or damaged after it was written.")


@main.command(epilog=_examples("distdl plot history.csv -o curves.png      # a CSVLogger file",
                               "distdl plot runs/a -o curves.png          # a --checkpoint-dir (its newest checkpoint)",
                               "distdl plot runs/a/ckpt-e0010-s000000.h5 -o curves.svg"))
@click.argument("history", type=click.Path())
@click.option("-o", "--out", default="curves.png", show_default=True, type=click.Path(dir_okay=False),
              help="The picture to write (PNG, or SVG/PDF by extension).")
@friendly
def plot(history: str, out: str) -> None:
    """Draw loss and every metric per epoch (training solid, validation dashed) from HISTORY: a
    CSVLogger file, a checkpoint, or a checkpoint folder. Needs matplotlib: pip install 'distdl[plot]'."""
    from .plot import figure_pixels, plot_history, read_history
    epochs, series, source = read_history(history)
    names = plot_history(epochs, series, out, title=os.path.relpath(source))
    width, height = figure_pixels(len(names))
    click.echo(f"Wrote {out} ({width}x{height} px): {', '.join(names)} over {len(epochs)} epoch(s).")


@main.group(invoke_without_command=True, epilog=_examples(
    "distdl configs                                   # list them",
    "distdl configs show digits_cnn > my_cnn.toml     # a copy to edit, then: distdl train my_cnn.toml",
    "distdl configs show train.sbatch > train.sbatch  # the SLURM batch script template"))
@click.pass_context
def configs(ctx: click.Context) -> None:
    """The example configs and the SLURM template shipped with distdl. A config's bare name works
    wherever a CONFIG file does: `distdl train digits_mlp`, `distdlrun -np 2 digits_mlp`."""
    if ctx.invoked_subcommand is None:
        from .. import configs as shipped
        for name in shipped.names():
            first = shipped.text(name).splitlines()[0].lstrip("#! ").strip().rstrip(":")
            if name.endswith(".sbatch"):
                first = "the SLURM batch script template"
            click.echo(f"{name:<20} {first}")


@configs.command("show")
@click.argument("name")
@friendly
def configs_show(name: str) -> None:
    """Print the shipped file NAME (a config's name with or without .toml, or train.sbatch)."""
    from .. import configs as shipped
    click.echo(shipped.text(name), nl=False)


@main.command(epilog=_examples("distdl info", "distdlrun -np 4 -- distdl info   # the rank-to-host map of a job"))
@friendly
def info() -> None:
    """Show the MPI library, world size, rank-to-host map and BLAS threads per rank."""
    import numpy as np

    from ..comm import world
    comm = world()
    desc = comm.describe()
    if comm.rank == 0:
        click.echo(f"distdl {__version__}, numpy {np.__version__}")
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

