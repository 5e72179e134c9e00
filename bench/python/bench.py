#!/usr/bin/env python3
"""Python → Python through the iii engine: our package `iii` (bindings-python) against the
published client (PyPI iii-sdk==0.25.0, also import name `iii`) on the same engine binary,
in the same run.

Needs only a plain python3: every client runs in worker processes started with the python
of the venv it is installed in (the two packages share the import name, so never one venv).
`bench/python/run.sh` builds everything and runs this; by hand:

    python3 bench/python/bench.py --ours-python target/python-bench-venv/bin/python \\
        --engine target/release/iii [--rounds 3] [--bytes 1073741824] [--quick]

Per round, one fresh `iii` engine process (release build, default options: one worker
thread), and on it, clients in alternating order (round 1 published first, round 2 ours
first, ...):

- throughput: a writer process serves `bench::write`; a reader process (same client) creates
  a channel, calls `bench::write` with the writer's ref, and reads the stream; it times from
  its first chunk to the end and counts the bytes (which must equal what was sent). 64 KiB
  writes. Our package twice: its blocking API (plain handler, `writer.write(b)`, `for chunk in
  reader`) and its awaitable API (`async def`, `await writer.write(b)`, `async for`); the
  published client with its (only, async) API, every write awaited.
- message round trip: a ping process creates two channels and calls `bench::echo` (an echo
  process) with the reader of one and the writer of the other; it times `--trips` text
  messages there and back (after 200 untimed), four WebSocket hops through the engine each.
- channel setups: one program for both clients (setups.py, the asyncio API they share): a
  serving process counts the bytes of each reader ref `bench::count` is called with; a setups
  process creates a channel, calls `bench::count` with its reader ref, writes 1 KiB, closes and
  awaits the call, `--setups` times one at a time and then 16 in flight (after 50 untimed).
- context, same engine: the Rust SDK's relay (iii-bench's channel writer and reader
  processes) and the one-hop ceiling (one plain tokio-tungstenite WebSocket between two
  processes, no engine), when target/release/iii-bench exists.

Figures are medians over the rounds (this VM varies by ±30 % between runs). CPU figures are
seconds per GiB moved, read from /proc for the engine and from each worker's
time.process_time() for the clients (the reader's from its first chunk).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GIB = 1 << 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Channel setups kept in flight by the parallel setups figure.
SETUPS_IN_FLIGHT = 16

# name: (worker script, --api value, label)
VARIANTS = {
    "published": ("published_worker.py", "async", "published iii-sdk 0.25.0 (async API)"),
    "ours-sync": ("ours_worker.py", "sync", "ours, blocking API"),
    "ours-async": ("ours_worker.py", "async", "ours, awaitable API"),
}


def log(line: str) -> None:
    print(line, flush=True)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Proc:
    """A child process whose stdout lines we read; stdin stays open until stop()."""

    def __init__(self, args: list, env: dict | None = None) -> None:
        self.args = args
        # stderr to a file: a pipe nobody reads could fill and stall the child.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.popen = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )

    def line(self, prefix: str, timeout: float) -> str:
        """The first stdout line starting with `prefix` (the rest of it), or an error."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.popen.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name()}: no {prefix!r} line within {timeout:.0f} s")
                if not selector.select(left):
                    continue
                line = self.popen.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.name()}: exited before {prefix!r}: {self.stderr_tail()}")
                if line.startswith("ERROR "):
                    raise RuntimeError(f"{self.name()}: {line.strip()} {self.stderr_tail()}")
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()

    def name(self) -> str:
        return " ".join(Path(str(a)).name for a in self.args[:4])

    def stderr_tail(self) -> str:
        try:
            self.popen.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            try:
                self.popen.stdin.close()
                self.popen.wait(timeout)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.popen.kill()
                self.popen.wait()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


