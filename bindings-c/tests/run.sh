#!/usr/bin/env bash
# The C tests: builds the C examples (examples/c) and the C tests of this directory against
# libiii twice — linked dynamically and statically — runs them against an engine of their own
# and checks what they print, then runs them again under valgrind (leaks and memory errors).
#
#   cargo build -p iii-engine -p iii-c
#   bash bindings-c/tests/run.sh
#
# The target directory is $CARGO_TARGET_DIR, else <repo>/target. Prints one line per check and
# "c tests: N passed, M failed" at the end; exits non-zero if any check failed.
# III_C_TESTS_NO_VALGRIND=1 skips the valgrind runs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
T="${CARGO_TARGET_DIR:-$REPO/target}"
[[ "$T" == /* ]] || T="$PWD/$T"
LIB_DIR="$T/debug"
INCLUDE="$REPO/bindings-c/include"
ENGINE_BIN="$LIB_DIR/iii"

for needed in "$INCLUDE/iii.h" "$LIB_DIR/libiii.so" "$LIB_DIR/libiii.a" "$ENGINE_BIN"; do
    if [[ ! -e "$needed" ]]; then
        echo "c tests: $needed is missing; build first: cargo build -p iii-engine -p iii-c" >&2
        exit 1
    fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/iii-c-tests.XXXXXX")"
ENGINE_PID=""
cleanup() {
    exec 7>&- 2>/dev/null || true
    if [[ -n "$ENGINE_PID" ]]; then
        kill "$ENGINE_PID" 2>/dev/null || true
        wait "$ENGINE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PASSED=0
FAILED=0
FAILURES=()

# check NAME COMMAND...: runs COMMAND with its output in a log; prints ok or FAIL and the log.
check() {
    local name="$1"
    shift
    local log="$WORK/log"
    if "$@" >"$log" 2>&1; then
        PASSED=$((PASSED + 1))
        echo "ok   $name"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$name")
        echo "FAIL $name"
        sed 's/^/     | /' "$log"
    fi
}

# expect_output EXPECTED COMMAND...: COMMAND exits 0 and prints exactly EXPECTED.
expect_output() {
    local expected="$1"
    shift
    local out="$WORK/out"
    if ! "$@" 7>&- >"$out" 2>"$WORK/err"; then
        echo "exit status $? from: $*"
        cat "$WORK/err" "$out"
        return 1
    fi
    if [[ "$(cat "$out")" != "$expected" ]]; then
        echo "expected: ${expected:0:300}"
        echo "printed:  $(cut -c1-300 "$out")"
        cmp <(echo "$expected") "$out" || true
        cat "$WORK/err"
        return 1
    fi
    cat "$WORK/err"
}

# ---- the engine --------------------------------------------------------------------------
start_engine() {
    # timeout ends the engine even if this script is killed before its trap runs
    timeout 1800 "$ENGINE_BIN" --host 127.0.0.1 --port 0 --http-port 0 >"$WORK/engine.out" 2>"$WORK/engine.err" &
    ENGINE_PID=$!
    URL=""
    for _ in $(seq 200); do
        URL="$(sed -n 's/^iii engine listening on \(ws:\/\/[^ ]*\)$/\1/p' "$WORK/engine.out")"
        [[ -n "$URL" ]] && break
        kill -0 "$ENGINE_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [[ -z "$URL" ]]; then
        echo "c tests: the engine did not start" >&2
        cat "$WORK/engine.out" "$WORK/engine.err" >&2
        exit 1
    fi
    export III_URL="$URL"
    echo "engine at $URL"
}

# ---- building ----------------------------------------------------------------------------
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -I "$INCLUDE")
SOURCES=("$REPO/examples/c/pipeline.c" "$REPO/examples/c/bidirectional.c"
    "$REPO/bindings-c/tests/killed_peer.c" "$REPO/bindings-c/tests/contract.c"
    "$REPO/bindings-c/tests/stalled_writer.c" "$REPO/bindings-c/tests/going_away.c"
    "$REPO/bindings-c/tests/secure.c")
[[ -f "$REPO/bindings-c/tests/smoke.c" ]] && SOURCES+=("$REPO/bindings-c/tests/smoke.c")
mkdir -p "$WORK/dynamic" "$WORK/static"

build_dynamic() {
    gcc "${CFLAGS[@]}" "$1" -o "$WORK/dynamic/$(basename "$1" .c)" -L"$LIB_DIR" -liii -pthread
}
build_static() {
    gcc "${CFLAGS[@]}" "$1" -o "$WORK/static/$(basename "$1" .c)" \
        "$LIB_DIR/libiii.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
}
statically_linked_lib() { ! ldd "$WORK/static/pipeline" | grep -q 'libiii'; }

echo "==> building the C programs against $LIB_DIR (gcc ${CFLAGS[*]})"
for source in "${SOURCES[@]}"; do
    name="${source#"$REPO/"}"
    check "compile $name (dynamic, -liii)" build_dynamic "$source"
    check "compile $name (static, libiii.a)" build_static "$source"
done
check "the static build does not load libiii.so" statically_linked_lib

# ---- the checks, for one kind of build ----------------------------------------------------
# RUN is the command prefix every program runs under (timeout, and valgrind for that pass).

# pipeline serve in the background, stdin from a FIFO we hold open on fd 7; waits for READY.
start_serve() {
    local bin="$1" wait_s="$2"
    rm -f "$WORK/serve.in"
    mkfifo "$WORK/serve.in"
    "${RUN[@]}" "$bin/pipeline" serve <"$WORK/serve.in" >"$WORK/serve.out" 2>"$WORK/serve.err" &
    SERVE_PID=$!
    exec 7>"$WORK/serve.in"
    for _ in $(seq $((wait_s * 20))); do
        grep -qx READY "$WORK/serve.out" 2>/dev/null && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "pipeline serve printed no READY"
    cat "$WORK/serve.out" "$WORK/serve.err"
    exec 7>&-
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    return 1
}

# Ends pipeline serve by closing its stdin ("eof") or by a signal; it must exit 0.
stop_serve() {
    local how="$1" status=0
    if [[ "$how" == eof ]]; then
        exec 7>&-
        wait "$SERVE_PID" || status=$?
    else
        # stdin stays open until it has exited, so only the signal can have ended it
        kill "-$how" "$SERVE_PID"
        wait "$SERVE_PID" || status=$?
        exec 7>&-
    fi
    if [[ $status -ne 0 ]]; then
        echo "pipeline serve exited with $status after $how"
        cat "$WORK/serve.err"
        return 1
    fi
    cat "$WORK/serve.err"
    if [[ "$(cat "$WORK/serve.out")" != READY ]]; then
        echo "pipeline serve printed more than READY:"
        cat "$WORK/serve.out"
        return 1
    fi
}

# The lines are the JSON the library returns from iii_trigger: serde_json's, with the keys of
# every object in sorted order.
pipeline_result() {
    local n="$1"
    printf '{"count":%d,"label":"batch-001","total":%d}' "$n" $((n * (n + 1) / 2))
}

# The serve process and producers against it, then the serve process's own exit.
pipeline_flow() {
    local bin="$1" wait_s="$2" stop="$3"
    shift 3
    start_serve "$bin" "$wait_s" || return 1
    local n status=0
    for n in "$@"; do
        expect_output "$(pipeline_result "$n")" "${RUN[@]}" "$bin/pipeline" produce "$n" || status=1
    done
    stop_serve "$stop" || status=1
    return $status
}

bidirectional_result() {
    local text="" progress="" i
    for i in $(seq 0 199); do
        text+="THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG $i\\n"
    done
    for i in $(seq 1 8); do
        progress+="${progress:+,}{\"chunks\":$i,\"type\":\"progress\"}"
    done
    printf '{"progress":[%s],"result":"%s","worker":{"chunks":8,"status":"done"}}' "$progress" "$text"
}

# A producer with no consumer registered fails (exit 1) and says why on stderr.
pipeline_without_consumer() {
    local bin="$1" status=0
    "${RUN[@]}" "$bin/pipeline" produce 10 >"$WORK/out" 2>"$WORK/err" || status=$?
    cat "$WORK/err"
    [[ $status -eq 1 ]] || { echo "expected exit 1, got $status"; return 1; }
    [[ ! -s "$WORK/out" ]] || { echo "printed: $(cat "$WORK/out")"; return 1; }
    grep -q 'iii_trigger pipeline::consumer' "$WORK/err"
}

# A bad address: the producer fails at once with III_CONNECTION.
pipeline_bad_url() {
    local bin="$1" status=0
    III_URL="http://127.0.0.1:1" "${RUN[@]}" "$bin/pipeline" produce 10 >"$WORK/out" 2>"$WORK/err" || status=$?
    cat "$WORK/err"
    [[ $status -eq 1 ]] && grep -q 'III_INVALID_ARGUMENT' "$WORK/err" && grep -q 'http://127.0.0.1:1' "$WORK/err"
}

# The valgrind run itself: a program that drops its worker handle without iii_worker_free
# must fail with valgrind's error exit code, so the clean runs mean something.
leak_is_reported() {
    cat >"$WORK/leak.c" <<'C'
#include <stddef.h>
#include "iii.h"
int main(void)
{
    iii_worker *worker = NULL;
    return iii_worker_connect("ws://127.0.0.1:1", &worker) == III_OK ? 0 : 1; /* not freed */
}
C
    gcc "${CFLAGS[@]}" "$WORK/leak.c" -o "$WORK/leak" -L"$LIB_DIR" -liii -pthread || return 1
    local status=0
    "${RUN[@]}" "$WORK/leak" || status=$?
    [[ $status -eq 99 ]] || { echo "expected valgrind's exit 99 for a leaked worker, got $status"; return 1; }
}

