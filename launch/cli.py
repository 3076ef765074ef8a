"""`distdlrun`: run a distdl config or any command on N MPI ranks, supervised.

    distdlrun -np 4 digits_mlp --epochs 5                   # distdl train CONFIG [OPTIONS] on 4 ranks
    distdlrun -np 8 -H node1:4,node2:4 -- python train.py   # any command, multi-node
    distdlrun -np 4 --dry-run my.toml                       # print the mpirun argv and exit

`python` (and a bare name found beside it, such as `distdl`) runs as the interpreter distdlrun
itself runs under, so a virtualenv works without being activated. Every bad input is one
sentence on stderr and exit code 2, with nothing started.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import click

from distdl import __version__
from distdl import configs as shipped
from distdl.errors import ConfigError, DistdlError, did_you_mean

from . import hosts as hostmod
from . import preflight
from .mpirun import (BLAS_VARS, MpirunOptions, blas_threads, build_argv, detect_impl, find_mpirun,
                     format_hostfile, local_command, needs_hostfile, python_command, rank_env)
from .supervise import Job, shrink_hosts

__all__ = ["Plan", "make_plan", "rank_command", "core_warning", "main"]

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Plan:
    """Everything resolved from the command line, before anything is started."""

    np: int
    hosts: list[hostmod.Host]
    from_file: bool
    config: str | None
    command: list[str]
    checkpoint_dir: str | None
    resume: str | None
    env: dict[str, str]
    debug: bool
    epochs: int | None = None
    replaced: str | None = None  # the command name taken from beside distdlrun's Python


def _check_writable_dir(path: str, option: str = "--checkpoint-dir") -> None:
    """Fail unless `path` is (or can be created as) a writable directory; creates nothing."""
    p = Path(path).absolute()
    probe = p
    while not probe.exists():
        probe = probe.parent
    if probe == p and not p.is_dir():
        raise ConfigError(f"{option} {path!r} exists but is not a directory.")
    if not probe.is_dir():
        raise ConfigError(f"{option} {path!r} cannot be created: {str(probe)!r} is not a directory.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path!r} is not writable (no write permission on {str(probe)!r}).")


def _is_config(arg: str) -> bool:
    """A TOML file, or the bare name of a shipped config that is not also a program on PATH."""
    if arg.endswith(".toml"):
        return True
    return not os.path.exists(arg) and shipped.resolve(arg) is not None and shutil.which(arg) is None


def _train_options(config: str, rest: list[str]) -> dict:
    """`distdl train`'s own parser on `CONFIG [OPTIONS]`: bad options get click's sentence."""
    from distdl.cli import train
    with train.make_context("distdlrun -np N CONFIG", [config, *rest]) as ctx:
        return ctx.params


def _merge(option: str, before: str | None, after: str | None) -> str | None:
    """An option given to distdlrun and again after the config: once is enough."""
    if before is not None and after is not None and before != after:
        raise ConfigError(f"{option} is given twice, as {before!r} and {after!r}; give it once.")
    return after if after is not None else before


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise ConfigError(f"-x {pair!r} is not KEY=VALUE with a valid variable name.")
        env[key] = value
    return env


def rank_command(plan: Plan, restart: bool) -> list[str]:
    """What each rank runs; a restart of a config resumes from its newest good checkpoint.

    Args:
        plan: the validated command line.
        restart: a relaunch after a failure (a config run then resumes from its newest checkpoint).
    """
    if plan.config is None:
        return python_command(plan.command)
    cmd = [sys.executable, "-m", "distdl.cli", "train", plan.config]
    if plan.epochs is not None:
        cmd += ["--epochs", str(plan.epochs)]
    if plan.checkpoint_dir:
        cmd += ["--checkpoint-dir", plan.checkpoint_dir]
        resume = "auto" if restart else plan.resume
        if resume:
            cmd += ["--resume", resume]
    if plan.debug:
        cmd.append("--debug")
    return cmd


def make_plan(np: int | None, host_spec: str | None, hostfile: str | None, args: tuple[str, ...],
              checkpoint_dir: str | None, resume: str | None, env_pairs: tuple[str, ...],
              debug: bool, environ: Mapping[str, str] = os.environ) -> Plan:
    """Validate the options (raising ConfigError with one sentence) into a Plan.

    Args:
        np: -np (None: SLURM's task count).
        host_spec: -H.
        hostfile: --hostfile.
        args: CONFIG [train options] or the command after --.
        checkpoint_dir: --checkpoint-dir before the config.
        resume: --resume before the config.
        env_pairs: the -x KEY=VALUE pairs.
        debug: --debug.
        environ: where SLURM's variables are read.
    """
    if host_spec and hostfile:
        raise ConfigError("Give hosts with -H or with --hostfile, not both.")
    from_file = bool(hostfile)
    if host_spec:
        hosts = hostmod.parse_host_spec(host_spec)
    elif hostfile:
        hosts = hostmod.read_hostfile(hostfile)
    else:
        hosts = hostmod.slurm_hosts(environ) or []
    if np is None:
        ntasks = environ.get("SLURM_NTASKS", "")
        if not (hosts and ntasks.isdigit()):
            raise ConfigError("-np is required: how many ranks to start (e.g. -np 4).")
        np = int(ntasks)
    if np < 1:
        raise ConfigError(f"-np must be at least 1, got {np}.")
    if not args:
        raise ConfigError("Nothing to run: give a CONFIG.toml or a command after -- (e.g. -- python train.py).")
    config, epochs, replaced = None, None, None
    command = list(args)
    if _is_config(args[0]):
        config, command = args[0], []
        if shipped.resolve(config) is None:
            raise ConfigError(f"Config file {config!r} does not exist.")
        given = _train_options(config, list(args[1:]))
        epochs = given["epochs"]
        checkpoint_dir = _merge("--checkpoint-dir", checkpoint_dir, given["checkpoint_dir"])
        resume = _merge("--resume", resume, given["resume"])
        debug = debug or given["debug"]
    else:
        command, replaced = local_command(command)
        if replaced is None and shutil.which(command[0]) is None:
            hint = did_you_mean(command[0], [n for n in shipped.names() if not n.endswith(".sbatch")])
            raise ConfigError(f"Command {args[0]!r} was not found or is not executable."
                              + (f" It is not a shipped config either.{hint}" if hint else ""))
    if checkpoint_dir is not None:
        if config is None:
            raise ConfigError("--checkpoint-dir applies to a CONFIG run; a Python script resumes "
                              "through its BackupAndRestore callback.")
        _check_writable_dir(checkpoint_dir)
    if resume is not None and (config is None or checkpoint_dir is None):
        raise ConfigError("--resume needs a CONFIG and --checkpoint-dir.")
    return Plan(np, hosts, from_file, config, command, checkpoint_dir, resume, _parse_env(env_pairs), debug,
                epochs, replaced)


def core_warning(np: int, hosts: list[hostmod.Host], cores: int,
                 environ: Mapping[str, str] = os.environ) -> str | None:
    """The warning for more ranks than cores on this host (or than slots on the hosts given), with
    the BLAS thread split chosen; None when every rank has a core of its own.

    Args:
        np: the number of ranks.
        hosts: the hosts given (-H, --hostfile or SLURM); none: every rank runs here.
        cores: the cores this host offers (`hosts.local_cores()`).
        environ: where a user's own BLAS thread counts would be set.
    """
    here = preflight.local_ranks(hosts, np)
    slots = sum(h.slots for h in hosts)
    if here > cores:
        what = f"{here} ranks on this host's {cores} core{'s' if cores != 1 else ''}"
    elif hosts and np > slots:
        what = f"{np} ranks for the {slots} slots of the hosts given"
    else:
        return None
    set_by_user = [f"{v}={environ[v]}" for v in BLAS_VARS if v in environ]
    on_host = max(hostmod.ranks_per_host(hosts, np)) if hosts else np
    split = (f"BLAS threads as you set them ({', '.join(set_by_user)})" if set_by_user
             else f"{blas_threads(cores, on_host)} BLAS thread per rank")
    return (f"warning: {what}: oversubscribed, so ranks take turns on the cores and every step waits "
            f"for the slowest; expect many times slower steps than with one rank per core ({split}).")


def _options(plan: Plan, np: int, hosts: list[hostmod.Host], impl: str, hostfile_path: str | None,
             stall_timeout: float | None, restart: bool) -> MpirunOptions:
    cores = hostmod.local_cores()
    on_host = max(hostmod.ranks_per_host(hosts, np)) if hosts else np
    slots = sum(h.slots for h in hosts) if hosts else cores
    extra = dict(plan.env)
    if "DISTDL_TTY" not in os.environ and _isatty(sys.stdout):
        extra.setdefault("DISTDL_TTY", "1")  # the ranks' progress bars redraw in place, as on a terminal
    env = rank_env(os.environ, threads=blas_threads(cores, on_host), stall_timeout=stall_timeout,
                   extra=extra)
    return MpirunOptions(np=np, command=tuple(rank_command(plan, restart)), hosts=tuple(hosts),
                         hostfile=hostfile_path if needs_hostfile(impl, hosts, plan.from_file) else None,
                         env=env, oversubscribe=np > slots)


_EXAMPLES = """\b
Examples:
  distdlrun -np 4 digits_mlp --epochs 5             # a shipped config (see `distdl configs`) on 4 ranks
  distdlrun -np 2 --log-dir logs my.toml --checkpoint-dir runs/a --resume auto   # train options after CONFIG
  distdlrun -np 4 -- python train.py                # your own script; `python` is distdlrun's own
  distdlrun -np 8 -H node1:4,node2:4 --dry-run -- python train.py   # print the mpirun command"""


@click.command(context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]},
               epilog=_EXAMPLES)
