#!/usr/bin/env bash
# How cost grows, measured and drawn in one command: builds the release engine and iii-bench,
# runs `iii-bench scaling` (1–4,096 channels, 1–1,000 workers, 1–256 calls in flight; about
# 2 minutes on 2 cores), keeps its figures in bench/scaling/figures.json, and draws
# bench/scaling/{channels,workers,in_flight}.png with matplotlib (installed from PyPI into a
# virtualenv under ~/.cache the first time). Extra arguments go to `iii-bench scaling`.
#
#   bash bench/scaling/run.sh [--quick] [--bytes N] [--seconds S]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/scaling"
VENV="${III_PLOT_VENV:-$HOME/.cache/iii-bench-plot}"

cargo build --release -q -p iii-bench
"$ROOT/target/release/iii-bench" scaling --json "$OUT/figures.json" "$@"

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "matplotlib>=3.8,<4"
fi
"$VENV/bin/python" "$OUT/plot.py" "$OUT/figures.json" "$OUT"
echo "drawn: $OUT/channels.png $OUT/workers.png $OUT/in_flight.png"
