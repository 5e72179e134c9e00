#!/usr/bin/env bash
# Builds what the Python benchmark needs, then runs it:
#   - a release build of our package `iii` (bindings-python) in its own venv
#     (default target/python-bench-venv; III_BENCH_VENV overrides),
#   - the published client iii-sdk==0.25.0 in the interop cache venv (tests/interop/setup.sh),
#   - the release engine binary target/release/iii.
# Arguments go to bench.py:  bench/python/run.sh [--rounds 3] [--bytes N] [--quick] ...
#
# The two clients share the import name `iii`, so each lives in its own venv; the driver
# (bench.py) needs only a plain python3 and runs each client's workers with its venv's python.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${III_BENCH_VENV:-$ROOT/target/python-bench-venv}"
PYTHON="${III_BENCH_PYTHON:-python3}"
cd "$ROOT"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "run.sh: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip --disable-pip-version-check -q install "maturin>=1.16,<2" >&2

# Every cargo call with the same PyO3 settings, so pyo3 is not rebuilt between them.
export PYO3_PYTHON="$VENV/bin/python" PYO3_BUILD_EXTENSION_MODULE=1
echo "run.sh: pip install ./bindings-python (release) into $VENV" >&2
"$VENV/bin/python" -m pip --disable-pip-version-check -q install --force-reinstall --no-deps ./bindings-python >&2
# What was built, for the benchmark's header (the source may move on after the build).
dirty="$(git status --porcelain -- bindings-python core | grep -v '^??' || true)"
echo "$(git rev-parse --short HEAD)${dirty:+ with uncommitted changes in bindings-python/ or core/}, built $(date -u +%FT%TZ)" \
    > "$VENV/iii-build.txt"

echo "run.sh: cargo build --release -p iii-engine --bin iii" >&2
cargo build --release -p iii-engine --bin iii >&2

bash tests/interop/setup.sh >&2

exec python3 "$ROOT/bench/python/bench.py" \
    --ours-python "$VENV/bin/python" \
    --engine "$ROOT/target/release/iii" "$@"