@click.version_option(__version__, "-V", "--version", prog_name="distdlrun", message="%(prog)s %(version)s")
@click.option("-np", "-n", "np", type=int, help="Number of ranks (inside SLURM: the allocation's tasks).")
@click.option("-H", "--hosts", "host_spec", help="Hosts as host:slots,host:slots.")
@click.option("--hostfile", help="File with one 'host', 'host:N' or 'host slots=N' per line.")
@click.option("--mpirun", "mpirun_path", help="The mpirun/mpiexec to use (default: next to python, then PATH).")
@click.option("--restarts", type=click.IntRange(min=0), default=0, show_default=True,
              help="Relaunch a failed job up to this many times.")
@click.option("--min-np", type=click.IntRange(min=1), help="On restart, continue with fewer ranks (not below this) when a host is lost.")
@click.option("--checkpoint-dir", help="Checkpoint folder for a CONFIG run; restarts resume from it.")
@click.option("--resume", help="'auto' or a checkpoint path, passed to distdl train.")
@click.option("--stall-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Abort the job when one collective waits longer than this (seconds; 300 is sensible).")
@click.option("--grace", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds ranks get to checkpoint and exit after SIGTERM/SIGINT.")
@click.option("-x", "--env", "env_pairs", multiple=True, help="KEY=VALUE to set on every rank (repeatable).")
@click.option("--log-dir", type=click.Path(file_okay=False),
              help="Also write each rank's output to DIR/rank.N.log (without the [N] prefix).")
@click.option("--dry-run", is_flag=True, help="Print the mpirun command and exit.")
@click.option("--debug", is_flag=True, help="Show tracebacks; passed on to distdl train.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def cli(np: int | None, host_spec: str | None, hostfile: str | None, mpirun_path: str | None, restarts: int,
        min_np: int | None, checkpoint_dir: str | None, resume: str | None, stall_timeout: float | None,
        grace: float, env_pairs: tuple[str, ...], log_dir: str | None, dry_run: bool, debug: bool,
        args: tuple[str, ...]) -> int:
    """Run CONFIG [distdl train options] (a TOML file or a shipped config's name) or
    `-- COMMAND...` on NP MPI ranks, supervised."""
    plan = make_plan(np, host_spec, hostfile, args, checkpoint_dir, resume, env_pairs, debug)
    if min_np is not None and min_np > plan.np:
        raise ConfigError(f"--min-np {min_np} is larger than -np {plan.np}.")
    if log_dir is not None:
        _check_writable_dir(log_dir, "--log-dir")
    mpirun = find_mpirun(mpirun_path)
    impl = detect_impl(mpirun)
    hosts, np_now = plan.hosts, plan.np
    warning = core_warning(np_now, hosts, hostmod.local_cores())
    if warning:
        _say(warning)
    if dry_run:
        if plan.replaced:
            where = ("the Python distdlrun runs under" if plan.command[0] == sys.executable
                     else "found beside the Python distdlrun runs under")
            _say(f"note: {plan.replaced!r} runs as {plan.command[0]}, {where}.")
        path = None
        if needs_hostfile(impl, hosts, plan.from_file):
            fd, path = tempfile.mkstemp(prefix="distdlrun-", suffix=".hosts")
            with os.fdopen(fd, "w") as fh:
                fh.write(format_hostfile(hosts, impl))
        argv = build_argv(impl, mpirun, _options(plan, np_now, hosts, impl, path, stall_timeout, False))
        click.echo(shlex.join(argv))
        return 0
    preflight.check_shm(hosts, np_now)
    if plan.checkpoint_dir and (problem := preflight.checkpoint_folder_problem(plan.checkpoint_dir)):
        raise ConfigError(f"Not starting: {problem}.")
    with tempfile.TemporaryDirectory(prefix="distdlrun-") as tmp:
        for attempt in range(restarts + 1):
            path = os.path.join(tmp, f"hosts{attempt}")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(format_hostfile(hosts, impl))
            opts = _options(plan, np_now, hosts, impl, path, stall_timeout, restart=attempt > 0)
            env = {**os.environ, **opts.env}
            result = Job(build_argv(impl, mpirun, opts), env, np_now, grace=grace, log_dir=log_dir,
                         attempt=attempt).run()
            if result.code == 0 or result.stopped_by is not None:
                return result.code
            if attempt == restarts:
                break
            nxt = shrink_hosts(hosts, result.lost_hosts, np_now, min_np)
            if nxt is None:
                _say(f"host(s) {', '.join(sorted(result.lost_hosts))} lost and --min-np does not allow "
                     f"fewer ranks; not restarting.")
                break
            hosts, np_now = nxt
            problem = preflight.checkpoint_folder_problem(plan.checkpoint_dir) if plan.checkpoint_dir else None
            if problem:
                _say(f"not restarting: {problem}.")
                break
            resumes = (f", resuming from {plan.checkpoint_dir}" if plan.config and plan.checkpoint_dir
                       else "")
            _say(f"restart {attempt + 1} of {restarts}: relaunching on {np_now} ranks{resumes}.")
        _say(f"job failed; exit code {result.code}.")
        return result.code


def _say(text: str) -> None:
    click.echo(f"distdlrun: {text}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: returns the exit code (2 and one sentence for bad input).

    Args:
        argv: the arguments (default: sys.argv[1:]).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[: argv.index("--") if "--" in argv else len(argv)]
    try:
        code = cli.main(args=argv, prog_name="distdlrun", standalone_mode=False)
    except click.ClickException as exc:
        _say(f"error: {exc.format_message()}")
        return 2
    except click.Abort:
        return 130
    except DistdlError as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
