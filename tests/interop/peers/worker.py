"""Interop worker built on the *published* Python client (iii-sdk==0.25.0, import name
`iii`), installed by setup.sh into the cache venv. Run it with that venv's python.

    worker.py serve pipeline transform files   register the reader-side functions
    worker.py serve download sse                HTTP handlers (published ``http`` helper)
    worker.py drive pipeline  [--records N] [--parallel K]
    worker.py drive transform [--text-lines N] [--pieces K]
    worker.py drive files     [--size BYTES] [--chunk BYTES] [--pause-after BYTES] [--pause-secs S]

stdout carries only protocol lines: ``READY`` (serve: registrations reached the engine)
and ``RESULT <json>`` / ``ERROR <json>`` (drive). Logs go to stderr. III_URL names the
engine. ``serve download`` serves files from III_INTEROP_FILES_DIR; ``serve sse`` waits
III_INTEROP_SSE_INTERVAL_MS (default 1000) between its events.

The handlers follow the guide's examples; where the guide's Python code uses calls that
0.25 made asynchronous (``reader.read_all()``, ``writer.write()``), the awaited forms are
used, as the newer channel docs show.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import time
import traceback

from iii import InitOptions, register_worker
from iii.helpers import create_channel_async

log = logging.getLogger("interop.worker")
URL = os.environ.get("III_URL", "ws://127.0.0.1:49134")


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def test_bytes(size: int) -> bytes:
    """Deterministic test bytes shared by every language: SHAKE-256("iii-interop:<size>")."""
    return hashlib.shake_256(f"iii-interop:{size}".encode()).digest(size)


class Worker:
    def __init__(self, role: str) -> None:
        if os.environ.get("III_INTEROP_CLIENT_DEFAULTS") == "1":
            # No options at all, as the docs' examples do (telemetry on).
            self.iii = register_worker(URL)
            return
        self.iii = register_worker(
            URL,
            InitOptions(
                worker_name=f"interop-python-{role}-{os.getpid()}",
                otel={"enabled": False},
                enable_metrics_reporting=False,
                invocation_timeout_ms=120_000,
            ),
        )

    # ------------------------------------------------------------ helpers

    async def trigger_retry(self, request: dict, deadline_s: float = 15.0):
        """Trigger, retrying while the target is not registered yet (bounded)."""
        until = time.monotonic() + deadline_s
        while True:
            try:
                return await self.iii.trigger_async(request)
            except Exception as err:  # InvocationError carries .code
                if getattr(err, "code", None) == "function_not_found" and time.monotonic() < until:
                    await asyncio.sleep(0.1)
                    continue
                raise

    def await_ready(self) -> None:
        """Registrations are sent before this call on the same socket, so a round trip
        through the engine to our own function proves the engine has processed them."""
        fid = f"interop::ready::python::{os.getpid()}"

        async def ready(_data):
            return {"ok": True}

        self.iii.register_function(fid, ready)
        deadline = time.monotonic() + 30
        while True:
            try:
                r = self.iii.trigger({"function_id": fid, "payload": {}, "timeout_ms": 10_000})
                break
            except Exception as err:
                if getattr(err, "code", None) == "function_not_found" and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise
        if not (isinstance(r, dict) and r.get("ok")):
            raise RuntimeError(f"ready probe returned {r!r}")

    # ------------------------------------------------------------ functions (guide code)

    def register_pipeline_consumer(self) -> None:
        async def consumer_handler(input_data):
            reader = input_data["reader"]
            raw = await reader.read_all()
            records = json.loads(raw.decode("utf-8"))
            total = sum(r["value"] for r in records)
            return {"label": input_data["label"], "count": len(records), "total": total, "runtime": "python"}

        self.iii.register_function("pipeline::consumer", consumer_handler)

    def register_pipeline_producer(self) -> None:
        async def producer_handler(input_data):
            records = input_data["records"]
            channel = await create_channel_async(self.iii)

            payload = json.dumps(records).encode("utf-8")
            await channel.writer.write(payload)
            await channel.writer.close_async()

            return await self.trigger_retry(
                {
                    "function_id": "pipeline::consumer",
                    "payload": {"label": "batch-001", "reader": channel.reader_ref.model_dump()},
                }
            )

        self.iii.register_function("pipeline::producer", producer_handler)

    def register_transform_worker(self) -> None:
        async def transform_worker(input_data):
            reader = input_data["reader"]
            writer = input_data["writer"]
            chunks: list[bytes] = []
            count = 0
            async for chunk in reader:
                chunks.append(chunk)
                count += 1
                await writer.send_message_async(json.dumps({"type": "progress", "chunks": count}))
            result = b"".join(chunks).decode("utf-8").upper()
            await writer.write(result.encode("utf-8"))
            await writer.close_async()
            return {"status": "done", "chunks": count, "runtime": "python"}

        self.iii.register_function("transform::worker", transform_worker)

    def register_transform_coordinator(self) -> None:
        async def coordinator(input_data):
            input_channel = await create_channel_async(self.iii)
            output_channel = await create_channel_async(self.iii)

            progress: list = []
            output_channel.reader.on_message(lambda msg: progress.append(json.loads(msg)))

            text = input_data["text"].encode("utf-8")
            pieces = int(input_data.get("pieces") or 1)
            step = -(-len(text) // pieces)
            for i in range(pieces):
                await input_channel.writer.write(text[i * step : (i + 1) * step])
            await input_channel.writer.close_async()

            trigger = asyncio.ensure_future(
                self.trigger_retry(
                    {
                        "function_id": "transform::worker",
                        "payload": {
                            "reader": input_channel.reader_ref.model_dump(),
                            "writer": output_channel.writer_ref.model_dump(),
                        },
                    }
                )
            )
            result_chunks: list[bytes] = []

            async def read_output() -> None:
                async for chunk in output_channel.reader:
                    result_chunks.append(chunk)

            reading = asyncio.ensure_future(read_output())
            # A failed worker call is reported at once rather than after the output read times out.
            done, _ = await asyncio.wait({reading, trigger}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    reading.cancel()
                    raise task.exception()
            await reading
            worker = await trigger
            return {"result": b"".join(result_chunks).decode("utf-8"), "progress": progress, "worker": worker}

        self.iii.register_function("transform::coordinator", coordinator)

    def register_files_process(self) -> None:
        async def process_file(input_data):
            reader = input_data["reader"]
            digest = hashlib.sha256()
            total = 0
            chunks = 0
            async for chunk in reader:
                total += len(chunk)
                chunks += 1
                digest.update(chunk)
            return {
                "filename": input_data["filename"],
                "bytes": total,
                "chunks": chunks,
                "sha256": digest.hexdigest(),
                "runtime": "python",
            }

        self.iii.register_function("files::process", process_file)

    def register_files_download(self) -> None:
        """Guide "Example 1: File Download via HTTP Endpoint" (Python tab), serving from
        III_INTEROP_FILES_DIR instead of /data/reports."""
        # The channel guide imports `http` from `iii.utils`; the published 0.25 packages ship it in
        # iii-helpers (imported here so that the other roles do not need that package).
        from iii_helpers.http import http

        directory = os.environ.get("III_INTEROP_FILES_DIR", "/data/reports")

        @http
        async def download_file(req, response):
            filename = req.path_params.get("filename")
            file_path = f"{directory}/{filename}"

            with open(file_path, "rb") as f:
                await response.status(200)
                await response.headers({"content-type": "application/pdf"})
                await response.writer.write(f.read())
                await response.writer.close_async()

        self.iii.register_function("files::download", download_file)

        self.iii.register_trigger(
            {
                "type": "http",
                "function_id": "files::download",
                "config": {"api_path": "/files/:filename", "http_method": "GET"},
            }
        )

    def register_events_stream(self) -> None:
        """The guide's SSE example (Example 2 has a Node tab only) with the Python helper:
        five progress events III_INTEROP_SSE_INTERVAL_MS apart, then a done event."""
        from iii_helpers.http import http

        interval = float(os.environ.get("III_INTEROP_SSE_INTERVAL_MS", "1000")) / 1000

        @http
        async def stream_events(_req, response):
            await response.status(200)
            await response.headers(
                {"content-type": "text/event-stream", "cache-control": "no-cache", "connection": "keep-alive"}
            )

            for i in range(1, 6):
                frame = f"id: {i}\nevent: progress\ndata: {json.dumps({'step': i, 'total': 5})}\n\n"
                await response.writer.write(frame.encode("utf-8"))
                await asyncio.sleep(interval)

            done = f"id: 6\nevent: done\ndata: {json.dumps({'message': 'complete'})}\n\n"
            await response.writer.write(done.encode("utf-8"))
            await response.writer.close_async()

        self.iii.register_function("events::stream", stream_events)

        self.iii.register_trigger(
            {
                "type": "http",
                "function_id": "events::stream",
                "config": {"api_path": "/events/stream", "http_method": "GET"},
            }
        )

    # ------------------------------------------------------------ drivers

    def drive_pipeline(self, args) -> object:
        self.register_pipeline_producer()
        self.await_ready()
        def records(count: int) -> list:
            return [{"name": f"item-{i}", "value": i} for i in range(1, count + 1)]

        def flow(count: int):
            return self.trigger_retry({"function_id": "pipeline::producer", "payload": {"records": records(count)}})

        if args.parallel > 0:
            # `parallel` flows at once, flow i with records + i records: answers must not cross.
            async def all_flows():
                return list(await asyncio.gather(*(flow(args.records + i) for i in range(args.parallel))))

            return self.run(all_flows())
        return self.run(flow(args.records))

    def drive_transform(self, args) -> object:
        self.register_transform_coordinator()
        self.await_ready()
        text = "".join(f"the quick brown fox jumps over the lazy dog {i}\n" for i in range(args.text_lines))
        return self.run(
            self.trigger_retry(
                {"function_id": "transform::coordinator", "payload": {"text": text, "pieces": args.pieces}}
            )
        )

    def drive_files(self, args) -> object:
        self.await_ready()
        data = test_bytes(args.size)

        async def flow():
            channel = await create_channel_async(self.iii)
            trigger = asyncio.ensure_future(
                self.trigger_retry(
                    {
                        "function_id": "files::process",
                        "payload": {"filename": f"blob-{args.size}.bin", "reader": channel.reader_ref.model_dump()},
                        "timeout_ms": 300_000,
                    }
                )
            )
            paused = False
            for off in range(0, args.size, args.chunk):
                if not paused and args.pause_after >= 0 and off >= args.pause_after:
                    paused = True
                    log.warning("pausing %ss after %d bytes", args.pause_secs, off)
                    await asyncio.sleep(args.pause_secs)
                await channel.writer.write(data[off : off + args.chunk])
            await channel.writer.close_async()
            result = await trigger
            return {"result": result, "sent": {"bytes": args.size, "sha256": hashlib.sha256(data).hexdigest()}}

        return self.run(flow())

    def run(self, coro):
        """Runs a coroutine on the client's own event loop (channels and triggers live there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.iii._loop).result()


