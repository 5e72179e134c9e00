#!/usr/bin/env bash
# The compatibility suite: programs written only against the published iii clients' APIs
# (Python iii-sdk 0.25 with iii-helpers, Node iii-sdk 0.22 with @iii-dev/helpers), each run
# twice against our engine (a fresh one per run) — once with the published package, once with
# ours — and what each observed (JSON it writes to $COMPAT_OUT) must be the same. The
# TypeScript program is type-checked with `tsc --strict` against both packages.
#
# Our packages: III_COMPAT_WHEEL (a wheel, or a source folder such as ./bindings-python) and
# III_COMPAT_NPM (a tarball, or a folder to `npm pack`); by default the ones scripts/package.sh
# put in dist/. The published ones come from tests/interop/setup.sh and from npm into
# ${III_INTEROP_CACHE:-~/.cache/iii-interop}/compat-*. Prints one line per program and a
# summary; exits non-zero if any differed or failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ENGINE="${III_ENGINE_BIN:-$ROOT/target/debug/iii}"
CACHE="${III_INTEROP_CACHE:-$HOME/.cache/iii-interop}"
NODE_SDK_VERSION=0.22.1
PY_SDK_VERSION=0.25.0
TOOLS=("typescript@~5.9.3" "@types/node@^20.19.0")
STAMP=v1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/iii-compat.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
NPM=(npm --no-audit --no-fund --loglevel=error)

first() { for f in "$@"; do [[ -e "$f" ]] && { echo "$f"; return; }; done; }
WHEEL="${III_COMPAT_WHEEL:-$(first dist/iii-*.whl)}"
TARBALL="${III_COMPAT_NPM:-$(first dist/iii-sdk-*.tgz)}"
[[ -n "$WHEEL" && -n "$TARBALL" ]] || { echo "compat: run scripts/package.sh first (or set III_COMPAT_WHEEL and III_COMPAT_NPM)" >&2; exit 1; }
[[ -x "$ENGINE" ]] || { echo "compat: no engine at $ENGINE (cargo build -p iii-engine)" >&2; exit 1; }

echo "==> the published clients"
bash tests/interop/setup.sh
PUB_PY="$CACHE/py/bin/python"
PUB_NODE="$CACHE/compat-node-published"
if [[ ! -f "$PUB_NODE/.installed-$NODE_SDK_VERSION-$STAMP" ]]; then
    mkdir -p "$PUB_NODE"
    echo '{ "name": "compat-published", "private": true, "type": "module" }' >"$PUB_NODE/package.json"
    (cd "$PUB_NODE" && "${NPM[@]}" install "iii-sdk@$NODE_SDK_VERSION" "@iii-dev/helpers@$NODE_SDK_VERSION" "${TOOLS[@]}")
    touch "$PUB_NODE/.installed-$NODE_SDK_VERSION-$STAMP"
fi

echo "==> our packages: $WHEEL, $TARBALL"
OURS_PY_VENV="$CACHE/compat-py-ours"
if [[ ! -f "$OURS_PY_VENV/.installed-$PY_SDK_VERSION-$STAMP" ]]; then
    python3 -m venv "$OURS_PY_VENV"
    "$OURS_PY_VENV/bin/pip" install -q --disable-pip-version-check "iii-helpers==$PY_SDK_VERSION"
    touch "$OURS_PY_VENV/.installed-$PY_SDK_VERSION-$STAMP"
fi
# iii-helpers does not depend on iii-sdk, so our `iii` is the only one in this venv.
"$OURS_PY_VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
OURS_PY="$OURS_PY_VENV/bin/python"
OURS_NODE="$CACHE/compat-node-ours"
if [[ ! -f "$OURS_NODE/.installed-$STAMP" ]]; then
    mkdir -p "$OURS_NODE"
    echo '{ "name": "compat-ours", "private": true, "type": "module" }' >"$OURS_NODE/package.json"
    (cd "$OURS_NODE" && "${NPM[@]}" install "${TOOLS[@]}")
    touch "$OURS_NODE/.installed-$STAMP"
fi
if [[ -d "$TARBALL" ]]; then
    (cd "$WORK" && npm pack --silent "$ROOT/$TARBALL" >/dev/null)
    TARBALL="$(first "$WORK"/iii-sdk-*.tgz)"
