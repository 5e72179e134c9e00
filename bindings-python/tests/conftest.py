"""Fixtures of the Python package's tests: every test gets its own engine (the `engine`
fixture of tests/interop/conftest.py, which starts `target/debug/iii` on free ports and shows
its log when a test fails) and an in-process worker connected to it (`worker`).

Cross-language tests reuse the interop workers through that harness's `serve` / `drive`
fixtures; ``"ours"`` names tests/interop/peers/peer.py (this package) next to ``"node"`` (the published
Node client) and ``"rust"`` (our Rust SDK's interop worker).

Environment: III_ENGINE_BIN, III_INTEROP_CACHE, III_INTEROP_RUST_WORKER as in tests/interop.
"""

from __future__ import annotations

import subprocess

import pytest

import iii
from helpers import REPO, harness

# The interop harness's fixtures and failure report (engine log and workers' stderr).
engine = harness.engine
serve = harness.serve
drive = harness.drive
rust_worker = harness.rust_worker
pytest_runtest_makereport = harness.pytest_runtest_makereport


@pytest.fixture(scope="session")
def published_clients():
    """The engine fixture asks for this; only the Node tests need the published client."""
    return harness.CACHE


@pytest.fixture(scope="session")
def node_client():
    """The published Node client, installed by tests/interop/setup.sh (run here if needed;
    it does nothing when everything is in place)."""
    package = harness.CACHE / "node" / "node_modules" / "iii-sdk" / "package.json"
    if not package.exists():
        setup = subprocess.run(
            ["bash", str(REPO / "tests" / "interop" / "setup.sh")], capture_output=True, text=True, timeout=600
        )
        if setup.returncode != 0 or not package.exists():
            pytest.fail(f"tests/interop/setup.sh could not install the published clients:\n{setup.stderr[-4000:]}")
    return package


@pytest.fixture
def worker(engine):
    """A worker of this process connected to the test's engine."""
    client = iii.register_worker(engine.url)
    client.ready()
    yield client
    client.shutdown()