def main() -> int:
    logging.basicConfig(level=os.environ.get("INTEROP_LOG", "WARNING"), stream=sys.stderr)
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["serve", "drive"])
    p.add_argument("flows", nargs="+")
    p.add_argument("--records", type=int, default=5000)
    p.add_argument("--parallel", type=int, default=0)
    p.add_argument("--text-lines", type=int, default=200)
    p.add_argument("--pieces", type=int, default=8)
    p.add_argument("--size", type=int, default=20 * 1024 * 1024)
    p.add_argument("--chunk", type=int, default=256 * 1024)
    p.add_argument("--pause-after", type=int, default=-1)
    p.add_argument("--pause-secs", type=float, default=0)
    args = p.parse_args()

    w = Worker(args.role)
    if args.role == "serve":
        registrars = {
            "pipeline": w.register_pipeline_consumer,
            "transform": w.register_transform_worker,
            "files": w.register_files_process,
            "download": w.register_files_download,
            "sse": w.register_events_stream,
        }
        try:
            for flow in args.flows:
                registrars[flow]()
            w.await_ready()
        except Exception:
            traceback.print_exc()
            os._exit(1)  # the client's loop thread is not a daemon
        emit("READY")
        # Serve until the harness closes stdin or kills us.
        sys.stdin.read()
        w.iii.shutdown()
        return 0

    flow = args.flows[0]
    try:
        result = {"pipeline": w.drive_pipeline, "transform": w.drive_transform, "files": w.drive_files}[flow](args)
    except Exception as err:
        emit("ERROR " + json.dumps({"code": getattr(err, "code", None), "message": str(err), "stack": traceback.format_exc()}))
        os._exit(1)
    emit("RESULT " + json.dumps(result))
    try:
        w.iii.shutdown()
    finally:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
