#!/usr/bin/env bash
# Builds the packages users install without a Rust toolchain, into dist/:
#   dist/iii-<version>-cp39-abi3-<platform>.whl   the Python package (maturin, release, abi3:
#                                                 one wheel for CPython 3.9 and later)
#   dist/iii-sdk-<version>.tgz                    the npm package iii-sdk with the release addon
#                                                 for this platform inside it (napi-rs naming:
#                                                 iii-node.<platform>-<arch>[-<libc>].node)
# The engine is installed with cargo instead: cargo install --path core/engine (see README).
#
#   scripts/package.sh            # both
#   PY=path/to/python scripts/package.sh   # the Python whose maturin builds the wheel
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIST="$ROOT/dist"
mkdir -p "$DIST"
rm -f "$DIST"/iii-*.whl "$DIST"/iii-sdk-*.tgz

PY="${PY:-python3}"
if ! "$PY" -m maturin --version >/dev/null 2>&1; then
    echo "package.sh: installing maturin for $PY" >&2
    "$PY" -m pip install -q --disable-pip-version-check "maturin>=1.16,<2"
fi
# pyo3 builds once per interpreter setting: keep them as every other cargo call has them.
export PYO3_PYTHON="${PYO3_PYTHON:-$(command -v "$PY")}"

echo "==> Python wheel (maturin build --release)" >&2
"$PY" -m maturin build --release --strip --quiet -m bindings-python/Cargo.toml --out "$DIST" >&2

echo "==> npm tarball with the release addon (npm pack)" >&2
(cd bindings-node && III_NODE_PROFILE=release node scripts/build-native.js >&2)
# The release profile keeps line tables (for profiling); users' packages need no debug info.
if command -v strip >/dev/null; then
    strip --strip-debug bindings-node/iii-node.*.node
fi
(cd bindings-node && npm pack --silent --pack-destination "$DIST" >/dev/null)

ls -1 "$DIST"/iii-*.whl "$DIST"/iii-sdk-*.tgz
