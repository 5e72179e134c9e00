#!/usr/bin/env bash
# Runs every test of the project, as CI does: formatting and lints, the Rust unit and
# integration tests (engine in-process, real sockets), the runnable examples, the Python and
# Node packages' tests (pytest, node --test), the C library's examples and tests (gcc,
# valgrind), the packages as users install them (a wheel and an npm tarball, on a PATH without
# cargo), the interop suite in which the published iii clients (installed into
# ~/.cache/iii-interop) run the documented channel flows against our engine, and the
# compatibility suite in which programs written for the published clients run on theirs and
# on ours with the same results.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; current="$*"; }

# Each runner's own summary line is kept, and all of them are printed at the end (with the
# step that failed, if one did).
LOGS="$(mktemp -d)"
# Engines the tests stop with SIGTERM while something is still in flight drain for at most this
# long (the default is 10 s); tests of the drain itself pass --shutdown-grace-secs.
export III_SHUTDOWN_GRACE_SECS="${III_SHUTDOWN_GRACE_SECS:-2}"
summary=()
current=""
started=$SECONDS
finish() {
    local status=$?
    printf '\n==> summary (%d s)\n' $((SECONDS - started))
    for line in "${summary[@]}"; do printf '  %s\n' "$line"; done
    if [[ $status -ne 0 ]]; then
        printf '  FAILED in: %s (exit %d)\n' "$current" "$status"
    else
        printf '  all green\n'
    fi
    rm -rf "$LOGS"
}
trap finish EXIT
# The last line of $2 matching the regular expression $3, recorded under the name $1.
keep() { summary+=("$(printf '%-8s %s' "$1" "$(grep -E "$3" "$2" | tail -1 | tr -d '=' | sed 's/^ *//')")"); }

step "tools the tests use"
# curl fetches from the HTTP trigger server the way a person would; openssl makes the test
# certificates (HTTPS-invoked functions); nats-server (Debian's) joins engines into a cluster
# in the cluster tests, which start it themselves.
missing=()
for tool in curl openssl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[[ -x /usr/sbin/nats-server ]] || command -v nats-server >/dev/null || missing+=(nats-server)
if [[ ${#missing[@]} -gt 0 ]]; then
    SUDO=$([[ $(id -u) -eq 0 ]] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The Python package's tests run in their own virtualenv (never the one of the published
# client, which shares the import name `iii`). Every cargo call sees the same PYO3_* settings,
# so pyo3 is built once, not once per caller.
PY_VENV="${III_PY_VENV:-$PWD/target/python-venv}"
if [[ ! -x "$PY_VENV/bin/python" ]]; then
    step "python virtualenv for the package tests ($PY_VENV)"
    python3 -m venv "$PY_VENV"
fi
"$PY_VENV/bin/pip" install -q --disable-pip-version-check "maturin>=1.16,<2" "pytest>=8" "pytest-asyncio>=0.23" "pytest-timeout>=2.3"
export PYO3_PYTHON="$PY_VENV/bin/python" PYO3_BUILD_EXTENSION_MODULE=1

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
summary+=("$(printf '%-8s %s' lint "cargo fmt and clippy -D warnings clean")")

step "cargo build (engine binary, examples)"
cargo build -p iii-engine --bin iii
cargo build -p iii-sdk --examples

step "C library: libiii (cargo build -p iii-c), the committed iii.h is what cbindgen generates"
cargo build -p iii-c
git diff --exit-code -- bindings-c/include/iii.h || { echo "bindings-c/include/iii.h is stale: commit the regenerated header" >&2; exit 1; }

step "cargo test"
timeout 1500 cargo test --workspace 2>&1 | tee "$LOGS/cargo.log"
summary+=("$(printf '%-8s %s' cargo "$(awk '/^test result:/ { passed += $4; failed += $6; runs++ }
    END { printf "%d passed, %d failed (%d test binaries and doc tests)", passed, failed, runs }' "$LOGS/cargo.log")")")

step "packages without Rust: scripts/package.sh (release wheel, npm tarball), installed and used with cargo off PATH"
PY="$PY_VENV/bin/python" bash scripts/package.sh
timeout 1200 bash tests/packaging/run.sh | tee "$LOGS/packaging.log"
keep package "$LOGS/packaging.log" '^packaging: '

step "the published iii clients (npm, PyPI) for the interop and cross-language tests"
bash tests/interop/setup.sh

step "python package: pip install ./bindings-python (debug build), pytest"
MATURIN_PEP517_ARGS="--profile dev" "$PY_VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings-python
# The metrics tests parse /metrics with Prometheus's own Python client.
"$PY_VENV/bin/pip" install -q --disable-pip-version-check prometheus_client
III_ENGINE_BIN="$PWD/target/debug/iii" timeout 900 "$PY_VENV/bin/python" -m pytest bindings-python/tests | tee "$LOGS/python.log"
keep python "$LOGS/python.log" '^=+ .*(passed|failed).* =+$'

step "node package: npm install (builds the release addon with cargo, as package.sh did), examples/node, node --test"
(cd bindings-node && npm install --no-audit --no-fund --loglevel=error)
(cd examples/node && npm install --no-audit --no-fund --loglevel=error)
(cd bindings-node && III_ENGINE="$PWD/../target/debug/iii" III_PYTHON="$PY_VENV/bin/python" timeout 900 npm test) | tee "$LOGS/node.log"
summary+=("$(printf '%-8s %s passed, %s failed' node "$(awk '/^# pass /{print $3}' "$LOGS/node.log")" "$(awk '/^# fail /{print $3}' "$LOGS/node.log")")")

step "channel streams (III_CHANNEL_STREAMS=1): the Python and Node channel tests again, every end a stream on its worker's connection"
(export III_CHANNEL_STREAMS=1
 III_ENGINE_BIN="$PWD/target/debug/iii" timeout 900 "$PY_VENV/bin/python" -m pytest bindings-python/tests/test_backpressure.py \
     bindings-python/tests/test_channel_errors.py bindings-python/tests/test_sync_async.py bindings-python/tests/test_examples.py
 cd bindings-node && III_ENGINE="$PWD/../target/debug/iii" III_PYTHON="$PY_VENV/bin/python" timeout 900 \
     node --test --test-timeout=60000 test/channels.test.js test/guide-pipeline.test.js test/examples.test.js) | tee "$LOGS/streams.log"
summary+=("$(printf '%-8s python %s; node %s passed, %s failed' streams "$(grep -E '^=+ .*(passed|failed).* =+$' "$LOGS/streams.log" | tail -1 | tr -d '=' | sed 's/^ *//;s/ *$//')" "$(awk '/^# pass /{print $3}' "$LOGS/streams.log")" "$(awk '/^# fail /{print $3}' "$LOGS/streams.log")")")

step "C examples and tests: gcc -Wall -Wextra -Werror, linked dynamically and statically, then under valgrind"
timeout 900 bash bindings-c/tests/run.sh | tee "$LOGS/c.log"
keep c "$LOGS/c.log" '^c tests: '

step "interop with the published clients"
III_ENGINE_BIN="$PWD/target/debug/iii" III_PY_VENV="$PY_VENV" timeout 1200 bash tests/interop/run.sh | tee "$LOGS/interop.log"
keep interop "$LOGS/interop.log" '^=+ .*(passed|failed).* =+$'

step "compatibility: programs written for the published clients, run on theirs and on ours (dist/ packages)"
III_ENGINE_BIN="$PWD/target/debug/iii" timeout 1200 bash tests/compat/run.sh | tee "$LOGS/compat.log"
keep compat "$LOGS/compat.log" '^compat: '
