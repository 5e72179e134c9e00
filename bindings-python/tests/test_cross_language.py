"""Our Python package with the other SDKs, through our engine, in both directions: Python ↔
our Rust SDK (tests/interop/peers/rust_worker.rs) and Python ↔ the published Node client
(tests/interop/peers/worker.mjs). The Python side is tests/interop/peers/peer.py, which runs the
handlers of examples/python.

Ids read ``<driver>-to-<server>``: the driver creates the channels and triggers the server's
function; each runs in its own process.
"""

from __future__ import annotations

import pytest

RECORDS = 3000
TEXT_LINES = 200
PIECES = 8
FILE_SIZE = 8 * 1024 * 1024 + 123  # not a multiple of the 64 KiB frame

BOTH_WAYS = [("ours", "rust"), ("rust", "ours"), ("ours", "node"), ("node", "ours")]


def pair_id(pair) -> str:
    return f"{pair[0]}-to-{pair[1]}"


@pytest.fixture
def peers(request):
    """Makes sure the other side's program is there (built / installed)."""

    def need(*langs: str) -> None:
        if "rust" in langs:
            request.getfixturevalue("rust_worker")
        if "node" in langs:
            request.getfixturevalue("node_client")

    return need


def check_runtime(result: dict, server: str) -> None:
    """The result came from `server`: the Rust and Node functions name their runtime; the
    Python examples' functions return exactly the guide's fields."""
    if server == "ours":
        assert "runtime" not in result, result
    else:
        assert result.get("runtime") == server, result


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pair", BOTH_WAYS, ids=pair_id)
def test_pipeline(peers, serve, drive, pair):
    """Guide example 3: the producer streams JSON records, the consumer returns count and sum."""
    driver, server = pair
    peers(driver, server)
    serve(server, "pipeline")
    result = drive(driver, "pipeline", "--records", str(RECORDS))
    assert result["label"] == "batch-001", result
    assert result["count"] == RECORDS, result
    assert result["total"] == RECORDS * (RECORDS + 1) // 2, result
    check_runtime(result, server)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pair", BOTH_WAYS, ids=pair_id)
def test_bidirectional(peers, serve, drive, pair):
    """Guide example 4 over two channels: the upper-cased text comes back as bytes, with one
    progress message per chunk the worker read."""
    driver, server = pair
    peers(driver, server)
    serve(server, "transform")
    result = drive(driver, "transform", "--text-lines", str(TEXT_LINES), "--pieces", str(PIECES))
    text = "".join(f"the quick brown fox jumps over the lazy dog {i}\n" for i in range(TEXT_LINES))
    assert result["result"] == text.upper(), result["result"][:200]
    worker = result["worker"]
    assert worker["status"] == "done", worker
    check_runtime(worker, server)
    if server == "node":
        # Node's Readable may hand buffered frames over concatenated.
        assert 1 <= worker["chunks"] <= PIECES, worker
    else:
        # Python and Rust readers get one chunk per frame, and each write was one frame.
        assert worker["chunks"] == PIECES, worker
    assert result["progress"] == [{"type": "progress", "chunks": i} for i in range(1, worker["chunks"] + 1)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pair", [("ours", "rust"), ("ours", "node"), ("node", "ours")], ids=pair_id)
def test_binary_stream(peers, serve, drive, pair):
    """8 MiB of deterministic bytes to `files::process`, which hashes what it read."""
    driver, server = pair
    peers(driver, server)
    serve(server, "files")
    outcome = drive(driver, "files", "--size", str(FILE_SIZE), "--chunk", str(200_000))
    result, sent = outcome["result"], outcome["sent"]
    assert sent["bytes"] == FILE_SIZE
    assert result["bytes"] == FILE_SIZE, result
    assert result["sha256"] == sent["sha256"], "the reader got different bytes"
    assert result["runtime"] == ("python" if server == "ours" else server), result
