"""Our Python package as a peer of the interop workers (tests/interop: the published Node
client's ``worker.mjs`` and our Rust SDK's ``interop_worker``), speaking their command line:

    peer.py serve pipeline transform files      register the reader-side functions
    peer.py drive pipeline  [--records N]
    peer.py drive transform [--text-lines N] [--pieces K]
    peer.py drive files     [--size BYTES] [--chunk BYTES]

stdout carries only ``READY`` (serve) and ``RESULT <json>`` / ``ERROR <json>`` (drive). The
pipeline and transform handlers are the ones of examples/python; ``files::process`` hashes
what it reads. III_URL names the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "python"))

import bidirectional  # noqa: E402  (examples/python)
import pipeline  # noqa: E402

iii_client = pipeline.iii_client


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def blob(size: int) -> bytes:
    """The interop suite's test bytes: SHAKE-256("iii-interop:<size>")."""
    return hashlib.shake_256(f"iii-interop:{size}".encode()).digest(size)


async def process_file(input_data: dict) -> dict:
    digest = hashlib.sha256()
    total = chunks = 0
    async for chunk in input_data["reader"]:
        digest.update(chunk)
        total += len(chunk)
        chunks += 1
    return {
        "filename": input_data["filename"],
        "bytes": total,
        "chunks": chunks,
        "sha256": digest.hexdigest(),
        "runtime": "python",
    }


def serve(flows: list[str]) -> None:
    for flow in flows:
        if flow == "pipeline":
            iii_client.register_function("pipeline::consumer", pipeline.consumer_handler)
        elif flow == "transform":
            bidirectional.iii_client.register_function("transform::worker", bidirectional.transform_worker)
        elif flow == "files":
            iii_client.register_function("files::process", process_file)
        else:
            raise SystemExit(f"unknown flow {flow}")
    iii_client.ready()
    bidirectional.iii_client.ready()
    emit("READY")
    sys.stdin.read()  # until the harness closes stdin


async def send_file(size: int, chunk: int) -> dict:
    data = blob(size)
    channel = await iii_client.create_channel_async()
    result = asyncio.ensure_future(iii_client.trigger_async({
        "function_id": "files::process",
        "payload": {"filename": f"blob-{size}.bin", "reader": channel.reader_ref.model_dump()},
        "timeout_ms": 120_000,
    }))
    for offset in range(0, size, chunk):
        await channel.writer.write(data[offset:offset + chunk])
    await channel.writer.close_async()
    return {"result": await result, "sent": {"bytes": size, "sha256": hashlib.sha256(data).hexdigest()}}


def drive(flow: str, args: argparse.Namespace) -> object:
    if flow == "pipeline":
        iii_client.register_function("pipeline::producer", pipeline.producer_handler)
        iii_client.ready()
        records = [{"name": f"item-{i}", "value": i} for i in range(1, args.records + 1)]
        return iii_client.trigger({"function_id": "pipeline::producer", "payload": {"records": records}})
    if flow == "transform":
        coordinator = bidirectional.iii_client
        coordinator.register_function("transform::coordinator", bidirectional.transform_coordinator)
        coordinator.ready()
        text = "".join(f"the quick brown fox jumps over the lazy dog {i}\n" for i in range(args.text_lines))
        return coordinator.trigger({
            "function_id": "transform::coordinator",
            "payload": {"text": text, "pieces": args.pieces},
        })
    if flow == "files":
        return asyncio.run(send_file(args.size, args.chunk))
    raise SystemExit(f"unknown flow {flow}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["serve", "drive"])
    parser.add_argument("flows", nargs="+")
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--text-lines", type=int, default=200)
    parser.add_argument("--pieces", type=int, default=8)
    parser.add_argument("--size", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--chunk", type=int, default=256 * 1024)
    args = parser.parse_args()
    try:
        if args.role == "serve":
            serve(args.flows)
        else:
            emit("RESULT " + json.dumps(drive(args.flows[0], args)))
    except Exception as error:  # noqa: BLE001 (reported to the harness)
        emit("ERROR " + json.dumps({
            "code": getattr(error, "code", None),
            "message": str(error),
            "stack": traceback.format_exc(),
        }))
        return 1
    finally:
        iii_client.shutdown()
        bidirectional.iii_client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
