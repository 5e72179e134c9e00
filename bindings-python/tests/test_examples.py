"""Every program in examples/python runs as a script against the test's engine and prints the
result its guide example describes."""

from __future__ import annotations

import hashlib
import os

import pytest

from helpers import EXAMPLES, run_python

TEXT = "".join(f"the quick brown fox jumps over the lazy dog {i}\n" for i in range(200))

# Each example and the test that runs it.
RUN_BY = {
    "channel_basics.py": "test_channel_basics",
    "channel_async.py": "test_channel_async",
    "pipeline.py": "test_pipeline",
    "bidirectional.py": "test_bidirectional",
    "http_download.py": "test_http_download (and test_http.py)",
    "http_sse.py": "test_http_sse (and test_http.py)",
}


def test_every_example_is_run():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUN_BY)


@pytest.mark.timeout(30)
def test_channel_basics(engine, request):
    """Sync create/write/close, the reader ref through trigger(), `async for` in the handler."""
    result = run_python(engine, request, EXAMPLES / "channel_basics.py")
    assert result == {"filename": "report.csv", "chunks": 2, "text": "first chunksecond chunk"}


@pytest.mark.timeout(30)
def test_channel_async(engine, request):
    """The awaitable forms under asyncio.run: a reader ref to `files::process`, a writer ref
    to `files::generate` read back with `async for`."""
    result = run_python(engine, request, EXAMPLES / "channel_async.py")
    assert result == {
        "process": {"bytes": len(b"file contents")},
        "generate": {"result": {"ok": True}, "bytes_total": 11, "text": "hello world"},
    }


@pytest.mark.timeout(30)
def test_pipeline(engine, request):
    """The guide's sync producer/consumer: 5000 records (several 64 KiB frames)."""
    result = run_python(engine, request, EXAMPLES / "pipeline.py")
    assert result == {"label": "batch-001", "count": 5000, "total": 5000 * 5001 // 2}


@pytest.mark.timeout(30)
def test_bidirectional(engine, request):
    """Two channels: upper-cased text back, one progress message per chunk read, delivered
    before the output stream ended."""
    result = run_python(engine, request, EXAMPLES / "bidirectional.py")
    assert result["result"] == TEXT.upper()
    assert result["worker"] == {"status": "done", "chunks": 8}
    assert result["progress"] == [{"type": "progress", "chunks": i} for i in range(1, 9)]


@pytest.mark.timeout(30)
def test_http_download(engine, request, tmp_path):
    """The guide's `http`-decorated download handler, fetched by the example itself."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "quarterly-report.pdf").write_bytes(data)
    result = run_python(
        engine, request, EXAMPLES / "http_download.py", "quarterly-report.pdf", env={"III_FILES_DIR": str(tmp_path)}
    )
    assert result == {
        "status": 200,
        "content_type": "application/pdf",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@pytest.mark.timeout(30)
def test_http_sse(engine, request):
    """Five progress events and a done event, each arriving as it is written (200 ms apart)."""
    result = run_python(engine, request, EXAMPLES / "http_sse.py", "fetch", env={"III_SSE_INTERVAL_MS": "200"})
    assert result["status"] == 200 and result["content_type"] == "text/event-stream", result
    assert result["events"] == [
        f'id: {i}\nevent: progress\ndata: {{"step":{i},"total":5}}' for i in range(1, 6)
    ] + ['id: 6\nevent: done\ndata: {"message":"complete"}']
    # Written 1 s apart in all (first to last); a buffered response would arrive at once.
    assert result["after_first_s"][-1] >= 0.6, result["after_first_s"]
