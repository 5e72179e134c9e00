"""Helpers both benchmark workers share (ours_worker.py runs with our package's venv,
published_worker.py with the published client's; this module imports neither)."""

from __future__ import annotations

import os
import sys

CHUNK = 64 * 1024
WARMUP_TRIPS = 200


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def machine_cpu() -> tuple:
    """CPU seconds the whole machine has spent so far (every core), from /proc/stat: busy
    (user, nice, system, irq, softirq) and stolen by the hypervisor (steal). With our own
    processes' CPU subtracted, busy shows what else ran during a measurement."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def since(start: tuple) -> dict:
    """The machine's busy and stolen CPU seconds since `start` (a machine_cpu() reading)."""
    now = machine_cpu()
    return {"system_busy": now[0] - start[0], "steal": now[1] - start[1]}


def chunk_bytes() -> bytes:
    # Not all zeros, so nothing on the way can shortcut the data.
    return bytes((i * 2654435761 >> 13) & 0xFF for i in range(CHUNK))


def percentiles(samples: list, secs: float, cpu: float, machine: dict, echo_cpu: float) -> dict:
    """p50 and p99 of the timed trips, with this process's and the echo's CPU seconds and the
    machine's busy and stolen seconds over all trips (`secs`), for the driver's load figures."""
    pick = lambda q: sorted(samples)[round((len(samples) - 1) * q)]  # noqa: E731
    return {"count": len(samples), "p50_us": pick(0.50), "p99_us": pick(0.99), "secs": secs, "cpu": cpu, "echo_cpu": echo_cpu, **machine}
