#!/usr/bin/env python3
"""Exact counts at high rates of targeted calls (issue 7's fourth goal), in both modes.

Two processes run fib(N) at once (orion_bench par), so that both schedulers make targeted calls,
while one capture of orion_bench:fib/1 runs: probes mode on the USDT emu node, tracer mode on
Debian's stock JIT node (with --tracer-erl). Each run's rate is its fib/1 calls divided by its
wall time; at the end the capture's count must equal the calls made, with nothing lost. The
rate is what the node reaches with the capture attached: the cost of a targeted call bounds it.

  sudo tests/bench/beam/rate_run.py --build build [--runs 5] [--fib 27] [--tracer-erl /usr/bin/erl]
      [--flavor jit]   # the probes-mode row on the patched JIT (patch 0012)

Prints a Markdown table on stdout, progress on stderr.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beam_bench import (Node, Tracer, add_common_args, log, resolve_paths,  # noqa: E402
                        tracer_node)

PROCESSES = 2


def measure(node, capture_argv, ready, runs, fib):
    calls_per_run = PROCESSES * int(node.ask(f"calls fib {fib}"))
    node.ask(f"par fib {fib} {PROCESSES}")  # warm up
    untraced = statistics.median(int(node.ask(f"par fib {fib} {PROCESSES}")) for _ in range(runs))
    tracer = Tracer(capture_argv, ready, ready_in_stderr=True)
    try:
        walls = [int(node.ask(f"par fib {fib} {PROCESSES}")) for _ in range(runs)]
    finally:
        doc = json.loads(tracer.stop())
    counted = sum(c["count"] for c in doc["calls"] if c["mfa"] == "orion_bench:fib/1")
    lost = sum(v for v in doc["lost"].values() if isinstance(v, int))
    wall = statistics.median(walls)
    log(f"{capture_argv[2:4]}: {runs} runs, median {wall} us, counted {counted} of "
        f"{calls_per_run * runs}")
    return {"calls": calls_per_run * runs, "counted": counted, "lost": lost, "wall_us": wall,
            "untraced_us": untraced, "rate": calls_per_run / (wall / 1e6),
            "fastest_rate": calls_per_run / (min(walls) / 1e6)}


def row(mode, r):
    exact = "yes" if r["counted"] == r["calls"] and r["lost"] == 0 else "NO"
    return (f"| {mode} | {r['untraced_us'] / 1000:.1f} ms | {r['wall_us'] / 1000:.1f} ms "
            f"| {r['rate'] / 1e6:.2f} M/s (fastest run {r['fastest_rate'] / 1e6:.2f} M/s) "
            f"| {r['counted']:,} of {r['calls']:,} | {r['lost']} | {exact} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fib", type=int, default=27)
    args = parser.parse_args()
    erl, ebin, orion = resolve_paths(args)

    rows = []
    node = Node(erl, ebin, flavor=args.flavor)
    try:
        rows.append(row(f"probes (USDT {args.flavor} node)", measure(
            node, [orion, "capture", "--pid", str(node.os_pid), "--duration", "600", "--json",
                   "--max-rate", "0", "orion_bench:fib/1"], "capturing", args.runs, args.fib)))
    finally:
        node.close()
    if args.tracer_erl:
        node, node_name, cookie_file = tracer_node(args.tracer_erl, ebin, "orion_rate")
        try:
            rows.append(row("tracer (Debian's JIT erl)", measure(
                node, [orion, "capture", "--mode", "tracer", "--node", node_name,
                       "--cookie-file", cookie_file, "--duration", "600", "--json",
                       "--max-rate", "0", "orion_bench:fib/1"], "tracer mode on", args.runs,
                args.fib)))
        finally:
            node.close()
    print(f"Targeted calls per second with exact counts (`tests/bench/beam/rate_run.py --runs "
          f"{args.runs} --fib {args.fib}`): {PROCESSES} processes run fib({args.fib}) at once "
          "on the node's 2 schedulers, every call targeted, one capture over all runs; the rate "
          "is the calls of a run over its wall time (median run).")
    print()
    print("| mode | untraced run | run under the capture | targeted calls/s | counted "
          "| lost | exact |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
