"""Run a rank's Python code so that a failing rank ends at once:
`python pyrun.py SCRIPT [ARGS] | -m MODULE [ARGS]`.

Plain Python prints an uncaught exception and then runs MPI_Finalize at exit,
which waits for the other ranks, who wait in a collective for this one: the job
hangs. Here the traceback is printed once (without this runner's frames), output
is flushed, and the process exits at once with os._exit, skipping finalization;
`sys.exit(N)` with N != 0 ends the same way. Exit 0 finalizes normally.
Standard library only: it is run by path on every host.
"""
from __future__ import annotations

import os
import runpy
import sys
import traceback

__all__ = ["main"]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
    return 1


def _user_traceback(exc: BaseException):
    """The traceback from the user's first frame on, hiding runpy and this file."""
    tb = exc.__traceback__
    while tb is not None and (tb.tb_frame.f_code.co_filename in (__file__, runpy.__file__)
                              or "runpy" in tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def main(argv: list[str]) -> None:
    """Run the target as `__main__`; never return on failure.

    Args:
        argv: `SCRIPT [ARGS]` or `-m MODULE [ARGS]`.
    """
    if not argv:
        print("usage: pyrun.py SCRIPT|-m MODULE [ARGS...]", file=sys.stderr)
        os._exit(2)
    try:
        if argv[0] == "-m":
            sys.argv = argv[1:]
            sys.path[0] = os.getcwd()  # as `python -m`: the current folder, not this file's
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc)
        if code:
            _flush()
            os._exit(code)
    except KeyboardInterrupt:
        _flush()
        os._exit(130)
    except BaseException as exc:  # noqa: BLE001 - any uncaught error ends this rank
        traceback.print_exception(type(exc), exc, _user_traceback(exc))
        _flush()
        os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