fi
[[ "$TARBALL" = /* ]] || TARBALL="$ROOT/$TARBALL"
# Ours pulls @iii-dev/helpers in as its dependency, as the published package does.
(cd "$OURS_NODE" && "${NPM[@]}" install --no-save "$TARBALL")

# A fresh engine for one run: sets III_URL and III_HTTP_URL.
start_engine() {
    # The programs serve their HTTP-invoked functions on 127.0.0.1.
    "$ENGINE" --port 0 --http-port 0 --http-functions-allow-private >"$WORK/engine.out" 2>"$WORK/engine.err" &
    ENGINE_PID=$!
    for _ in $(seq 1 200); do
        grep -q "http triggers on" "$WORK/engine.out" 2>/dev/null && break
        sleep 0.05
    done
    III_URL="$(sed -n 's/^iii engine listening on //p' "$WORK/engine.out")"
    III_HTTP_URL="$(sed -n 's/^iii http triggers on //p' "$WORK/engine.out")"
    export III_URL III_HTTP_URL
    [[ -n "$III_URL" ]] || { cat "$WORK/engine.err" >&2; echo "compat: the engine did not start" >&2; exit 1; }
}
stop_engine() { kill "$ENGINE_PID" 2>/dev/null; wait "$ENGINE_PID" 2>/dev/null || true; }

passed=0
failed=0
# compare NAME PUBLISHED_JSON OURS_JSON: the same observations, or the difference shown
compare() {
    local name="$1" published="$2" ours="$3"
    if [[ -s "$published" && -s "$ours" ]] && diff -u --label "published $name" --label "ours $name" "$published" "$ours" >"$WORK/diff"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        [[ -s "$published" ]] || echo "     (the published package's run observed nothing)"
        [[ -s "$ours" ]] || echo "     (our package's run observed nothing)"
        sed 's/^/     /' "$WORK/diff" 2>/dev/null || true
        failed=$((failed + 1))
    fi
}
run_side() {  # SIDE NAME DIR COMMAND...
    local side="$1" name="$2" dir="$3"
    shift 3
    start_engine
    (cd "$dir" && COMPAT_OUT="$WORK/out/$side/$name.json" timeout 120 "$@") >"$WORK/out/$side/$name.log" 2>&1 \
        || { echo "     $side run of $name exited $?:"; tail -15 "$WORK/out/$side/$name.log" | sed 's/^/       /'; rm -f "$WORK/out/$side/$name.json"; }
    stop_engine
}

mkdir -p "$WORK/out/published/python" "$WORK/out/published/node" "$WORK/out/ours/python" "$WORK/out/ours/node" "$WORK/py-published" "$WORK/py-ours"
cp tests/compat/python/*.py "$WORK/py-published/"
cp tests/compat/python/*.py "$WORK/py-ours/"
cp tests/compat/node/*.mjs tests/compat/node/types.ts tests/compat/node/tsconfig.json "$PUB_NODE/"
cp tests/compat/node/*.mjs tests/compat/node/types.ts tests/compat/node/tsconfig.json "$OURS_NODE/"

echo "==> python programs"
for program in tests/compat/python/*.py; do
    name="python/$(basename "$program" .py)"
    [[ "$name" == python/report ]] && continue
    run_side published "$name" "$WORK/py-published" "$PUB_PY" "$(basename "$program")"
    run_side ours "$name" "$WORK/py-ours" "$OURS_PY" "$(basename "$program")"
    compare "$name" "$WORK/out/published/$name.json" "$WORK/out/ours/$name.json"
done

echo "==> node programs"
for program in tests/compat/node/*.mjs; do
    name="node/$(basename "$program" .mjs)"
    [[ "$name" == node/report ]] && continue
    run_side published "$name" "$PUB_NODE" node "$(basename "$program")"
    run_side ours "$name" "$OURS_NODE" node "$(basename "$program")"
    compare "$name" "$WORK/out/published/$name.json" "$WORK/out/ours/$name.json"
done

echo "==> typescript: tsc --strict on node/types.ts"
for side in published ours; do
    dir=$([[ $side == published ]] && echo "$PUB_NODE" || echo "$OURS_NODE")
    label=$([[ $side == published ]] && echo "the published package" || echo "our package")
    if (cd "$dir" && npx tsc -p tsconfig.json) >"$WORK/tsc-$side.log" 2>&1; then
        echo "ok   node/types.ts type-checks against $label"
        passed=$((passed + 1))
    else
        echo "FAIL node/types.ts against $label:"
        sed 's/^/     /' "$WORK/tsc-$side.log"
        failed=$((failed + 1))
    fi
done

echo "compat: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
