"""The CLI and checkpoints from elsewhere: `--resume auto` falls back past an edited file with the
reason, and `distdl resume` opens the data a checkpoint records only inside the checkpoint's folder."""
import os

import h5py
import numpy as np
import pytest
from test_cli_checkpoint import CONFIG, _assert_friendly, distdl

from distdl.cli.run import _recorded_run
from distdl.errors import CheckpointError, ConfigError

RUN = """
[data]
format = "npz"
path = "data.npz"
test_split = 0.25

[model]
layers = [{ type = "Dense", units = 3, activation = "softmax" }]

[compile]
optimizer = "adam"
loss = "sparse_categorical_crossentropy"

[training]
epochs = 1
batch_size = 8
seed = 1
verbose = 0
"""


def test_resume_auto_falls_back_past_an_edited_attribute_with_the_reason(tmp_path):
    work = tmp_path / "ck"
    p = distdl("train", CONFIG, "--checkpoint-dir", work, "--epochs", 2, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    with h5py.File(work / "ckpt-e0002-s000000.h5", "r+") as f:
        f["training"].attrs["epoch"] = -5  # the case: a traceback before
    p = distdl("train", CONFIG, "--checkpoint-dir", work, "--resume", "auto", "--epochs", 3, cwd=tmp_path)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "warning: skipping checkpoint" in p.stdout and "ckpt-e0002-s000000.h5' fails its checksum" in p.stdout
    assert "ckpt-e0001-s000000.h5 (epoch 2, step 0)" in p.stdout


@pytest.fixture
def project(tmp_path):
    """A config beside its .npz data, as a user keeps them."""
    proj = tmp_path / "proj"
    proj.mkdir()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 4)).astype("float32")
    np.savez(proj / "data.npz", x=x, y=(x[:, 0] > 0).astype("int64") + (x[:, 1] > 0))
    (proj / "run.toml").write_text(RUN)
    return proj


def test_resume_refuses_recorded_data_outside_the_checkpoint_folder(project, tmp_path):
    p = distdl("train", project / "run.toml", "--checkpoint-dir", project / "ck", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    ckpt = project / "ck" / "ckpt-e0001-s000000.h5"
    p = distdl("resume", ckpt, "--epochs", 2, cwd=tmp_path)
    _assert_friendly(p, str(ckpt), f"records its data as {project / 'data.npz'}, outside the checkpoint's "
                                   f"folder {project / 'ck'}; distdl does not open paths named inside a checkpoint")
    assert "distdl train CONFIG --resume" in p.stderr
    p = distdl("train", project / "run.toml", "--resume", ckpt, "--epochs", 2, cwd=tmp_path)  # the way out
    assert p.returncode == 0 and (project / "ck" / "ckpt-e0002-s000000.h5").exists(), p.stderr


def test_resume_reads_data_inside_the_checkpoint_folder(project, tmp_path):
    p = distdl("train", project / "run.toml", "--checkpoint-dir", project, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = distdl("resume", project / "ckpt-e0001-s000000.h5", "--epochs", 2, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (project / "ckpt-e0002-s000000.h5").exists()


def _run(**data):
    return {"data": data, "base_dir": "/elsewhere", "training": {"epochs": 2}, "checkpoint": {}}


@pytest.mark.parametrize("data,allowed", [
    ({"name": "digits"}, True),
    ({"format": "npz", "path": "d.npz"}, True),
    ({"format": "idx", "path": "sub/mnist"}, True),
    ({"format": "npz", "path": "../d.npz"}, False),
    ({"format": "npz", "path": "~/d.npz"}, False),
    ({"format": "npz", "path": "ABSOLUTE"}, False),  # even inside the folder
    ({"format": "npz", "path": "link/d.npz"}, False),  # a link inside leading out
])
def test_recorded_data_paths(tmp_path, data, allowed):
    folder = tmp_path / "ck"
    (folder / "sub").mkdir(parents=True)
    os.symlink(tmp_path, folder / "link")
    if data.get("path") == "ABSOLUTE":
        data = dict(data, path=str(folder / "d.npz"))
    run = dict(_run(**data), base_dir=str(folder))
    path = str(folder / "ckpt-e0001-s000000.h5")
    if allowed:
        assert _recorded_run(path, run)["data"] == data
    else:
        with pytest.raises(CheckpointError, match="outside the checkpoint's folder"):
            _recorded_run(path, run)


def test_a_recorded_run_config_is_checked_as_a_config_file_is(tmp_path):
    path = str(tmp_path / "c.h5")
    with pytest.raises(CheckpointError, match="was not written by `distdl train`"):
        _recorded_run(path, None)
    with pytest.raises(CheckpointError, match="records a run config without the data, base_dir"):
        _recorded_run(path, {"data": "digits", "base_dir": "/", "training": {}})
    with pytest.raises(ConfigError, match=rf"^{path}: \[training\]\.batch_size must be int, got '32'\.$"):
        _recorded_run(path, dict(_run(name="digits"), training={"batch_size": "32"}))
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key \[checkpoint\]\.path"):
        _recorded_run(path, dict(_run(name="digits"), checkpoint={"path": "/etc"}))
