"""A fast writer into a slow reader holds at most the channel's buffer: a Python process
writing 300 MiB with the plain blocking `writer.write()` keeps its memory bounded, because
each write waits for room instead of queueing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time

import pytest

from helpers import PROGRAMS, start_python, stop, tail, wait_line

MIB = 1024 * 1024
TOTAL_MIB = 300
RSS_GROWTH_LIMIT = 64 * MIB
READER_PAUSE_S = 2.0  # the reader reads nothing at first, then pauses 3 ms per MiB


def rss(pid: int) -> int:
    """Resident set size of `pid` from /proc/<pid>/status, in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@pytest.mark.timeout(60)
def test_slow_reader_bounds_writer_memory(engine, request, worker):
    read = {}
    finished = threading.Event()

    def slow_read(data):
        time.sleep(READER_PAUSE_S)
        digest, total = hashlib.sha256(), 0
        for chunk in data["reader"]:
            digest.update(chunk)
            total += len(chunk)
            if total % MIB < len(chunk):
                time.sleep(0.003)  # per MiB
        read.update(bytes=total, sha256=digest.hexdigest())
        finished.set()

    worker.register_function("bp::read", slow_read)
    writer = start_python(engine, request, PROGRAMS / "bulk_writer.py", str(TOTAL_MIB), stdin=subprocess.PIPE)
    try:
        wait_line(writer, "START")
        baseline = rss(writer.pid)
        assert baseline > 0
        peak = baseline
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
        while writer.poll() is None:
            peak = max(peak, rss(writer.pid))
            time.sleep(0.02)
        out = writer.stdout.read().decode().splitlines()
        assert writer.returncode == 0 and out, f"writer exited {writer.returncode}:\n{tail(writer.stderr_path)}"
    finally:
        stop(writer)

    assert finished.wait(30), "the reader did not finish"
    expected = hashlib.sha256()
    chunk = bytes(range(256)) * 4096
    for _ in range(TOTAL_MIB):
        expected.update(chunk)
    assert read == {"bytes": TOTAL_MIB * MIB, "sha256": expected.hexdigest()}

    seconds = json.loads(out[-1])["seconds"]
    # The writes had to wait for the paused reader: backpressure reached the writer.
    assert seconds >= READER_PAUSE_S * 0.75, f"{TOTAL_MIB} MiB written in {seconds:.2f} s into a paused reader"
    growth = peak - baseline
    assert growth < RSS_GROWTH_LIMIT, (
        f"writer RSS grew by {growth / MIB:.1f} MiB (baseline {baseline / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB)"
    )
    print(f"writer: {seconds:.2f} s, RSS baseline {baseline / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB")
