"""A cluster-test peer on *our* Python SDK (run it with the package tests' virtualenv, not
the published client's). III_URL names its engine; TAG names this process's functions.

    cluster_peer.py serve            register cluster::*::<TAG> and serve until stdin ends
    cluster_peer.py drive-slow SIZE FUNCTION
        create a channel here, write SIZE deterministic bytes into it, and call FUNCTION
        (a peer's cluster::slow_read) with the read end; RESULT {sent, result, secs}
    cluster_peer.py drive-kill FUNCTION [WRITER_FUNCTION]
        create a channel here, hand its read end to FUNCTION (a peer's cluster::read_report,
        void) and write slowly without end: from here, or (with WRITER_FUNCTION, a peer's
        cluster::write_slowly, void) from that peer
    cluster_peer.py drive-stream SIZE FUNCTION
        create a channel here, hand its read end to FUNCTION (a peer's cluster::read_report,
        void), write SIZE deterministic bytes pausing PAUSE s (default 0.02) per 256 KiB, and
        close; RESULT {sent}
    cluster_peer.py call FUNCTION [PAYLOAD_JSON]   RESULT {result} or ERROR {code, message, secs}

stdout carries only protocol lines: READY, PROGRESS <bytes>, READ <json>, RESULT <json>,
ERROR <json>.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time

from iii import register_worker

URL = os.environ.get("III_URL", "ws://127.0.0.1:49134")
TAG = os.environ.get("TAG", "x")
CHUNK = 256 * 1024


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def blob(size: int) -> bytes:
    return hashlib.shake_256(f"iii-cluster:{size}".encode()).digest(size)


def slow_read(data):
    """Reads the channel, pausing after each chunk; returns what it read."""
    reader = data["reader"]
    pause = float(data.get("pause", 0.01))
    digest, total = hashlib.sha256(), 0
    while True:
        chunk = reader.next_chunk()
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
        time.sleep(pause)
    return {"bytes": total, "sha256": digest.hexdigest(), "tag": TAG}


def read_report(data):
    """Reads the channel to its end and reports how it ended on stdout (its caller may be
    gone by then)."""
    reader = data["reader"]
    total, reported, digest = 0, 0, hashlib.sha256()
    try:
        while True:
            chunk = reader.next_chunk()
            if not chunk:
                break
            total += len(chunk)
            digest.update(chunk)
            if total - reported >= 1 << 20:
                emit(f"PROGRESS {total}")
                reported = total
        emit("READ " + json.dumps({"bytes": total, "sha256": digest.hexdigest(), "error": None}))
    except Exception as e:  # noqa: BLE001 - the point is to report it
        emit("READ " + json.dumps({"bytes": total, "error": f"{type(e).__name__}: {e}"}))
    return None


def write_forever(writer) -> None:
    piece = b"x" * CHUNK
    while True:
        writer.write(piece)
        time.sleep(0.02)


def write_slowly(data):
    try:
        write_forever(data["writer"])
    except Exception as e:  # noqa: BLE001
        print(f"writer ended: {e}", file=sys.stderr, flush=True)
    return None


def serve(iii) -> None:
    iii.register_function(f"cluster::slow_read::{TAG}", slow_read)
    iii.register_function(f"cluster::read_report::{TAG}", read_report)
    iii.register_function(f"cluster::write_slowly::{TAG}", write_slowly)
    iii.register_function(f"cluster::sleep::{TAG}", lambda d: time.sleep(float(d.get("secs", 30))) or {"slept": True})
    iii.register_function(f"cluster::whoami::{TAG}", lambda d: {"tag": TAG})
    iii.register_function(f"cluster::big::{TAG}", lambda d: {"text": "x" * int(d.get("size", 0))})
    # Registered through this node; READY once a call through the engine reaches it.
    iii.trigger({"function_id": f"cluster::whoami::{TAG}", "payload": {}})
    emit("READY")
    sys.stdin.read()


def drive_slow(iii, size: int, function: str) -> None:
    channel = iii.create_channel()
    data = blob(size)

    def write() -> None:
        for off in range(0, size, CHUNK):
            channel.writer.write(data[off : off + CHUNK])
        channel.writer.close()

    started = time.monotonic()
    written: dict = {}

    def timed_write() -> None:
        write()
        written["secs"] = time.monotonic() - started

    thread = threading.Thread(target=timed_write)
    thread.start()
    result = iii.trigger({"function_id": function, "payload": {"reader": channel.reader_ref.model_dump(), "pause": 0.002}})
    thread.join()
    sent = {"bytes": size, "sha256": hashlib.sha256(data).hexdigest()}
    out = {"sent": sent, "result": result, "secs": time.monotonic() - started, "writer_secs": written.get("secs")}
    emit("RESULT " + json.dumps(out))


def drive_stream(iii, size: int, function: str) -> None:
    pause = float(os.environ.get("PAUSE", "0.02"))
    channel = iii.create_channel()
    iii.trigger({"function_id": function, "payload": {"reader": channel.reader_ref.model_dump()}, "action": {"type": "void"}})
    data = blob(size)
    for off in range(0, size, CHUNK):
        channel.writer.write(data[off : off + CHUNK])
        time.sleep(pause)
    channel.writer.close()
    emit("RESULT " + json.dumps({"sent": {"bytes": size, "sha256": hashlib.sha256(data).hexdigest()}}))


def drive_kill(iii, function: str, writer_function: str | None) -> None:
    channel = iii.create_channel()
    iii.trigger({"function_id": function, "payload": {"reader": channel.reader_ref.model_dump()}, "action": {"type": "void"}})
    if writer_function:
        payload = {"writer": channel.writer_ref.model_dump()}
        iii.trigger({"function_id": writer_function, "payload": payload, "action": {"type": "void"}})
        emit("STARTED")
        sys.stdin.read()
    else:
        emit("STARTED")
        write_forever(channel.writer)


def call(iii, function: str, payload: dict) -> None:
    started = time.monotonic()
    try:
        result = iii.trigger({"function_id": function, "payload": payload})
        emit("RESULT " + json.dumps({"result": result, "secs": time.monotonic() - started}))
    except Exception as e:  # noqa: BLE001
        code = getattr(e, "code", None)
        emit("ERROR " + json.dumps({"code": code, "message": str(e), "secs": time.monotonic() - started}))


def main() -> None:
    mode, *args = sys.argv[1:]
    iii = register_worker(URL)
    try:
        if mode == "serve":
            serve(iii)
        elif mode == "drive-slow":
            drive_slow(iii, int(args[0]), args[1])
        elif mode == "drive-stream":
            drive_stream(iii, int(args[0]), args[1])
        elif mode == "drive-kill":
            drive_kill(iii, args[0], args[1] if len(args) > 1 else None)
        elif mode == "call":
            call(iii, args[0], json.loads(args[1]) if len(args) > 1 else {})
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        iii.shutdown()


if __name__ == "__main__":
    main()