class Engine(Proc):
    def __init__(self, binary: Path) -> None:
        # Its log goes to stderr; a pipe nobody reads could fill and stall it.
        self.args = [binary]
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.popen = subprocess.Popen(
            [str(binary), "--port", "0", "--http-port", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        rest = self.line("iii engine listening on ", 30)
        self.url = rest.split()[0]

    def cpu(self) -> float:
        return cpu_seconds(self.popen.pid)

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pythons = {"published": args.published_python, "ours-sync": args.ours_python, "ours-async": args.ours_python}

    def worker(self, variant: str, url: str, role: str, *extra) -> Proc:
        script, api, _ = VARIANTS[variant]
        return Proc([self.pythons[variant], HERE / script, url, role, "--api", api, *extra])

    # ------------------------------------------------------------ throughput

    def throughput(self, engine: Engine, variant: str, total: int) -> dict:
        writer = self.worker(variant, engine.url, "writer")
        reader = None
        try:
            writer.line("READY", 60)
            cpu = engine.cpu()
            started = time.monotonic()
            reader = self.worker(variant, engine.url, "reader", "--bytes", total)
            result = json.loads(reader.line("RESULT ", self.args.timeout))
            result["wall"] = time.monotonic() - started
            result["engine_cpu"] = engine.cpu() - cpu
        finally:
            if reader is not None:
                reader.stop()
            writer.stop()
        result["expected"] = total
        result["mb_s"] = result["bytes"] / max(result["secs"], 1e-9) / 1e6
        gib = max(result["bytes"], 1) / GIB
        result["engine_per_gib"] = result["engine_cpu"] / gib
        result["clients_per_gib"] = (result["cpu"] + result.get("writer", {}).get("cpu", 0.0)) / gib
        # CPU that other processes of the machine used meanwhile (it is shared): the machine's
        # busy time over the reader's window, less the engine's and the two workers' own.
        others = result.get("system_busy", 0.0) - result["cpu"] - result.get("writer", {}).get("cpu", 0.0) - result["engine_cpu"]
        result["others_share"] = max(others, 0.0) / max(result["secs"], 1e-9) / (os.cpu_count() or 1)
        result["steal_share"] = result.get("steal", 0.0) / max(result["secs"], 1e-9) / (os.cpu_count() or 1)
        return result

    # ------------------------------------------------------------ round trips

    def round_trips(self, engine: Engine, variant: str) -> dict:
        echo = self.worker(variant, engine.url, "echo")
        ping = None
        try:
            echo.line("READY", 60)
            cpu = engine.cpu()
            ping = self.worker(variant, engine.url, "ping", "--count", self.args.trips)
            result = json.loads(ping.line("RESULT ", self.args.timeout))
            # As for throughput: what other processes of the machine used during the trips
            # (the engine's CPU is counted over the whole ping run, so this errs low).
            others = result["system_busy"] - result["cpu"] - result["echo_cpu"] - (engine.cpu() - cpu)
            result["others_share"] = max(others, 0.0) / max(result["secs"], 1e-9) / (os.cpu_count() or 1)
            result["steal_share"] = result.get("steal", 0.0) / max(result["secs"], 1e-9) / (os.cpu_count() or 1)
            return result
        finally:
            if ping is not None:
                ping.stop()
            echo.stop()

    # ------------------------------------------------------------ channel setups

    def setups(self, engine: Engine, python: str) -> dict:
        """Setups per second with the client of `python`, one at a time and 16 in flight."""
        script = HERE / "setups.py"
        server = Proc([python, script, engine.url, "serve"])
        try:
            server.line("READY", 60)
            rates = {}
            for in_flight in (1, SETUPS_IN_FLIGHT):
                run = Proc([python, script, engine.url, "run", "--count", self.args.setups, "--in-flight", in_flight])
                try:
                    rates[in_flight] = json.loads(run.line("RESULT ", self.args.timeout))["per_sec"]
                finally:
                    run.stop()
            return {"serial": rates[1], "parallel": rates[SETUPS_IN_FLIGHT]}
        finally:
            server.stop()

    # ------------------------------------------------------------ context (Rust, one hop)

    def rust_relay(self, engine: Engine, total: int) -> dict:
        """The Rust SDK's writer and reader processes through the same engine; the channel
        is created by a worker of our Python package (any client would do)."""
        holder = Proc([self.args.ours_python, HERE / "ours_worker.py", engine.url, "mkchannel"])
        procs = [holder]
        try:
            refs = json.loads(holder.line("REFS ", 60))
            cpu = engine.cpu()
            reader = Proc([self.args.rust_bench, "channel-reader", "--url", engine.url, "--reference", json.dumps(refs["reader"])])
            procs.append(reader)
            writer = Proc(
                [self.args.rust_bench, "channel-writer", "--url", engine.url, "--reference", json.dumps(refs["writer"]), "--bytes", total]
            )
            procs.append(writer)
            result = json.loads("{" + reader.line("{", self.args.timeout))
            writer_cpu = float(writer.line("DONE ", 60))
            result["engine_cpu"] = engine.cpu() - cpu
        finally:
            for proc in reversed(procs):
                proc.stop()
        result["mb_s"] = result["bytes"] / max(result["secs"], 1e-9) / 1e6
        result["engine_per_gib"] = result["engine_cpu"] / (max(result["bytes"], 1) / GIB)
        result["writer_cpu"] = writer_cpu
        return result

    def one_hop(self, total: int) -> dict:
        sink = Proc([self.args.rust_bench, "sink-server"])
        procs = [sink]
        try:
            port = sink.line("READY ", 30)
            writer = Proc([self.args.rust_bench, "hop-writer", "--url", f"ws://127.0.0.1:{port}/", "--bytes", total])
            procs.append(writer)
            result = json.loads("{" + sink.line("{", self.args.timeout))
            writer.line("DONE ", 60)
        finally:
            for proc in reversed(procs):
                proc.stop()
        result["mb_s"] = result["bytes"] / max(result["secs"], 1e-9) / 1e6
        return result


def load(result: dict) -> str:
    """The disturbance during a measurement, as shares of the machine's cores."""
    return f"other processes {100 * result['others_share']:.0f} %, hypervisor steal {100 * result['steal_share']:.0f} % of the machine"


def median(values: list) -> float:
    return statistics.median(values) if values else float("nan")


def version_of(python: str, code: str) -> str:
    try:
        return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip() or "?"
    except OSError as error:
        return f"? ({error})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", type=Path, default=ROOT / "target/release/iii")
    parser.add_argument(
        "--ours-python",
        default=os.environ.get("III_BENCH_OURS_PYTHON", str(ROOT / "target/python-bench-venv/bin/python")),
        help="python of the venv with our package (default: target/python-bench-venv, made by run.sh)",
    )
    parser.add_argument(
        "--published-python",
        default=os.environ.get("III_BENCH_PUBLISHED_PYTHON", str(Path.home() / ".cache/iii-interop/py/bin/python")),
        help="python of the venv with iii-sdk==0.25.0 (tests/interop/setup.sh)",
    )
    parser.add_argument("--rust-bench", default=str(ROOT / "target/release/iii-bench"), help="iii-bench binary for the context figures ('' to skip)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=GIB, help="bytes per transfer (default 1 GiB)")
    parser.add_argument("--published-bytes", type=int, help="bytes per transfer for the published client (default: --bytes)")
    parser.add_argument("--trips", type=int, default=2000)
    parser.add_argument("--setups", type=int, default=500, help="channel setups per figure (0 skips them)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one transfer or round-trip run may take")
    parser.add_argument("--variants", default="published,ours-sync,ours-async")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 MiB, 200 trips, one round")
    args = parser.parse_args()
    if args.quick:
        args.bytes, args.trips, args.rounds, args.setups = 32 << 20, 200, 1, 100
    published_bytes = args.published_bytes or args.bytes
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    with_context = bool(args.rust_bench) and os.access(args.rust_bench, os.X_OK)

    ours_version = version_of(args.ours_python, "import iii; print(iii.__version__)")
    published_version = version_of(
        args.published_python, "import importlib.metadata as m; print(m.version('iii-sdk'))"
    )
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    build_file = Path(args.ours_python).parent.parent / "iii-build.txt"
    build = build_file.read_text().strip() if build_file.exists() else "build commit unknown"
    log(
        f"python bench: commit {commit}, engine {args.engine}, ours iii {ours_version} ({args.ours_python}; {build}), "
        f"published iii-sdk {published_version} ({args.published_python}); {args.rounds} rounds, "
        f"{args.bytes / 2**20:.0f} MiB per transfer (published {published_bytes / 2**20:.0f} MiB), 64 KiB writes, "
        f"{args.trips} round trips"
    )

    bench = Bench(args)
    rates: dict = {v: [] for v in variants}
    trips: dict = {v: [] for v in variants}
    engine_cpu: dict = {v: [] for v in variants}
    client_cpu: dict = {v: [] for v in variants}
    round_ratios: dict = {v: [] for v in variants}
    failures: list = []
    rust, hop = [], []
    setup_sides = {"published": ("published iii-sdk 0.25.0", args.published_python), "ours": ("ours", args.ours_python)}
    setup_rates: dict = {side: {"serial": [], "parallel": []} for side in setup_sides}
    for round_no in range(1, args.rounds + 1):
        order = variants if round_no % 2 == 1 else list(reversed(variants))
        engine = Engine(args.engine)
        round_rates: dict = {}
        try:
            for variant in order:
                total = published_bytes if variant == "published" else args.bytes
                try:
                    r = bench.throughput(engine, variant, total)
                except Exception as error:  # reported, and the round goes on
                    failures.append(f"round {round_no} {variant} throughput: {error}")
                    log(f"round {round_no}: {VARIANTS[variant][2]}: FAILED: {error}")
                    continue
                complete = r["bytes"] == r["expected"] and "error" not in r
                log(
                    f"round {round_no}: {VARIANTS[variant][2]}: {r['mb_s']:.0f} MB/s "
                    f"({r['bytes']} of {r['expected']} bytes in {r['secs']:.2f} s{'' if complete else ', INCOMPLETE'}"
                    f"{', ' + r['error'] if 'error' in r else ''}; "
                    f"CPU s per GiB: engine {r['engine_per_gib']:.2f}, reader {r['cpu'] / (max(r['bytes'], 1) / GIB):.2f}, "
                    f"writer {r.get('writer', {}).get('cpu', float('nan')) / (max(r['bytes'], 1) / GIB):.2f}; "
                    f"{load(r)})"
                )
                if complete:
                    round_rates[variant] = r["mb_s"]
                    rates[variant].append(r["mb_s"])
                    engine_cpu[variant].append(r["engine_per_gib"])
                    client_cpu[variant].append(r["clients_per_gib"])
                else:
                    failures.append(f"round {round_no} {variant}: received {r['bytes']} of {r['expected']} bytes {r.get('error', '')}")
            if with_context:
                try:
                    r = bench.rust_relay(engine, args.bytes)
                    log(
                        f"round {round_no}: context: Rust SDK relay through the same engine {r['mb_s']:.0f} MB/s "
                        f"({r['bytes']} bytes; engine {r['engine_per_gib']:.2f} CPU s per GiB)"
                    )
                    if r["bytes"] == args.bytes:
                        rust.append(r["mb_s"])
                except Exception as error:
                    log(f"round {round_no}: context: Rust SDK relay FAILED: {error}")
            for variant in order:
                try:
                    t = bench.round_trips(engine, variant)
                except Exception as error:
                    failures.append(f"round {round_no} {variant} round trips: {error}")
                    log(f"round {round_no}: {VARIANTS[variant][2]}: round trips FAILED: {error}")
                    continue
                trips[variant].append(t)
                log(
                    f"round {round_no}: {VARIANTS[variant][2]}: message round trip ({t['count']} trips) "
                    f"p50 {t['p50_us']:.0f} µs, p99 {t['p99_us']:.0f} µs ({load(t)})"
                )
            for side in (list(setup_sides) if round_no % 2 == 1 else list(reversed(setup_sides))) if args.setups else []:
                label, python = setup_sides[side]
                try:
                    r = bench.setups(engine, python)
                except Exception as error:
                    failures.append(f"round {round_no} {side} setups: {error}")
                    log(f"round {round_no}: {label}: setups FAILED: {error}")
                    continue
                setup_rates[side]["serial"].append(r["serial"])
                setup_rates[side]["parallel"].append(r["parallel"])
                log(
                    f"round {round_no}: {label}: channel setups {r['serial']:.0f}/s one at a time, "
                    f"{r['parallel']:.0f}/s {SETUPS_IN_FLIGHT} in flight ({args.setups} each)"
                )
        finally:
            engine.stop()
        if "published" in round_rates:
            for variant in round_rates:
                if variant != "published":
                    round_ratios[variant].append(round_rates[variant] / round_rates["published"])
            log(
                f"round {round_no}: vs published, same round: "
                + ", ".join(f"{VARIANTS[v][2]} {round_rates[v] / round_rates['published']:.2f} ×" for v in round_rates if v != "published")
            )
        if with_context:
            try:
                h = bench.one_hop(args.bytes)
                hop.append(h["mb_s"])
                log(f"round {round_no}: context: one-hop ceiling (plain WebSocket, no engine) {h['mb_s']:.0f} MB/s")
            except Exception as error:
                log(f"round {round_no}: context: one-hop ceiling FAILED: {error}")

    # ------------------------------------------------------------ summary
    log("")
    log(f"medians over {args.rounds} rounds:")
    for variant in variants:
        p50 = median([t["p50_us"] for t in trips[variant]])
        p99 = median([t["p99_us"] for t in trips[variant]])
        log(
            f"  {VARIANTS[variant][2]}: {median(rates[variant]):.0f} MB/s ({len(rates[variant])} complete rounds), "
            f"engine {median(engine_cpu[variant]):.2f} / clients {median(client_cpu[variant]):.2f} CPU s per GiB; "
            f"round trip p50 {p50:.0f} µs, p99 {p99:.0f} µs"
        )
    for side, (label, _) in setup_sides.items():
        if setup_rates[side]["serial"]:
            log(
                f"  {label}: channel setups {median(setup_rates[side]['serial']):.0f}/s one at a time, "
                f"{median(setup_rates[side]['parallel']):.0f}/s {SETUPS_IN_FLIGHT} in flight"
            )
    if setup_rates["ours"]["serial"] and setup_rates["published"]["serial"]:
        serial = median(setup_rates["ours"]["serial"]) / median(setup_rates["published"]["serial"])
        parallel = median(setup_rates["ours"]["parallel"]) / median(setup_rates["published"]["parallel"])
        log(f"ours / published, channel setups: {serial:.2f} × one at a time, {parallel:.2f} × {SETUPS_IN_FLIGHT} in flight")
    if rust:
        log(f"  context: Rust SDK relay through the same engine {median(rust):.0f} MB/s")
    if hop:
        log(f"  context: one-hop ceiling (plain WebSocket, no engine) {median(hop):.0f} MB/s")
    published = median(rates.get("published", []))
    ours = {v: median(rates[v]) for v in variants if v.startswith("ours") and rates[v]}
    if ours and published == published and published > 0:
        best = max(ours, key=ours.get)
        ratio = ours[best] / published
        log(
            f"ours ({VARIANTS[best][2]}, the faster of ours) / published: {ratio:.2f} × "
            f"(target ≥ 1.2 ×: {'met' if ratio >= 1.2 else 'NOT met'})"
        )
        for variant in ours:
            log(
                f"  {VARIANTS[variant][2]} / published: {ours[variant] / published:.2f} × (ratio of the medians); "
                f"median of the per-round ratios {median(round_ratios[variant]):.2f} × "
                f"(rounds: {', '.join(f'{x:.2f}' for x in round_ratios[variant])})"
            )
    for failure in failures:
        log(f"failure: {failure}")

    log("")
    log("| client | throughput (median) | vs published | engine CPU s/GiB | clients CPU s/GiB | round trip p50 / p99 |")
    log("|---|---|---|---|---|---|")
    for variant in variants:
        p50 = median([t["p50_us"] for t in trips[variant]])
        p99 = median([t["p99_us"] for t in trips[variant]])
        versus = median(rates[variant]) / published if published == published and published > 0 else float("nan")
        log(
            f"| {VARIANTS[variant][2]} | {median(rates[variant]):.0f} MB/s | {versus:.2f} × | "
            f"{median(engine_cpu[variant]):.2f} | {median(client_cpu[variant]):.2f} | {p50:.0f} / {p99:.0f} µs |"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
