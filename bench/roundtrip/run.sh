#!/usr/bin/env bash
# The trigger() round trip, one program run on the published clients and on ours: a handler
# process serves `rt::noop`, a caller process times N calls one after another (Python: the
# blocking trigger() and the asyncio trigger_async(); Node: await trigger()), against our
# release engine, alternating the two packages, ROUNDS times. Prints p50/p99 per run and
# ours/published per round, and beside them what bounds every client on this machine: the
# same round trips between two Rust SDK processes on single-threaded runtimes, and a plain
# two-hop WebSocket echo (`iii-bench latency`).
#
#   bash scripts/package.sh && bash bench/roundtrip/run.sh [ROUNDS] [CALLS]
#
# Ours: dist/iii-*.whl and dist/iii-sdk-*.tgz (release builds, as users install them). The
# published: tests/interop/setup.sh's cache. The engine: target/release/iii (built here).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ROUNDS="${1:-2}"
CALLS="${2:-3000}"
CACHE="${III_INTEROP_CACHE:-$HOME/.cache/iii-interop}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/iii-roundtrip.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

wheel=(dist/iii-*.whl)
tarball=(dist/iii-sdk-*.tgz)
[[ -f "${wheel[0]}" && -f "${tarball[0]}" ]] || { echo "run scripts/package.sh first" >&2; exit 1; }
cargo build --release -q -p iii-engine --bin iii
cargo build --release -q -p iii-bench
ENGINE="$ROOT/target/release/iii"
bash tests/interop/setup.sh >&2

python3 -m venv "$WORK/ours-py"
"$WORK/ours-py/bin/pip" install -q --disable-pip-version-check "${wheel[0]}"
mkdir "$WORK/ours-node"
echo '{ "name": "roundtrip", "private": true, "type": "module" }' >"$WORK/ours-node/package.json"
(cd "$WORK/ours-node" && npm install --no-audit --no-fund --loglevel=error "$ROOT/${tarball[0]}" >&2)
cp bench/roundtrip/*.mjs "$WORK/ours-node/"
mkdir "$WORK/published-node"
ln -s "$CACHE/node/node_modules" "$WORK/published-node/node_modules"
cp bench/roundtrip/*.mjs "$WORK/published-node/"

# one_run RUNTIME DIR: engine, handler, caller; prints the caller's JSON line.
one_run() {
    local runtime="$1" dir="$2"
    "$ENGINE" --port 0 --no-http >"$WORK/engine.out" 2>/dev/null &
    local engine=$!
    for _ in $(seq 100); do grep -q "listening on" "$WORK/engine.out" && break; sleep 0.05; done
    export III_URL
    III_URL="$(sed -n 's/^iii engine listening on //p' "$WORK/engine.out")"
    rm -f "$WORK/stdin" "$WORK/handler.out"
    mkfifo "$WORK/stdin"
    if [[ "$runtime" == python* ]]; then
        (cd "$dir" && "$dir/bin/python" "$ROOT/bench/roundtrip/handler.py" <"$WORK/stdin" >"$WORK/handler.out" 2>/dev/null) &
    else
        (cd "$dir" && node handler.mjs <"$WORK/stdin" >"$WORK/handler.out" 2>/dev/null) &
    fi
    local handler=$!
    exec 3>"$WORK/stdin"
    for _ in $(seq 200); do grep -q ready "$WORK/handler.out" 2>/dev/null && break; sleep 0.05; done
    if [[ "$runtime" == python ]]; then
        (cd "$dir" && "$dir/bin/python" "$ROOT/bench/roundtrip/caller.py" "$CALLS" 2>/dev/null)
    elif [[ "$runtime" == python-async ]]; then
        (cd "$dir" && "$dir/bin/python" "$ROOT/bench/roundtrip/caller_async.py" "$CALLS" 2>/dev/null)
    else
        (cd "$dir" && node caller.mjs "$CALLS" 2>/dev/null)
    fi
    exec 3>&-
    wait "$handler" 2>/dev/null || true
    kill "$engine" && wait "$engine" 2>/dev/null || true
}

p50() { sed -n 's/.*"p50_us": *\([0-9]*\).*/\1/p'; }
echo "trigger() round trip, $CALLS sequential calls, handler and caller in two processes, release engine"
for round in $(seq "$ROUNDS"); do
    for runtime in python python-async node; do
        if [[ "$runtime" == python* ]]; then sides=("ours:$WORK/ours-py" "published:$CACHE/py"); else sides=("ours:$WORK/ours-node" "published:$WORK/published-node"); fi
        declare -A got=()
        for side in "${sides[@]}"; do
            name="${side%%:*}"
            line="$(one_run "$runtime" "${side#*:}" | grep "^{" | tail -1)"
            got[$name]="$line"
            printf 'round %s  %-12s  %-9s  %s\n' "$round" "$runtime" "$name" "$line"
        done
        ours=$(p50 <<<"${got[ours]}") published=$(p50 <<<"${got[published]}")
        awk -v o="$ours" -v p="$published" -v r="$round" -v rt="$runtime" \
            'BEGIN { if (p > 0) printf "round %s  %-12s  ours/published p50 = %.2f\n", r, rt, o / p }'
    done
    "$ROOT/target/release/iii-bench" latency --count "$CALLS" | sed "s/^/round $round  bounds        /"
done
