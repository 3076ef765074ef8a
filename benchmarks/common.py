"""Shared helpers for the benchmark scripts: environments, timing, BLAS and machine facts, JSON, tables.

Every benchmark measures in child processes whose BLAS thread count is fixed by
environment variables set before NumPy is imported (threadpoolctl is not a
dependency), with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed so that OpenBLAS
picks its own kernel for the CPU.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SLOW_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def bench_env(threads: int | None = None, extra: dict | None = None) -> dict:
    """A copy of os.environ for a benchmark child: `threads` BLAS threads, no forced OpenBLAS kernel."""
    env = dict(os.environ)
    for k in SLOW_VARS:
        env.pop(k, None)
    if threads is not None:
        for k in THREAD_VARS:
            env[k] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_child(argv: Sequence[str], env: dict, timeout: float = 1800) -> dict:
    """Run a worker command that prints one JSON object on its last stdout line; return it."""
    proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {' '.join(argv[:4])} ... failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"benchmark child printed no JSON:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def time_call(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes (perf_counter)."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def alternate(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call each runner in turn, `repeats` rounds (a, b, c, a, b, c, ...) so drift hits all alike."""
    out: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            out[k].append(fn())
    return out


def openblas_info() -> dict:
    """The OpenBLAS kernel and config that NumPy's bundled library uses (empty if not found)."""
    import numpy
    libs = glob.glob(os.path.join(os.path.dirname(numpy.__path__[0]), "numpy.libs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        info = {"library": os.path.basename(path)}
        for suffix in ("64_", ""):
            for key in ("corename", "config"):
                fn = getattr(lib, f"scipy_openblas_get_{key}{suffix}", None) or getattr(lib, f"openblas_get_{key}{suffix}", None)
                if fn is not None and key not in info:
                    fn.restype = ctypes.c_char_p
                    info[key] = fn().decode()
        return info
    return {}


def blas_info() -> dict:
    """Which BLAS runs and with how many threads (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info
        return {"threadpoolctl": threadpool_info()}
    except ImportError:
        info = openblas_info()
        info["threads_env"] = {k: os.environ.get(k) for k in THREAD_VARS + SLOW_VARS}
        return info


def machine_info() -> dict:
    """CPU model and core count (lscpu), Python, NumPy and MPI library versions."""
    model = platform.processor() or "unknown"
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import numpy
    info = {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": numpy.__version__,
            # other processes on the machine skew every timing: keep the load beside the numbers
            "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        import torch  # noqa: F401
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def mpirun_path() -> str | None:
    """`mpirun` next to this Python (the mpich wheel's), else on PATH."""
    local = Path(sys.executable).parent / "mpirun"
    return str(local) if local.exists() else shutil.which("mpirun")


def default_out(name: str) -> Path:
    return RESULTS / f"{name}.json"


def timed_parser(doc: str, name: str, quick_help: str) -> argparse.ArgumentParser:
    """A parser whose --help is the script's docstring, with the options of a timing script:
    --repeats, --quick (`quick_help`; `parse_timed` also makes it 2 repeats), --out, --worker."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--out", default=str(default_out(name)), help="JSON output file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def parse_timed(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 2
    return args


def write_json(data: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else a / b


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def print_table(headers: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0
