#!/usr/bin/env python3
"""What untargeted code pays while a capture runs (issue 7's first goal), measured A/B.

beam_bench.py times each state once per repetition, so a workload's ratio there is one sample
against another, and on a shared VM a single run moves by 10-30 %. This script asks the one
question with many samples: on one USDT node (emu, or --flavor jit), blocks of K runs of each workload alternate
between "nothing attached" (A) and "`orion capture` of a function that never runs" (B), in the
order A B B A A B B A ..., so that a drift of the machine's speed weighs on both sides alike.
It reports, per workload, the median of all A runs and of all B runs (wall and node CPU time),
their ratio, the ratio of the fastest run of each side (this VM's noise only ever slows a run
down, and here it comes in modes: the same workload on the same node runs 25 ms for a while,
then 36 ms, whatever is attached, so medians can land on different modes), and the spread of
the per-block ratios.

  sudo tests/bench/beam/untargeted_ab.py --build build [--blocks 8] [--runs 21] [--flavor jit]
      [--tracer-erl /usr/bin/erl]   # the same for tracer mode on a stock JIT node
      [--only fib]                  # only these workloads (comma-separated)
      [--b floor|none]              # controls: B without orion's process (below)

What B is (--b): `capture` (the default), `orion capture` of the function that never runs;
`floor`, the emulator's state of that capture without orion's process or any BPF program
(tests/bench/probe_floor pair-semaphore: its breakpoint installed, orion__call's and
orion__calls' semaphores raised); `none`, an A/A control: B blocks run beside a process that
only sleeps, so the B / A ratios show what this machine's noise alone gives.

Prints a Markdown table on stdout, progress on stderr.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beam_bench import (WORKLOADS, Node, Tracer, add_common_args, log,  # noqa: E402
                        resolve_paths, tracer_node)


def measure(node, start_capture, blocks, runs, workloads=WORKLOADS):
    """ABBA blocks on `node`; B blocks run under start_capture() (a Tracer). Returns the samples:
    (wall, cpu, block_ratio, blocks_of, calls, workloads), wall/cpu[state][workload] in
    microseconds, blocks_of[state][workload] the medians of that side's blocks."""
    wall = {s: {w[0]: [] for w in workloads} for s in "AB"}
    cpu = {s: {w[0]: [] for w in workloads} for s in "AB"}
    block_ratio = {w[0]: [] for w in workloads}
    blocks_of = {s: {w[0]: [] for w in workloads} for s in "AB"}
    calls = {name: int(node.ask(f"calls {name} {size}")) for name, size, _, _ in workloads}
    for name, size, _, _ in workloads:  # warm up
        for _ in range(3):
            node.ask(f"run {name} {size}")
    pattern = "ABBA"
    block_median = {}
    for b in range(2 * blocks):
        state = pattern[b % 4]
        tracer = start_capture() if state == "B" else None
        try:
            for name, size, _, _ in workloads:
                samples = []
                for _ in range(runs):
                    answer, c = node.timed_ask(f"run {name} {size}")
                    samples.append(int(answer))
                    cpu[state][name].append(c)
                wall[state][name].extend(samples)
                block_median[(b, name)] = statistics.median(samples)
                blocks_of[state][name].append(block_median[(b, name)])
        finally:
            if tracer:
                tracer.stop()
        log(f"block {b + 1}/{2 * blocks} ({state}): " + ", ".join(
            f"{w[0]} {block_median[(b, w[0])] / 1000:.2f} ms" for w in workloads))
    # Each B block against the A block next to it in the ABBA order.
    for b in range(2 * blocks):
        if pattern[b % 4] != "B":
            continue
        partner = b - 1 if pattern[(b - 1) % 4] == "A" else b + 1
        if partner < 2 * blocks:
            for name, _, _, _ in workloads:
                block_ratio[name].append(block_median[(b, name)] / block_median[(partner, name)])
    return wall, cpu, block_ratio, blocks_of, calls, workloads


