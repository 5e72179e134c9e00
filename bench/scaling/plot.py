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


def panel(axis, xs, ys, title, ylabel, xlabel, log_x=True, ylim_zero=True):
    axis.plot(xs, ys, marker="o")
    axis.set_title(title, fontsize=10)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if log_x:
        axis.set_xscale("log", base=2 if max(xs) <= 4096 and min(xs) >= 1 else 10)
        axis.set_xticks(xs)
        axis.set_xticklabels([str(x) for x in xs])
    if ylim_zero:
        axis.set_ylim(bottom=0)
    axis.grid(True, alpha=0.3)
    for x, y in zip(xs, ys):
        label = f"{y:,.0f}" if abs(y) >= 100 else f"{y:.3g}"
        axis.annotate(label, (x, y), textcoords="offset points", xytext=(0, 6),
                      ha="center", fontsize=8)


def main(figures_path, out_dir):
    figures = json.loads(Path(figures_path).read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    channels = figures["channels"]
    xs = [p["channels"] for p in channels]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panel(axes[0][0], xs, [p["mb_per_s"] for p in channels],
          "aggregate throughput", "MB/s", "concurrent channels")
    panel(axes[0][1], xs, [p["fairness"] for p in channels],
          "fairness: slowest / fastest channel", "ratio (1 = even)", "concurrent channels")
    panel(axes[1][0], xs, [p["engine_cpu_s_per_gib"] for p in channels],
          "engine CPU per GiB relayed", "CPU s / GiB", "concurrent channels")
    panel(axes[1][1], xs, [p["engine_rss_peak_mib"] for p in channels],
          "engine peak RSS while streaming", "MiB", "concurrent channels")
    fig.suptitle("Channels streaming at once (iii-bench scaling)")
    fig.tight_layout()
    fig.savefig(out / "channels.png", dpi=90)
    plt.close(fig)

    workers = figures["workers"]
    xs = [p["workers"] for p in workers]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panel(axes[0], xs, [p["calls_per_s"] for p in workers],
          "calls/s, 16 in flight, spread over all", "calls/s", "connected workers")
    panel(axes[1], xs, [p["engine_cpu_us_per_call"] for p in workers],
          "engine CPU per call", "µs", "connected workers")
    panel(axes[2], xs, [p["engine_rss_mib"] for p in workers],
          "engine RSS with the workers connected", "MiB", "connected workers")
    fig.suptitle("Connected workers (iii-bench scaling)")
    fig.tight_layout()
    fig.savefig(out / "workers.png", dpi=90)
    plt.close(fig)

    in_flight = figures["in_flight"]
    xs = [p["in_flight"] for p in in_flight]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    panel(axes[0], xs, [p["calls_per_s"] for p in in_flight],
          "calls/s to one worker", "calls/s", "calls in flight")
    panel(axes[1], xs, [p["engine_cpu_us_per_call"] for p in in_flight],
          "engine CPU per call", "µs", "calls in flight")
    fig.suptitle("Calls in flight (iii-bench scaling)")
    fig.tight_layout()
    fig.savefig(out / "in_flight.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
