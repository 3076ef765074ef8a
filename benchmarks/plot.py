#!/usr/bin/env python
"""PNG charts from the benchmark JSON files: throughput ratios and scaling curves.

Needs matplotlib (the `bench` extra: `pip install -e '.[bench]'`); without it
the script says so and exits 2.

    .venv/bin/python benchmarks/plot.py                          # every JSON in benchmarks/results/
    .venv/bin/python benchmarks/plot.py --throughput t.json --scaling s.json --out-dir charts/
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--throughput", default=str(common.default_out("throughput")), help="throughput.py JSON")
    p.add_argument("--scaling", nargs="*", default=None,
                   help="scaling.py JSON files (default: results/scaling_*.json)")
    p.add_argument("--out-dir", default=str(common.RESULTS), help="where the PNG files go")
    return p.parse_args(argv)


def throughput_chart(plt, data: dict, path: Path) -> Path:
    """Bars of distdl/torch and distdl/gemm per model and thread count, with a line at 1; a ratio that
    was not measured (no channels_last run, no GEMM-only loop for that model) is marked as such,
    not drawn as a zero-height bar."""
    names = {"torch": "distdl / PyTorch", "torch_cl": "distdl / PyTorch channels_last",
             "gemm": "distdl / GEMM-only loop"}
    labels, series = [], {k: [] for k in names}
    for t in data["by_threads"]:
        for r in t["rows"]:
            labels.append(f"{r['model']} b{r['batch']}\n{t['threads']} thr")
            for k in series:
                series[k].append(r.get(f"distdl_over_{k}"))
    fig, ax = plt.subplots(figsize=(max(6, len(labels) * 1.2), 4))
    width = 0.27
    for i, (k, vals) in enumerate(series.items()):
        xs = [j + (i - 1) * width for j in range(len(labels))]
        ax.bar([x for x, v in zip(xs, vals) if v is not None], [v for v in vals if v is not None], width,
               label=names[k])
        for x, v in zip(xs, vals):
            if v is None:
                ax.text(x, 0.03, "not measured", rotation=90, ha="center", va="bottom", fontsize=7, color="0.45")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("throughput ratio (higher: distdl faster)")
    ax.set_title(f"distdl fit vs PyTorch eager and GEMM-only ({data['machine']['cpu']})")
    ax.legend()
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    """Lay out the figure, write it to `path` (110 dpi) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scaling_chart(plt, data: dict, path: Path) -> Path:
    """Samples/s vs ranks for strong, weak and DDP, with ideal lines from 1 rank; the x axis has a tick
    at each rank count measured (ranks are whole), and a series not measured says so in the legend."""
    from matplotlib.ticker import MaxNLocator
    res = data["results"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ranks = set()
    for prefix, label in (("strong", "distdl strong (global 256)"), ("weak", "distdl weak (128/rank)"),
                          ("ddp", "PyTorch DDP gloo (global 256)")):
        pts = sorted((v["ranks"], v["samples_per_s"]) for k, v in res.items() if k.startswith(prefix + "_"))
        if not pts:
            ax.plot([], [], " ", label=f"{label}: not measured")
            continue
        ks, ys = zip(*pts)
        ranks.update(ks)
        line, = ax.plot(ks, ys, "o-", label=label)
        ax.plot(ks, [ys[0] * k / ks[0] for k in ks], ":", color=line.get_color())
    if len(ranks) <= 12:
        ax.set_xticks(sorted(ranks))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("MPI ranks (1 BLAS thread each)")
    ax.set_ylabel("samples/s")
    ax.set_title(f"{data['model']} scaling (dotted: ideal)")
    ax.legend()
    return _save(plt, fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: pip install -e '.[bench]' (or pip install matplotlib) to draw charts.",
              file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    tp = Path(args.throughput)
    if tp.exists():
        written.append(throughput_chart(plt, json.loads(tp.read_text()), out / "throughput.png"))
    scaling = args.scaling if args.scaling is not None else sorted(str(p) for p in common.RESULTS.glob("scaling_*.json"))
    for s in scaling:
        data = json.loads(Path(s).read_text())
        if data.get("benchmark") != "scaling":  # e.g. scaling_model.json
            continue
        written.append(scaling_chart(plt, data, out / f"scaling_{data['model']}.png"))
    if not written:
        print(f"no benchmark JSON found (looked for {tp} and scaling files): run throughput.py / scaling.py first",
              file=sys.stderr)
        return 1
    for w in written:
        print(f"wrote {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
