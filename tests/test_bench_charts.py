"""benchmarks/plot.py's charts: whole rank counts on the scaling axis, and ratios that were not
measured marked as such instead of drawn as zero-height bars."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def charts(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_plot", ROOT / "benchmarks" / "plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = []

    def keep(plt_, fig, path):  # keep the figure to look at instead of writing and closing it
        figures.append(fig)
        return path

    monkeypatch.setattr(module, "_save", keep)
    yield module, plt, figures
    plt.close("all")


def test_scaling_axis_has_whole_rank_ticks_and_names_what_was_not_measured(charts, tmp_path):
    module, plt, figures = charts
    results = {f"strong_{n}": {"ranks": n, "samples_per_s": 1000.0 * n * 0.9} for n in (1, 2, 4)}
    results.update({f"weak_{n}": {"ranks": n, "samples_per_s": 900.0 * n} for n in (1, 2, 4)})
    module.scaling_chart(plt, {"model": "mlp", "results": results}, tmp_path / "s.png")
    ax = figures[0].axes[0]
    assert list(ax.get_xticks()) == [1, 2, 4]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["distdl strong (global 256)", "distdl weak (128/rank)",
                      "PyTorch DDP gloo (global 256): not measured"]


def test_throughput_bars_only_where_measured(charts, tmp_path):
    module, plt, figures = charts
    rows = [{"model": "mlp", "batch": 128, "distdl_over_torch": 1.2, "distdl_over_torch_cl": None,
             "distdl_over_gemm": 1.1},
            {"model": "cnn", "batch": 64, "distdl_over_torch": 1.3, "distdl_over_torch_cl": 1.1}]
    data = {"machine": {"cpu": "test"}, "by_threads": [{"threads": 1, "rows": rows}]}
    module.throughput_chart(plt, data, tmp_path / "t.png")
    ax = figures[0].axes[0]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [1.1, 1.1, 1.2, 1.3]  # four measured ratios, no zero bars
    assert [t.get_text() for t in ax.texts] == ["not measured", "not measured"]  # mlp channels_last, cnn GEMM
