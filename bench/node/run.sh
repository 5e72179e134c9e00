#!/usr/bin/env bash
# Builds what the Node benchmark needs, then runs it:
#   - the release engine binary $TARGET/release/iii (cargo build --release -p iii-engine),
#   - iii-bench (release) for the context figures (Rust SDK relay, one-hop ceiling),
#   - a release build of our addon: `III_NODE_PROFILE=release npm run build` in bindings-node
#     (release is also the default), which copies the library over
#     bindings-node/iii-node.<platform>.node,
#   - the published client iii-sdk@0.22.1 in the interop cache (tests/interop/setup.sh).
# TARGET is $CARGO_TARGET_DIR, else ./target. Arguments go to bench.mjs:
#   bench/node/run.sh [--rounds 3] [--bytes N] [--trips 2000] [--quick] [--only ours|published]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

echo "run.sh: cargo build --release -p iii-engine -p iii-bench" >&2
cargo build --release -p iii-engine -p iii-bench >&2

echo "run.sh: III_NODE_PROFILE=release npm run build (bindings-node)" >&2
(cd bindings-node && III_NODE_PROFILE=release npm run build >&2)
# What was built, for the benchmark's header (the source may move on after the build).
dirty="$(git status --porcelain -- bindings-node core | grep -v '^??' || true)"
build="built from $(git rev-parse --short HEAD)${dirty:+ with uncommitted changes in bindings-node/ or core/} at $(date -u +%FT%TZ), release"

bash tests/interop/setup.sh >&2

exec node "$ROOT/bench/node/bench.mjs" \
    --engine "$TARGET/release/iii" \
    --rust-bench "$TARGET/release/iii-bench" \
    --build "$build" "$@"
