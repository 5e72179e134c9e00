#!/usr/bin/env bash
# Installs the *published* iii clients (test peers only, never vendored) into a cache
# outside the source tree. Idempotent: re-running with everything in place does nothing.
#
#   CACHE = ${III_INTEROP_CACHE:-$HOME/.cache/iii-interop}
#   $CACHE/node  npm project with iii-sdk@0.22.1 and @iii-dev/helpers@0.22.1
#   $CACHE/py    venv with iii-sdk==0.25.0 (import name `iii`), iii-helpers==0.25.0,
#                pytest, pytest-timeout (this venv also runs the interop suite)
set -euo pipefail

NODE_SDK_VERSION=0.22.1
PY_SDK_VERSION=0.25.0
CACHE="${III_INTEROP_CACHE:-$HOME/.cache/iii-interop}"
PYTHON="${III_INTEROP_PYTHON:-python3}"
STAMP_VERSION=1   # bump to force a reinstall when this script's choices change

mkdir -p "$CACHE"

# ---------------------------------------------------------------- Node
NODE_DIR="$CACHE/node"
NODE_STAMP="$NODE_DIR/.installed-$NODE_SDK_VERSION-v$STAMP_VERSION"
if [[ ! -f "$NODE_STAMP" || ! -f "$NODE_DIR/node_modules/iii-sdk/package.json" ]]; then
    echo "setup: installing iii-sdk@$NODE_SDK_VERSION (npm) into $NODE_DIR" >&2
    mkdir -p "$NODE_DIR"
    cat > "$NODE_DIR/package.json" <<JSON
{
  "name": "iii-interop-peers",
  "private": true,
  "description": "published iii clients used as interop test peers",
  "dependencies": {
    "iii-sdk": "$NODE_SDK_VERSION",
    "@iii-dev/helpers": "$NODE_SDK_VERSION"
  }
}
JSON
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >&2)
    node -e "const p=require('$NODE_DIR/node_modules/iii-sdk/package.json'); if (p.version!=='$NODE_SDK_VERSION') { console.error('iii-sdk is', p.version); process.exit(1) }"
    touch "$NODE_STAMP"
fi

# ---------------------------------------------------------------- Python
PY_DIR="$CACHE/py"
PY_STAMP="$PY_DIR/.installed-$PY_SDK_VERSION-v$STAMP_VERSION"
if [[ ! -f "$PY_STAMP" || ! -x "$PY_DIR/bin/python" ]]; then
    echo "setup: creating venv $PY_DIR with iii-sdk==$PY_SDK_VERSION" >&2
    [[ -x "$PY_DIR/bin/python" ]] || "$PYTHON" -m venv "$PY_DIR"
    PIP=("$PY_DIR/bin/python" -m pip --disable-pip-version-check --quiet)
    PKGS=("iii-sdk==$PY_SDK_VERSION" "pytest>=8,<10" "pytest-timeout>=2.3,<3")
    # iii-helpers carries the Python http() helper; install it when PyPI has this version.
    if "${PIP[@]}" download --no-deps --dest "$CACHE/pip-probe" "iii-helpers==$PY_SDK_VERSION" >/dev/null 2>&1; then
        PKGS+=("iii-helpers==$PY_SDK_VERSION")
    else
        echo "setup: iii-helpers==$PY_SDK_VERSION not on PyPI; skipping it" >&2
    fi
    rm -rf "$CACHE/pip-probe"
    "${PIP[@]}" install "${PKGS[@]}" >&2
    "$PY_DIR/bin/python" - <<PY
import importlib.metadata as md, iii  # noqa: F401  (the published client's import name)
v = md.version("iii-sdk")
assert v == "$PY_SDK_VERSION", f"iii-sdk is {v}"
PY
    touch "$PY_STAMP"
fi

echo "setup: ok (cache $CACHE)" >&2
