"""What the package tells a user on stderr: a write that waits because no reader was started
is reported after a few seconds, naming the channel, as a plain (uncoloured) log line."""

import time

import pytest

from helpers import PROGRAMS, start_python, stop


@pytest.mark.timeout(30)
def test_a_write_stalled_without_a_reader_warns_naming_the_channel(engine, request):
    proc = start_python(engine, request, PROGRAMS / "stalled_writer.py", env={"III_LOG": "warn"})
    try:
        channel_id = proc.stdout.readline().decode().strip()
        assert channel_id, "the program printed no channel id"
        deadline = time.monotonic() + 15
        while "waited 5 s for its reader" not in proc.stderr_path.read_text():
            assert time.monotonic() < deadline, proc.stderr_path.read_text()
            time.sleep(0.2)
    finally:
        stop(proc)
    warning = [line for line in proc.stderr_path.read_text().splitlines() if "waited 5 s" in line]
    assert len(warning) == 1, warning
    assert " WARN " in warning[0] and channel_id in warning[0], warning
    assert "Start the call that reads before writing" in warning[0]
    assert "\x1b[" not in warning[0]
