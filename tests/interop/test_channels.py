"""The documented channel flows, run by the published iii clients (Node iii-sdk@0.22.1,
Python iii-sdk==0.25.0) and by our Rust SDK against our engine.

Naming: `<driver>-to-<server>`. The driver is the producer/coordinator side (it creates the
channels and triggers the other side); the server is the consumer/worker side (it only
registers functions). Each runs in its own process.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

PUBLISHED = ["node", "python"]
PUBLISHED_PAIRS = [(d, s) for d in PUBLISHED for s in PUBLISHED]
RUST_PAIRS = [("node", "rust"), ("rust", "node"), ("python", "rust"), ("rust", "python")]


def pair_id(pair) -> str:
    return f"{pair[0]}-to-{pair[1]}"


# ---------------------------------------------------------------- expectations

RECORDS = 5000  # ~150 KB of JSON: several 64 KiB frames
PIECES = 8
TEXT_LINES = 200


def expected_text() -> str:
    return "".join(f"the quick brown fox jumps over the lazy dog {i}\n" for i in range(TEXT_LINES))


def blob_sha256(size: int) -> str:
    return hashlib.sha256(hashlib.shake_256(f"iii-interop:{size}".encode()).digest(size)).hexdigest()


def check_pipeline(result: dict, server: str) -> None:
    assert result["label"] == "batch-001", result
    assert result["count"] == RECORDS, result
    assert result["total"] == RECORDS * (RECORDS + 1) // 2, result
    assert result["runtime"] == server, f"consumer ran in {result.get('runtime')}, expected {server}"


def check_transform(result: dict, server: str) -> None:
    text = expected_text()
    assert result["result"] == text.upper(), f"result differs: {result['result'][:200]!r}..."
    worker = result["worker"]
    assert worker["status"] == "done" and worker["runtime"] == server, worker
    chunks = worker["chunks"]
    # One progress message per chunk the worker read, all delivered before the output ended.
    assert result["progress"] == [{"type": "progress", "chunks": i} for i in range(1, chunks + 1)], result["progress"]
    if server == "node":
        # Node's Readable hands buffered frames over concatenated: 1..PIECES chunks.
        assert 1 <= chunks <= PIECES, worker
    else:
        # Python and Rust readers see one chunk per frame: the engine keeps frame boundaries.
        assert chunks == PIECES, worker


# ---------------------------------------------------------------- published clients

@pytest.mark.timeout(240)
@pytest.mark.parametrize("driver,server", PUBLISHED_PAIRS, ids=map(pair_id, PUBLISHED_PAIRS))
def test_pipeline(serve, drive, driver, server):
    """Guide example 3: pipeline::producer streams JSON records to pipeline::consumer."""
    serve(server, "pipeline")
    check_pipeline(drive(driver, "pipeline", "--records", str(RECORDS)), server)


CROSS_PAIRS = [("node", "python"), ("python", "node")]


@pytest.fixture
def quick_pings(monkeypatch):
    """The engine pings a quiet worker after 1 s and drops it 1 s after an unanswered ping."""
    monkeypatch.setenv("III_PING_INTERVAL_SECS", "1")
    monkeypatch.setenv("III_PING_TIMEOUT_SECS", "1")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("driver,server", CROSS_PAIRS, ids=map(pair_id, CROSS_PAIRS))
def test_published_workers_answer_the_engines_pings(quick_pings, engine, serve, drive, driver, server):
    """The published clients' WebSocket libraries answer the engine's pings by themselves: a
    worker quiet for several ping timeouts is never dropped (the clients would reconnect and
    hide it, so the engine's log is checked) and serves the pipeline."""
    serve(server, "pipeline")
    time.sleep(4)
    check_pipeline(drive(driver, "pipeline", "--records", str(RECORDS)), server)
    log = engine.log.read_text(errors="replace")
    assert "worker connected" in log, log[-2000:]
    assert "unresponsive" not in log, log[-2000:]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("driver,server", CROSS_PAIRS, ids=map(pair_id, CROSS_PAIRS))
def test_pipeline_with_client_defaults(serve, drive, driver, server):
    """The docs' examples pass no options: telemetry on, so both clients also open `/otel`
    and send OTLP frames there, which the engine must accept and discard."""
    defaults = {"III_INTEROP_CLIENT_DEFAULTS": "1"}
    serve(server, "pipeline", env=defaults)
    check_pipeline(drive(driver, "pipeline", "--records", str(RECORDS), env=defaults), server)


PARALLEL = 16


@pytest.mark.timeout(240)
@pytest.mark.parametrize("driver,server", CROSS_PAIRS, ids=map(pair_id, CROSS_PAIRS))
def test_parallel_pipelines(serve, drive, driver, server):
    """16 pipeline flows at once through one engine (48 concurrent invocations, 16 channels),
    flow i with 1000 + i records: every answer must reach its own caller."""
    serve(server, "pipeline")
    results = drive(driver, "pipeline", "--records", "1000", "--parallel", str(PARALLEL))
    assert len(results) == PARALLEL
    for i, result in enumerate(results):
        n = 1000 + i
        assert result == {"label": "batch-001", "count": n, "total": n * (n + 1) // 2, "runtime": server}, (i, result)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("driver,server", PUBLISHED_PAIRS, ids=map(pair_id, PUBLISHED_PAIRS))
def test_bidirectional_with_progress(serve, drive, driver, server):
    """Guide example 4: transform::coordinator / transform::worker over two channels, with
    text progress messages beside the binary result."""
    serve(server, "transform")
    result = drive(driver, "transform", "--text-lines", str(TEXT_LINES), "--pieces", str(PIECES))
    check_transform(result, server)


BLOB = 20 * 1024 * 1024


def run_large_binary_stream(serve, drive, driver: str, server: str) -> None:
    serve(server, "files")
    out = drive(driver, "files", "--size", str(BLOB), "--chunk", str(256 * 1024), timeout=120)
    expected = blob_sha256(BLOB)
    assert out["sent"] == {"bytes": BLOB, "sha256": expected}
    result = out["result"]
    assert result["runtime"] == server
    assert result["bytes"] == BLOB, f"reader got {result['bytes']} of {BLOB} bytes"
    assert result["sha256"] == expected, "bytes arrived altered or out of order"
    assert result["filename"] == f"blob-{BLOB}.bin"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("driver,server", PUBLISHED_PAIRS, ids=map(pair_id, PUBLISHED_PAIRS))
def test_large_binary_stream(serve, drive, driver, server):
    """files::process reads 20 MiB of deterministic bytes written in 256 KiB writes while it
    reads (the writer is ahead of the reader only by what the engine buffers)."""
    run_large_binary_stream(serve, drive, driver, server)


PAUSE_SECS = 70


@pytest.mark.timeout(PAUSE_SECS + 240)
def test_python_reader_survives_idle_writer(serve, drive):
    """A writer that goes quiet for 70 s in the middle of a stream: the Python reader's (and
    the Python writer's) websockets ping every 20 s and give up after 20 s without a pong,
    and Node closes its main socket after 60 s without inbound frames, so the engine must
    answer pings on idle sockets. A Node writer and a Python writer run at the same time."""
    serve("python", "files")
    size = 2 * 1024 * 1024
    args = ("--size", str(size), "--chunk", str(64 * 1024), "--pause-after", str(size // 2), "--pause-secs", str(PAUSE_SECS))
    results: dict = {}

    def run(lang: str) -> None:
        try:
            results[lang] = drive(lang, "files", *args, timeout=PAUSE_SECS + 90)
        except BaseException as e:  # reported below
            results[lang] = e

    threads = [threading.Thread(target=run, args=(lang,)) for lang in ("node", "python")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = blob_sha256(size)
    for lang in ("node", "python"):
        out = results[lang]
        if isinstance(out, BaseException):
            raise AssertionError(f"{lang} writer: {out}") from out
        assert out["result"]["runtime"] == "python"
        assert out["result"]["bytes"] == size, f"{lang} writer: reader got {out['result']['bytes']} of {size} bytes"
        assert out["result"]["sha256"] == expected, f"{lang} writer: bytes altered"


# ---------------------------------------------------------------- our Rust SDK with the published clients

@pytest.mark.timeout(300)
@pytest.mark.parametrize("driver,server", RUST_PAIRS, ids=map(pair_id, RUST_PAIRS))
def test_rust_pipeline(rust_worker, serve, drive, driver, server):
    serve(server, "pipeline")
    check_pipeline(drive(driver, "pipeline", "--records", str(RECORDS)), server)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("driver,server", RUST_PAIRS, ids=map(pair_id, RUST_PAIRS))
def test_rust_bidirectional_with_progress(rust_worker, serve, drive, driver, server):
    serve(server, "transform")
    result = drive(driver, "transform", "--text-lines", str(TEXT_LINES), "--pieces", str(PIECES))
    check_transform(result, server)


RUST_READER_PAIRS = [("node", "rust"), ("python", "rust")]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("driver,server", RUST_READER_PAIRS, ids=map(pair_id, RUST_READER_PAIRS))
def test_rust_large_binary_stream(rust_worker, serve, drive, driver, server):
    """A published writer streams 20 MiB to a Rust files::process."""
    run_large_binary_stream(serve, drive, driver, server)
