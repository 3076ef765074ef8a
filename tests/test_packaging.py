"""What a `pip install` gets: the sdist (with tests that run) and the wheel built from it, installed
into a fresh virtualenv and used from outside the repository, as a newcomer would.

Everything is built offline: the sdist and the wheel with this environment's setuptools
(`--no-build-isolation`, `--no-index`), and the fresh venv borrows this environment's numpy, h5py,
mpi4py, click and pytest through a path file, so nothing is downloaded.
"""
import email
import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import distdl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "results", "runs")


def run(*argv, cwd, env=None, timeout=120):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    assert p.returncode == 0, f"{argv}:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist built from a clean copy of the tree, and the wheel built from that sdist."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    dist = tmp / "dist"
    code = f"from setuptools import build_meta as b; print(b.build_sdist({str(dist)!r}))"
    sdist = dist / run(sys.executable, "-c", code, cwd=src).stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
    unpacked = tmp / sdist.name.removesuffix(".tar.gz")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", dist,
        unpacked, cwd=tmp, timeout=180)
    wheel = next(dist.glob("distdl-*.whl"))
    return tmp, sdist, unpacked, wheel


@pytest.fixture(scope="module")
def venv(built):
    """A fresh venv with only the wheel installed (dependencies borrowed from this environment)."""
    tmp, _, _, wheel = built
    home = tmp / "venv"
    run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", home, cwd=tmp)
    python = home / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).stdout.strip()
    Path(purelib, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp)
    return home, Path(purelib)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def test_wheel_has_configs_license_types_and_one_version(built):
    _, _, _, wheel = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(meta_name))
    for name in ("digits_mlp.toml", "digits_cnn.toml", "digits_lstm.toml", "breast_cancer_mlp.toml", "train.sbatch"):
        assert f"distdl/configs/{name}" in names
    assert "distdl/py.typed" in names and "distdl/cli/plot.py" in names and "distdl_launch/cli.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "configs/")) for n in names)
    assert meta["Version"] == distdl.__version__
    assert meta["License-Expression"] == "MIT AND CC-BY-4.0"
    assert "Typing :: Typed" in meta.get_all("Classifier") and len(meta.get_all("Classifier")) >= 8
    assert "plot" in meta.get_all("Provides-Extra")
    assert 'matplotlib>=3.5; extra == "plot"' in meta.get_all("Requires-Dist")


def test_sdist_carries_every_test_file(built):
    _, sdist, unpacked, _ = built
    wanted = {p.relative_to(ROOT) for p in (ROOT / "tests").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts}
    present = {p.relative_to(unpacked) for p in (unpacked / "tests").rglob("*") if p.is_file()}
    assert wanted <= present, sorted(map(str, wanted - present))
    for name in ("LICENSE", "Makefile", "README.md", "pyproject.toml", "distdl/configs/digits_mlp.toml"):
        assert (unpacked / name).is_file(), name


def test_installed_wheel_trains_a_shipped_config_from_outside_the_repo(venv, tmp_path):
    home, purelib = venv
    env = clean_env()
    where = run(home / "bin" / "python", "-c", "import distdl; print(distdl.__file__)", cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(purelib)  # the wheel's copy, not the repository's
    assert run(home / "bin" / "distdl", "--version", cwd=tmp_path, env=env).stdout == f"distdl {distdl.__version__}\n"
    assert run(home / "bin" / "distdlrun", "--version", cwd=tmp_path, env=env).stdout == \
        f"distdlrun {distdl.__version__}\n"
    listed = run(home / "bin" / "distdl", "configs", cwd=tmp_path, env=env).stdout
    assert "digits_mlp" in listed and "train.sbatch" in listed
    p = run(home / "bin" / "distdl", "train", "digits_mlp", "--epochs", "1", cwd=tmp_path, env=env)
    assert p.stdout.startswith("41/41 - ") and "Test loss: " in p.stdout.splitlines()[-1]
    sbatch = run(home / "bin" / "distdl", "configs", "show", "train.sbatch", cwd=tmp_path, env=env).stdout
    assert "distdlrun" in sbatch and not list(tmp_path.iterdir())  # nothing written where it ran


def test_the_sdists_own_tests_run(built, venv):
    _, _, unpacked, _ = built
    home, _ = venv
    p = run(home / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not mpi and not slow",
            "tests/test_progress.py", "tests/test_layers_core.py", "tests/test_cli_tools.py::test_configs_lists_and_shows_the_shipped_files",
            cwd=unpacked, env=clean_env(), timeout=300)
    assert " passed" in p.stdout and "failed" not in p.stdout and "error" not in p.stdout.lower()