def table(title, wall, cpu, block_ratio, blocks_of, calls, workloads):
    out = [title, "",
           "| workload | A: nothing attached | B: capture of another function | B / A, wall "
           "| B / A, node CPU | fastest run, B / A | fastest block (its median), B / A "
           "| per-block B / A (min .. max) | extra per call of fib (fastest runs) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, _, _, _ in workloads:
        a, b = statistics.median(wall["A"][name]), statistics.median(wall["B"][name])
        ca, cb = statistics.median(cpu["A"][name]), statistics.median(cpu["B"][name])
        ratios = block_ratio[name]
        fa, fb = min(wall["A"][name]), min(wall["B"][name])
        # This VM's slow phases last whole blocks: each side's fastest block is its run in the
        # fast phase, if it had one.
        block_a, block_b = min(blocks_of["A"][name]), min(blocks_of["B"][name])
        per_call = f"{(fb - fa) * 1000 / calls[name]:.1f} ns" if name == "fib" else ""
        out.append(f"| {name} | {a / 1000:.2f} ms | {b / 1000:.2f} ms | {b / a:.3f} "
                   f"| {cb / ca:.3f} | {fb / fa:.3f} | {block_b / block_a:.3f} "
                   f"| {min(ratios):.3f} .. {max(ratios):.3f} | {per_call} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser)
    parser.add_argument("--blocks", type=int, default=8, help="A and B blocks each")
    parser.add_argument("--runs", type=int, default=21, help="runs of each workload per block")
    parser.add_argument("--pairing", choices=["beam", "bpf"], default="beam",
                        help="the capture's --pairing (default beam: the BEAM pairs the calls, "
                        "patches 0007-0008)")
    parser.add_argument("--only", help="only these workloads, comma-separated (fib,ring,codec)")
    parser.add_argument("--b", choices=["capture", "floor", "none"], default="capture",
                        help="what B is: orion capture (default); floor: the emulator's state of "
                        "that capture, no orion process or BPF program (probe_floor "
                        "pair-semaphore); none: an A/A control (a sleeping process)")
    args = parser.parse_args()
    if args.flavor == "jit" and args.pairing == "bpf":
        parser.error("--pairing bpf needs function probes: the emu flavor")
    if args.b == "floor" and args.pairing != "beam":
        parser.error("--b floor is the floor of pairing in the BEAM (--pairing beam)")
    workloads = WORKLOADS
    if args.only:
        names = args.only.split(",")
        workloads = [w for w in WORKLOADS if w[0] in names]
        if len(workloads) != len(names):
            parser.error(f"--only: workloads are {', '.join(w[0] for w in WORKLOADS)}")
    erl, ebin, orion = resolve_paths(args)
    how = (f"`tests/bench/beam/untargeted_ab.py --blocks {args.blocks} --runs {args.runs}"
           + (" --flavor jit" if args.flavor == "jit" else "")
           + (f" --only {args.only}" if args.only else "")
           + (f" --b {args.b}" if args.b != "capture" else "") + "`")

    node = Node(erl, ebin, flavor=args.flavor)
    floor = os.path.join(args.build, "tests", "bench", "probe_floor")
    # A loaded function that never runs, in the workloads' own module: pairing in the BEAM puts
    # its breakpoint there (patch 0008); BPF pairing claims the module.
    unrelated = "orion_bench:calls/2"
    start_b = {
        "capture": lambda: Tracer(
            [orion, "capture", "--pid", str(node.os_pid), "--duration", "600", "--json",
             "--max-rate", "0", "--pairing", args.pairing, unrelated], "capturing",
            ready_in_stderr=True),
        "floor": lambda: Tracer([floor, "--pid", str(node.os_pid), "pair-semaphore", unrelated],
                                "ready", ready_in_stderr=False),
        "none": lambda: Tracer(["sh", "-c", "echo ready; exec sleep 600"], "ready",
                               ready_in_stderr=False),
    }[args.b]
    what_b = {
        "capture": f"`orion capture` of a function that never runs (`{unrelated}`, in the "
                   "workloads' module)",
        "floor": f"the emulator's state of a capture of `{unrelated}` (a function of the "
                 "workloads' module that never runs) without orion's process or any BPF program "
                 "(`probe_floor pair-semaphore`: its breakpoint in, orion__call's and "
                 "orion__calls' semaphores raised)",
        "none": "a process beside the node that only sleeps (an A/A control: nothing differs "
                "but the time of the runs)",
    }[args.b]
    try:
        samples = measure(node, start_b, args.blocks, args.runs, workloads)
    finally:
        node.close()
    print(table(f"Untargeted code while a capture runs, A/B on one USDT {args.flavor} node ({how}, "
                f"`--pairing {args.pairing}`): "
                f"{args.blocks} blocks of {args.runs} runs of each workload with nothing attached "
                f"(A) and {args.blocks} with {what_b} (B), "
                "in the order A B B A ...; medians over all runs of a side.", *samples))

    if args.tracer_erl:
        node, node_name, cookie_file = tracer_node(args.tracer_erl, ebin, "orion_ab")
        try:
            # orion_bench:calls/2 exists and never runs during the workloads.
            samples = measure(node, lambda: Tracer(
                [orion, "capture", "--mode", "tracer", "--node", node_name,
                 "--cookie-file", cookie_file, "--duration", "600", "--json", "--max-rate", "0",
                 "orion_bench:calls/2"], "tracer mode on", ready_in_stderr=True),
                args.blocks, args.runs)
        finally:
            node.close()
        print()
        print(table(f"The same for tracer mode on Debian's stock `erl` ({node.flavor} flavor) "
                    f"({how} --tracer-erl): B is `orion capture --mode tracer` of a function that "
                    "never runs (its meta trace pattern is set; no process has a trace flag).",
                    *samples))


if __name__ == "__main__":
    main()
