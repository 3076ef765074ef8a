"""A CLI command (through distdl.cli.friendly) whose error happens on one rank only: the job must
end at once instead of leaving the other rank waiting in its next collective.

usage: python cli_error_on_one_rank.py {alone,agreed}
"""
import sys

import click

from distdl.cli import friendly
from distdl.comm import agree, world
from distdl.errors import DataError

how = sys.argv.pop(1)


@click.command()
@friendly
def command():
    comm = world()
    if how == "alone":
        if comm.rank == 1:
            raise DataError("only rank 1 fails here")
        comm.barrier()  # rank 0 waits here for ever unless the job is ended
    else:
        agree.on_every_rank(comm, lambda: (_ for _ in ()).throw(DataError("every rank fails alike")))


command()
