#!/usr/bin/env bash
# Starts the engine, runs the channel guide's examples against it (a producer streaming records
# to a consumer; a coordinator and a worker exchanging data with progress messages), then the
# HTTP examples (a file download and a server-sent events stream, fetched with curl), prints
# what they produce, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${III_PORT:-49134}"
http_port="${III_HTTP_PORT:-3111}"
cargo build --release -p iii-engine --bin iii -p iii-sdk --examples

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${files:-}" ]] && rm -rf "$files"
  [[ -n "${engine_out:-}" ]] && rm -f "$engine_out"
}
trap cleanup EXIT

# Starts an example worker in the background and waits for its "ready" line.
serve() {
  local log="$files/$1.log"
  "./target/release/examples/$1" >"$log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q "ready" "$log" 2>/dev/null && { cat "$log"; return 0; }
    sleep 0.1
  done
  echo "$1 did not get ready" >&2
  return 1
}

# The demo runs against the engine it starts, never one that happens to be running already:
# it waits for this engine's own "listening" lines and stops if this engine could not start.
engine_out="$(mktemp)"
./target/release/iii --port "$port" --http-port "$http_port" >"$engine_out" &
engine_pid=$!
pids+=($engine_pid)
for _ in $(seq 1 100); do
  grep -q "iii http triggers on" "$engine_out" && break
  if ! kill -0 "$engine_pid" 2>/dev/null; then
    echo "demo.sh: the engine could not start (its error is above). Is another engine already" \
      "using port $port or $http_port? Stop it, or choose other ports: III_PORT=... III_HTTP_PORT=..." >&2
    exit 1
  fi
  sleep 0.1
done
cat "$engine_out"
grep -q "iii http triggers on" "$engine_out" || { echo "demo.sh: the engine did not report its ports" >&2; exit 1; }

export III_URL="ws://127.0.0.1:$port"
for example in quickstart pipeline bidirectional; do
  printf '\n--- %s ---\n' "$example"
  ./target/release/examples/"$example"
done

files="$(mktemp -d)"
head -c 5000000 /dev/urandom >"$files/quarterly-report.pdf"
export III_FILES_DIR="$files"
printf '\n--- download (GET /files/:filename) ---\n'
serve download
curl -sS -o "$files/downloaded.pdf" -w 'HTTP %{http_code}, %{content_type}, %{size_download} bytes\n' \
  "http://127.0.0.1:$http_port/files/quarterly-report.pdf"
cmp "$files/quarterly-report.pdf" "$files/downloaded.pdf" && echo "the download is byte-exact"

printf '\n--- sse (GET /events/stream) ---\n'
export III_SSE_INTERVAL_MS=300
serve sse
curl -sSN "http://127.0.0.1:$http_port/events/stream"
