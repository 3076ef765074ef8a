"""The benchmark scripts run on tiny sizes and write valid JSON with the expected keys (no timing asserts)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
MPIRUN = Path(sys.executable).parent / "mpirun"


def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("script", ["throughput.py", "scaling.py", "allreduce.py", "plot.py", "scaling_model.py",
                                    "hotspots.py", "conv.py", "ab.py", "custom_layer.py"])
def test_help(script):
    proc = run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--out" in proc.stdout or "--out-dir" in proc.stdout


@pytest.mark.slow
def test_throughput_quick(tmp_path):
    out = tmp_path / "t.json"
    proc = run("throughput.py", "--quick", "--models", "mlp,tiny", "--threads", "1", "--no-torch",
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    assert data["benchmark"] == "throughput" and data["machine"]["cores"] >= 1
    (t,) = data["by_threads"]
    assert t["threads"] == 1 and t["gemm_gflops"] > 0
    assert [r["model"] for r in t["rows"]] == ["mlp", "tiny"]
    for r in t["rows"]:
        assert set(r["runners"]) == {"distdl", "gemm"}
        assert len(r["runners"]["distdl"]["times_s"]) == r["repeats"] == 2
        assert r["distdl_over_gemm"] > 0 and r["flop_bound_us_per_step"] > 0
    mlp = t["rows"][0]
    # 3 GEMMs per Dense of 784-512-512-10 at batch 128: 2*128*(784*512+512*512+512*10) each
    assert mlp["gemm_flops_per_step"] == 3 * 2 * 128 * (784 * 512 + 512 * 512 + 512 * 10)
    assert mlp["min_flops_per_step"] == mlp["gemm_flops_per_step"] - 2 * 128 * 784 * 512
    assert data["memory"]["distdl"]["peak_rss_mib"] > data["memory"]["distdl"]["data_mib"]
    assert "samples/s" in proc.stdout and "x gemm" in proc.stdout


@pytest.mark.mpi
@pytest.mark.skipif(not MPIRUN.exists(), reason="mpirun (mpich wheel) not installed")
def test_allreduce_quick(tmp_path):
    out = tmp_path / "a.json"
    proc = run("allreduce.py", "--quick", "-n", "2", "--max-bytes", "4096", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    assert data["ranks"] == 2 and data["point_to_point"]["bandwidth_Bps"] > 0
    assert [r["bytes"] for r in data["rows"]] == [8, 32, 128, 512, 2048]
    for r in data["rows"]:
        assert r["raw_us"] > 0 and r["distdl_us"] > 0 and r["ring_bound_us"] > 0
        assert r["overhead_pct"] == pytest.approx((r["distdl_us"] - r["raw_us"]) / r["raw_us"] * 100)


@pytest.mark.mpi
@pytest.mark.skipif(not MPIRUN.exists(), reason="mpirun (mpich wheel) not installed")
def test_scaling_quick_and_plot(tmp_path):
    out = tmp_path / "s.json"
    proc = run("scaling.py", "--quick", "-n", "2", "--no-torch", "--no-overlap", "--out", str(out), timeout=180)
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    res = data["results"]
    assert set(res) == {"strong_1", "strong_2", "weak_1", "weak_2", "hybrid_1x2"}
    assert res["strong_2"]["ranks"] == 2 and res["strong_2"]["batch"] == 256 and res["weak_2"]["batch"] == 256
    for r in res.values():
        assert r["samples_per_s"] > 0
        assert r["compute_share"] + r["grad_allreduce_share"] + r["other_share"] == pytest.approx(1.0)
        assert 0 < r["backward_share"] < r["compute_share"]
    assert res["strong_1"]["grad_allreduce_share"] == 0.0  # one rank never allreduces
    assert res["strong_2"]["grad_allreduce_share"] > 0.0
    assert data["derived"]["strong_eff_1"] == pytest.approx(1.0)
    assert 0 < data["derived"]["hideable_allreduce_fraction_2"] <= 1.0
    assert data["derived"]["strong_eff_2"] == pytest.approx(
        res["strong_2"]["samples_per_s"] / (2 * res["strong_1"]["samples_per_s"]))

    charts = tmp_path / "charts"
    proc = run("plot.py", "--throughput", str(tmp_path / "missing.json"), "--scaling", str(out),
               "--out-dir", str(charts))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert proc.returncode == 2 and "matplotlib" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        png = (charts / "scaling_mlp.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_scaling_model_matches_hand_computation(tmp_path):
    """Synthetic measurements in, the documented formulas out (computed here by hand)."""
    t0, c, steps, nbytes = 1e-3, 10e-6, 10, 4e6
    ar = {"ranks": 2, "rows": [{"bytes": 8, "raw_us": 4.0}, {"bytes": 1 << 20, "raw_us": 250.0}]}
    sc = {"model": "mlp", "steps": steps, "derived": {"strong_eff_2": 0.8},
          "results": {"strong_1": {"epoch_s": steps * (t0 + 256 * c), "arena_bytes": nbytes},
                      "weak_1": {"epoch_s": steps * (t0 + 128 * c)}}}
    (tmp_path / "ar.json").write_text(json.dumps(ar))
    (tmp_path / "sc.json").write_text(json.dumps(sc))
    out = tmp_path / "m.json"
    proc = run("scaling_model.py", "--allreduce", str(tmp_path / "ar.json"), "--scaling", str(tmp_path / "sc.json"),
               "--ranks", "1,2,8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    lat = 4e-6 / 2                             # 8-byte allreduce time / (2 log2 2)
    bw = (1 << 20) / 250e-6 * 2 * (2 - 1) / 2  # bus bandwidth of the 1 MiB row
    assert data["latency_us"] == pytest.approx(lat * 1e6) and data["bandwidth_GBps"] == pytest.approx(bw / 1e9)
    m = data["models"]["mlp"]
    assert m["t0_us"] == pytest.approx(1000.0) and m["c_us_per_row"] == pytest.approx(10.0)
    r1, r2, r8 = m["rows"]
    assert r1["allreduce_us"] == 0 and r1["strong_eff_b256"] == pytest.approx(1.0)
    a8 = 2 * 3 * lat + 2 * 7 / 8 * nbytes / bw
    assert r8["allreduce_us"] == pytest.approx(a8 * 1e6)
    assert r8["strong_eff_b256"] == pytest.approx((t0 + 256 * c) / (8 * (t0 + 32 * c + a8)))
    assert r8["weak_eff_b128"] == pytest.approx((t0 + 128 * c) / (t0 + 128 * c + a8))
    assert r2["measured_strong_eff"] == 0.8 and r8["measured_strong_eff"] is None


def test_hotspots_quick(tmp_path):
    out = tmp_path / "h.json"
    proc = run("hotspots.py", "--quick", "--models", "tiny", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    tiny = load(out)["models"]["tiny"]
    us = tiny["us_per_step"]
    # two Dense layers (100-64-10): each timed forward and backward, plus loss, optimizer and the rest
    assert sum(1 for k in us if k.endswith(".forward")) == 2 and sum(1 for k in us if k.endswith(".backward")) == 2
    assert {"loss", "optimizer", "other", "step"} <= set(us)
    assert sum(v for k, v in us.items() if k != "step") == pytest.approx(us["step"])


def test_conv_quick(tmp_path):
    out = tmp_path / "c.json"
    proc = run("conv.py", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (row,) = load(out)["rows"]
    assert row["shape"] == {"batch": 4, "height": 8, "width": 8, "channels": 8, "filters": 8}
    assert row["winograd_used_by_default"] is False  # 8 input channels: im2col by default
    assert set(row["us"]) == {"winograd", "im2col"} and all(v > 0 for v in row["us"].values())
    assert row["im2col_over_winograd"] == pytest.approx(row["us"]["im2col"] / row["us"]["winograd"])
    assert "im2col us" in proc.stdout


def test_custom_layer_quick(tmp_path):
    out = tmp_path / "cl.json"
    proc = run("custom_layer.py", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    us = data["us_per_step"]
    assert set(us) == {"built-in Dense", "custom (ops)"} and all(v > 0 for v in us.values())
    assert data["ratio_custom_over_builtin"] == pytest.approx(us["custom (ops)"] / us["built-in Dense"])
    assert data["ops"]["recorded_add_us"] > 0 and data["ops"]["backward_per_node_us"] > 0
    assert "custom / built-in" in proc.stdout


def test_ab_quick_runs_each_tree_on_its_own_code(tmp_path):
    out = tmp_path / "ab.json"
    proc = run("ab.py", "--quick", "--model", "tiny", "--base", "HEAD", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    assert data["order"] == ["work", "base"] and data["speedup"] > 0
    assert all(len(v) == 2 for v in data["times_s"].values())
    root = Path(__file__).resolve().parent.parent
    assert Path(data["distdl"]["work"]).resolve().is_relative_to(root)
    assert not Path(data["distdl"]["base"]).resolve().is_relative_to(root)  # the temporary worktree's copy
    assert "speedup" in proc.stdout
