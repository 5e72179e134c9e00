"""Draws the scaling benchmark's figures (figures.json, written by `iii-bench scaling --json`)
as the PNG pictures BENCHMARKS.md shows: channels.png, workers.png and in_flight.png.

    python plot.py figures.json OUT_DIR
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)


def panel(axis, xs, ys, title, ylabel, xlabel):
    """Draws one curve on `axis`: a log-2 x axis labelled with the measured points, y from 0,
    each point annotated with its value."""
    axis.plot(xs, ys, marker="o")
    axis.set_title(title, fontsize=10)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_xscale("log", base=2)
    axis.set_xticks(xs)
    axis.set_xticklabels([str(x) for x in xs])
    axis.set_ylim(bottom=0)
    axis.grid(True, alpha=0.3)
    for x, y in zip(xs, ys):
        label = f"{y:,.0f}" if abs(y) >= 100 else f"{y:.3g}"
        axis.annotate(label, (x, y), textcoords="offset points", xytext=(0, 6),
                      ha="center", fontsize=8)


# Each picture: its file, title, layout, the JSON list it draws, the x field and label, and its
# panels as (y field, panel title, y label).
PICTURES = [
    ("channels.png", "Channels streaming at once", (2, 2), (10, 7),
     "channels", "channels", "concurrent channels", [
         ("mb_per_s", "aggregate throughput", "MB/s"),
         ("fairness", "fairness: slowest / fastest channel", "ratio (1 = even)"),
         ("engine_cpu_s_per_gib", "engine CPU per GiB relayed", "CPU s / GiB"),
         ("engine_rss_peak_mib", "engine peak RSS while streaming", "MiB"),
     ]),
    ("workers.png", "Connected workers", (1, 3), (13, 3.8),
     "workers", "workers", "connected workers", [
         ("calls_per_s", "calls/s, 16 in flight, spread over all", "calls/s"),
         ("engine_cpu_us_per_call", "engine CPU per call", "µs"),
         ("engine_rss_mib", "engine RSS with the workers connected", "MiB"),
     ]),
    ("in_flight.png", "Calls in flight", (1, 2), (9, 3.8),
     "in_flight", "in_flight", "calls in flight", [
         ("calls_per_s", "calls/s to one worker", "calls/s"),
         ("engine_cpu_us_per_call", "engine CPU per call", "µs"),
     ]),
]


def main(figures_path, out_dir):
    """Draws every picture of PICTURES from the figures at `figures_path` into `out_dir`."""
    figures = json.loads(Path(figures_path).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, title, (rows, cols), size, series, x_field, x_label, panels in PICTURES:
        points = figures[series]
        xs = [p[x_field] for p in points]
        fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
        for axis, (y_field, panel_title, y_label) in zip(axes.flat, panels):
            panel(axis, xs, [p[y_field] for p in points], panel_title, y_label, x_label)
        fig.suptitle(f"{title} (iii-bench scaling)")
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