# A write stalled because no reader was started: a warning on stderr naming the channel.
stalled_writer_warns() {
    local bin="$1"
    "${RUN[@]}" "$bin/stalled_writer" >"$WORK/stalled.out" 2>"$WORK/stalled.err" || { cat "$WORK/stalled.err"; return 1; }
    cat "$WORK/stalled.err"
    local channel_id
    channel_id="$(sed -n 's/.*"channel_id":"\([^"]*\)".*/\1/p' "$WORK/stalled.out")"
    [[ -n "$channel_id" ]] && grep -q "WARN.*$channel_id" "$WORK/stalled.err" &&
        grep -q "waited 5 s for its reader" "$WORK/stalled.err" && ! grep -q $'\e\[' "$WORK/stalled.err"
}

# An engine of its own with a long drain (stopped by the check that starts it): sets
# STOPPING_PID, STOPPING_URL (ws://) and STOPPING_HTTP (http://). `timeout --foreground`
# passes a signal on to the engine once; without it, timeout signals the engine and then its
# own process group, the engine included, and a busy engine can take that as the second
# signal that stops it at once.
start_stoppable_engine() {
    STOPPING_URL="" STOPPING_HTTP=""
    timeout --foreground 300 "$ENGINE_BIN" --host 127.0.0.1 --port 0 --http-port 0 --shutdown-grace-secs 60 \
        >"$WORK/stopping.out" 2>"$WORK/stopping.err" &
    STOPPING_PID=$!
    for _ in $(seq 200); do
        STOPPING_URL="$(sed -n 's/^iii engine listening on \(ws:\/\/[^ ]*\)$/\1/p' "$WORK/stopping.out")"
        STOPPING_HTTP="$(sed -n 's/^iii http triggers on \(http:\/\/[^ ]*\)$/\1/p' "$WORK/stopping.out")"
        [[ -n "$STOPPING_URL" && -n "$STOPPING_HTTP" ]] && break
        sleep 0.05
    done
}

# waits (up to 30 s) until FILE has a line LINE, or PID has exited.
wait_for_line() {
    local file="$1" line="$2" pid="$3"
    for _ in $(seq 600); do
        grep -qx "$line" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# SIGTERM (what is in flight holds the drain), then SIGINT (stops at once).
stop_draining_engine() {
    kill -TERM "$STOPPING_PID"
    sleep 0.5
    kill -0 "$STOPPING_PID" || { echo "the engine did not drain"; return 1; }
    kill -INT "$STOPPING_PID" 2>/dev/null || true
}

# The engine stopped under going_away's stream: the reader must end with III_GOING_AWAY.
engine_stops_under_a_stream() {
    local bin="$1" out="$WORK/going_away.out" status=0
    start_stoppable_engine
    III_URL="$STOPPING_URL" "${RUN[@]}" "$bin/going_away" >"$out" 2>"$WORK/going_away.err" &
    local reader=$!
    wait_for_line "$out" READING "$reader" || true
    stop_draining_engine || status=1
    wait "$reader" || status=$?
    wait "$STOPPING_PID" || { echo "the engine exited with $?"; status=1; }
    cat "$WORK/going_away.err"
    if [[ "$(cat "$out")" != $'READING\ngoing_away 100000' ]]; then
        echo "printed: $(cat "$out")"
        status=1
    fi
    return $status
}

# The engine stopped under an HTTP download served by C (curl downloading): the download goes
# on while the engine drains, then curl sees a cut response (never a clean end) and the
# handler's next write fails with III_GOING_AWAY.
engine_stops_under_a_download() {
    local bin="$1" out="$WORK/download.out" body="$WORK/download.body" status=0
    start_stoppable_engine
    III_URL="$STOPPING_URL" "${RUN[@]}" "$bin/going_away" http >"$out" 2>"$WORK/download.err" &
    local server=$!
    wait_for_line "$out" READY "$server" || true
    rm -f "$body"
    curl -sS -m 60 -o "$body" "$STOPPING_HTTP/endless" 2>"$WORK/curl.err" &
    local client=$!
    for _ in $(seq 600); do
        [[ $(stat -c %s "$body" 2>/dev/null || echo 0) -ge 100000 ]] && break
        sleep 0.05
    done
    local before_stop during_drain
    before_stop=$(stat -c %s "$body" 2>/dev/null || echo 0)
    kill -TERM "$STOPPING_PID"
    sleep 0.5
    during_drain=$(stat -c %s "$body" 2>/dev/null || echo 0)
    kill -0 "$STOPPING_PID" || { echo "the engine did not drain"; status=1; }
    kill -INT "$STOPPING_PID" 2>/dev/null || true
    local curl_status=0
    wait "$client" || curl_status=$?
    wait "$server" || status=$?
    wait "$STOPPING_PID" || { echo "the engine exited with $?"; status=1; }
    cat "$WORK/download.err" "$WORK/curl.err"
    local size
    size=$(stat -c %s "$body" 2>/dev/null || echo 0)
    # curl 18: "transfer closed with outstanding read data remaining" (no final chunk).
    [[ $curl_status -eq 18 ]] || { echo "curl exited with $curl_status (expected 18, a cut response)"; status=1; }
    # The handler writes 100 KB/s; curl's own buffer holds back a few KiB at most.
    [[ $before_stop -ge 100000 && $during_drain -ge $((before_stop + 10000)) && $size -ge $during_drain ]] ||
        { echo "downloaded $before_stop bytes before the stop, $during_drain while draining, $size in all"; status=1; }
    if [[ "$(cat "$out")" != $'READY\ndownload going_away' ]]; then
        echo "printed: $(cat "$out")"
        status=1
    fi
    return $status
}

# An engine of its own for one check, with extra flags (and environment from the caller):
# waits for its "listening" lines in $WORK/side.out; sets SIDE_PID. Stopped by stop_side.
start_side_engine() {
    timeout --foreground 300 "$ENGINE_BIN" --host 127.0.0.1 --port 0 --http-port 0 "$@" \
        >"$WORK/side.out" 2>"$WORK/side.err" &
    SIDE_PID=$!
    for _ in $(seq 200); do
        grep -q '^iii http triggers on ' "$WORK/side.out" && return 0
        kill -0 "$SIDE_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/side.out" "$WORK/side.err"
    return 1
}
stop_side() { kill "$SIDE_PID" 2>/dev/null || true; wait "$SIDE_PID" 2>/dev/null || true; }
side_line() { sed -n "s/^$1 \([^ ]*\)\$/\1/p" "$WORK/side.out" | head -1; }

# wss:// and https:// (scripts/make-test-certs.sh): a channel and a download, trusting the
# test CA through iii_worker_connect_settings' ca_file; curl checks the download.
tls_round_trip() {
    local bin="$1" certs="$WORK/certs" status=0
    [[ -f "$certs/ca.pem" ]] || bash "$REPO/scripts/make-test-certs.sh" "$certs"
    start_side_engine --tls-cert "$certs/leaf.pem" --tls-key "$certs/leaf.key" || return 1
    local url https
    url="$(side_line 'iii engine listening on')"
    https="$(side_line 'iii http triggers on')"
    [[ "$url" == wss://* && "$https" == https://* ]] || { echo "not TLS: $url $https"; status=1; }
    rm -f "$WORK/tls.done"
    III_URL="$url" "${RUN[@]}" "$bin/secure" tls "$certs/ca.pem" "$WORK/tls.done" >"$WORK/tls.out" 2>"$WORK/tls.err" &
    local server=$!
    wait_for_line "$WORK/tls.out" READY "$server" || status=1
    local size
    size=$(curl -sS -m 60 --cacert "$certs/ca.pem" "$https/download" | wc -c)
    touch "$WORK/tls.done"
    wait "$server" || status=$?
    stop_side
    cat "$WORK/tls.err"
    [[ "$(head -1 "$WORK/tls.out")" == "channel 2000000" ]] || { echo "printed: $(cat "$WORK/tls.out")"; status=1; }
    [[ $size -eq 1000000 ]] || { echo "downloaded $size bytes over https"; status=1; }
    return $status
}

# An Authorization header (iii_worker_connect_settings' headers) reaches the auth function of
# the access listeners of tests/access/config.yaml; a bad token is refused with 401.
headers_reach_auth() {
    local bin="$1" status=0
    III_ACCESS_PORT=0 start_side_engine --config "$REPO/tests/access/config.yaml" || return 1
    local main guarded
    main="$(side_line 'iii engine listening on')"
    guarded="$(side_line 'iii engine also listening on')"
    "${RUN[@]}" "$bin/secure" auth "$main" "$guarded" >"$WORK/auth.out" 2>"$WORK/auth.err" || status=$?
    stop_side
    cat "$WORK/auth.err"
    [[ "$(cat "$WORK/auth.out")" == $'good admitted\nbad refused' ]] || { echo "printed: $(cat "$WORK/auth.out")"; status=1; }
    return $status
}

run_checks() {
    local label="$1" bin="$2" wait_s="$3" big="$4"
    check "$label: pipeline serve + produce 5000 and $big (exact result lines); serve ends on stdin EOF" \
        pipeline_flow "$bin" "$wait_s" eof 5000 "$big"
    check "$label: pipeline produce 1 and 0; serve ends on SIGTERM" pipeline_flow "$bin" "$wait_s" TERM 1 0
    check "$label: pipeline serve ends on SIGINT" pipeline_flow "$bin" "$wait_s" INT
    check "$label: pipeline produce with no consumer registered fails" pipeline_without_consumer "$bin"
    check "$label: pipeline with a non-ws:// III_URL is refused (III_INVALID_ARGUMENT, naming it)" pipeline_bad_url "$bin"
    check "$label: bidirectional (exact result line)" expect_output "$(bidirectional_result)" "${RUN[@]}" "$bin/bidirectional"
    check "$label: killed writer process -> III_WRITER_LOST" "${RUN[@]}" "$bin/killed_peer" writer
    check "$label: killed reader process -> III_READER_CLOSED" "${RUN[@]}" "$bin/killed_peer" reader
    check "$label: an engine stopping under a stream -> III_GOING_AWAY after every byte" \
        engine_stops_under_a_stream "$bin"
    check "$label: an engine stopping under an HTTP download -> curl sees a cut response, the handler III_GOING_AWAY" \
        engine_stops_under_a_download "$bin"
    check "$label: contract (NULL arguments, invalid JSON/UTF-8, wrong keys and directions, replies, timeouts, abort, close)" \
        "${RUN[@]}" "$bin/contract"
    check "$label: a write stalled with no reader warns on stderr, naming the channel" stalled_writer_warns "$bin"
    check "$label: a channel and an https download over TLS (ca_file in iii_worker_connect_settings)" \
        tls_round_trip "$bin"
    check "$label: an Authorization header reaches the auth function; a bad token is refused (401)" \
        headers_reach_auth "$bin"
    if [[ -x "$bin/smoke" ]]; then
        check "$label: smoke" "${RUN[@]}" "$bin/smoke"
    fi
}

start_engine
export LD_LIBRARY_PATH="$LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "==> dynamic build"
RUN=(timeout 60)
run_checks dynamic "$WORK/dynamic" 20 200000
echo "==> static build"
run_checks static "$WORK/static" 20 200000

if [[ "${III_C_TESTS_NO_VALGRIND:-}" != 1 ]]; then
    if ! command -v valgrind >/dev/null; then
        SUDO=$([[ $(id -u) -eq 0 ]] && echo "" || echo sudo)
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq valgrind
    fi
    echo "==> dynamic build under valgrind (memory errors and definite leaks fail the run)"
    # --num-callers reaches the tokio-rustls frames the suppressions (valgrind.supp) look for.
    RUN=(timeout 300 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
        --show-leak-kinds=definite --num-callers=60 --suppressions="$REPO/bindings-c/tests/valgrind.supp")
    check "valgrind: a handle the program does not free is reported (exit 99)" leak_is_reported
    run_checks valgrind "$WORK/dynamic" 120 20000
fi

echo
if [[ $FAILED -gt 0 ]]; then
    printf 'failed: %s\n' "${FAILURES[@]}"
fi
echo "c tests: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
