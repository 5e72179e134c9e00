"""The channel guide's (docs/ARCHITECTURE.md, Examples) "Streaming Data Between Functions" example (Python tab), as written:
`pipeline::producer` streams JSON records through a channel to `pipeline::consumer`, which
returns their count and sum. Both handlers are plain (sync) functions using the blocking API.

Run it against a running engine (default ws://localhost:49134; set III_URL otherwise):

    iii &
    python examples/python/pipeline.py [RECORDS]

It registers both functions, triggers the producer with RECORDS records (default 5000) and
prints its result as one JSON line.
"""

import json
import os
import sys

from iii import register_worker
from iii.channels import ChannelReader

iii_client = register_worker(os.environ.get("III_URL", "ws://localhost:49134"))


def consumer_handler(input_data):
    reader: ChannelReader = input_data["reader"]
    raw = reader.read_all()
    records = json.loads(raw.decode("utf-8"))
    total = sum(r["value"] for r in records)

    return {
        "label": input_data["label"],
        "count": len(records),
        "total": total,
    }


def producer_handler(input_data):
    records = input_data["records"]
    channel = iii_client.create_channel()

    payload = json.dumps(records).encode("utf-8")
    channel.writer.write(payload)
    channel.writer.close()

    result = iii_client.trigger({
        "function_id": "pipeline::consumer",
        "payload": {
            "label": "batch-001",
            "reader": channel.reader_ref.model_dump(),
        },
    })

    return result


def main(count: int = 5000) -> None:
    iii_client.register_function("pipeline::consumer", consumer_handler)
    iii_client.register_function("pipeline::producer", producer_handler)
    records = [{"name": f"item-{i}", "value": i} for i in range(1, count + 1)]
    result = iii_client.trigger({"function_id": "pipeline::producer", "payload": {"records": records}})
    print(json.dumps(result), flush=True)
    iii_client.shutdown()


if __name__ == "__main__":
    main(*map(int, sys.argv[1:2]))
