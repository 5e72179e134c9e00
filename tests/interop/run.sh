#!/usr/bin/env bash
# Runs the interop suite: installs the published iii clients (setup.sh), then pytest with the
# cache venv. Honours III_ENGINE_BIN (default <repo>/target/debug/iii, built here when unset
# and missing) and III_INTEROP_CACHE. Extra arguments go to pytest. Exits with pytest's status.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${III_INTEROP_CACHE:-$HOME/.cache/iii-interop}"
export III_INTEROP_CACHE="$CACHE"

bash "$HERE/setup.sh"

if [[ -z "${III_ENGINE_BIN:-}" ]]; then
    export III_ENGINE_BIN="$REPO/target/debug/iii"
    if [[ ! -x "$III_ENGINE_BIN" ]]; then
        echo "run.sh: building the engine (cargo build -p iii-engine)" >&2
        (cd "$REPO" && cargo build -p iii-engine --bin iii)
    fi
fi

# The Rust interop worker is an example of core/sdk; build it when it is wired there.
if [[ -z "${III_INTEROP_RUST_WORKER:-}" ]] && grep -q 'name = "interop_worker"' "$REPO/core/sdk/Cargo.toml" 2>/dev/null; then
    (cd "$REPO" && cargo build -p iii-sdk --example interop_worker) >&2
fi

cd "$REPO"
set +e
"$CACHE/py/bin/python" -m pytest "$HERE" "$@"
status=$?
set -e
exit $status
