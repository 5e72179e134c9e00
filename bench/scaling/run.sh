#!/usr/bin/env bash
# How cost grows, measured and drawn in one command: builds the release engine and iii-bench,
# runs `iii-bench scaling` (1–4,096 channels, 1–1,000 workers, 1–256 calls in flight; about
# 2 minutes on 2 cores), keeps its figures in bench/scaling/figures.json, and draws
# bench/scaling/{channels,workers,in_flight}.png with matplotlib (installed from PyPI into a
# virtualenv under ~/.cache the first time). Extra arguments go to `iii-bench scaling`; a run
# with any (a smoke run, other sizes) writes to a new temporary folder instead of over the
# committed figures, or to III_SCALING_OUT when set.
#
#   bash bench/scaling/run.sh [--quick] [--bytes N] [--seconds S]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -n "${III_SCALING_OUT:-}" ]]; then
    OUT="$III_SCALING_OUT"
elif [[ $# -gt 0 ]]; then
    OUT="$(mktemp -d "${TMPDIR:-/tmp}/iii-scaling.XXXXXX")"
else
    OUT="$ROOT/bench/scaling"
fi
mkdir -p "$OUT"
VENV="${III_PLOT_VENV:-$HOME/.cache/iii-bench-plot}"
# 4,096 channels are 8,192 sockets in the engine: take the hard limit on open files.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -q -p iii-bench
"$ROOT/target/release/iii-bench" scaling --json "$OUT/figures.json" "$@"

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "matplotlib>=3.8,<4"
fi
"$VENV/bin/python" "$ROOT/bench/scaling/plot.py" "$OUT/figures.json" "$OUT"
echo "drawn: $OUT/channels.png $OUT/workers.png $OUT/in_flight.png"
