#!/usr/bin/env bash
# Starts the engine, runs the seed channel examples against it (a producer streaming records
# to a consumer; a coordinator and a worker exchanging data with progress messages), prints
# their results, and stops the engine.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${III_PORT:-49134}"
cargo build --release -p iii-engine --bin iii -p iii-sdk --examples

./target/release/iii --port "$port" &
engine=$!
trap 'kill "$engine" 2>/dev/null; wait "$engine" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

export III_URL="ws://127.0.0.1:$port"
for example in quickstart pipeline bidirectional; do
  printf '\n--- %s ---\n' "$example"
  ./target/release/examples/"$example"
done
