"""Writes more than the channel's buffer before any reader was started, so the write waits;
prints the channel id first. The test reads the warning the package logs on stderr."""

import os
import time

import iii

worker = iii.register_worker(os.environ["III_URL"])
channel = worker.create_channel()
print(channel.writer_ref.model_dump()["channel_id"], flush=True)
channel.writer.write(b"x" * (64 * 1024 * 1024))  # more than the buffer and any socket holds
time.sleep(600)
