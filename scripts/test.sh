#!/usr/bin/env bash
# Runs every test of the project, as CI does: formatting and lints, the Rust unit and
# integration tests (engine in-process, real sockets), the runnable examples, and the interop
# suite in which the published iii clients (installed into ~/.cache/iii-interop) run the
# documented channel flows against our engine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tools the tests use"
# curl fetches from the HTTP trigger server the way a person would.
if ! command -v curl >/dev/null; then
    SUDO=$([[ $(id -u) -eq 0 ]] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq curl
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build (engine binary, examples)"
cargo build -p iii-engine --bin iii
cargo build -p iii-sdk --examples

step "cargo test"
timeout 1500 cargo test --workspace

step "interop with the published clients"
III_ENGINE_BIN="$PWD/target/debug/iii" timeout 1200 bash tests/interop/run.sh
