#!/usr/bin/env bash
# Installs what users install, the way the README says, and streams a channel through each,
# with cargo and rustup gone from PATH for everything after the engine's install:
#   - the engine: cargo install --path core/engine (into a root of its own); `iii` is then
#     found on PATH and serves the round trips,
#   - the Python wheel from dist/ into a fresh virtualenv (pip install dist/iii-*.whl),
#   - the npm tarball from dist/ into a fresh folder (npm install dist/iii-sdk-*.tgz).
# Run scripts/package.sh first. Prints one line per check; exits non-zero if one failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/iii-packaging.XXXXXX")"
ENGINE_PID=""
cleanup() {
    [[ -n "$ENGINE_PID" ]] && kill "$ENGINE_PID" 2>/dev/null && wait "$ENGINE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

wheel=(dist/iii-*.whl)
tarball=(dist/iii-sdk-*.tgz)
[[ -f "${wheel[0]}" && -f "${tarball[0]}" ]] || { echo "packaging: run scripts/package.sh first" >&2; exit 1; }

echo "==> cargo install --path core/engine --root $WORK/engine"
# The workspace's target directory keeps this from building everything a second time.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo install --quiet --path core/engine --root "$WORK/engine"

# PATH without cargo or rustup, plus the installed engine.
stripped="$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e '\.cargo' -e 'rustup' | paste -sd: -)"
export PATH="$WORK/engine/bin:$stripped"
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
    echo "packaging: cargo is still on PATH ($PATH)" >&2
    exit 1
fi
[[ "$(command -v iii)" == "$WORK/engine/bin/iii" ]] || { echo "packaging: iii is not the installed engine" >&2; exit 1; }
echo "ok   iii on PATH without cargo: $(iii --version)"

iii --port 0 --no-http >"$WORK/engine.out" 2>"$WORK/engine.err" &
ENGINE_PID=$!
for _ in $(seq 1 100); do
    grep -q "iii engine listening on" "$WORK/engine.out" && break
    sleep 0.1
done
URL="$(sed -n 's/^iii engine listening on //p' "$WORK/engine.out")"
[[ -n "$URL" ]] || { cat "$WORK/engine.err" >&2; echo "packaging: the installed engine did not start" >&2; exit 1; }
export III_URL="$URL"

echo "==> pip install ${wheel[0]} into a fresh virtualenv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "${wheel[0]}"
(cd "$WORK" && timeout 120 "$WORK/venv/bin/python" "$ROOT/tests/packaging/roundtrip.py") | tee "$WORK/python.json"
grep -q "\"package\": \"$WORK/venv/" "$WORK/python.json" || { echo "packaging: not the installed wheel" >&2; exit 1; }
echo "ok   Python wheel: a 20 MiB channel round trip"

echo "==> npm install ${tarball[0]} into a fresh folder"
mkdir "$WORK/node"
cp tests/packaging/roundtrip.mjs "$WORK/node/"
(cd "$WORK/node" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$ROOT/${tarball[0]}")
(cd "$WORK/node" && timeout 120 node roundtrip.mjs) | tee "$WORK/node.json"
grep -q "\"package\":\"$WORK/node/node_modules/iii-sdk/" "$WORK/node.json" || { echo "packaging: not the installed tarball" >&2; exit 1; }
echo "ok   npm tarball: a 20 MiB channel round trip"
echo "packaging: 3 passed"
