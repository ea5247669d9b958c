#!/usr/bin/env python3
"""BEAM workload benchmarks for scripts/bench.sh: the cost of a capture, against baselines.

Starts one USDT node (the emu flavor, or with --flavor jit the JIT) running orion_bench:serve/0
and times each workload (orion_bench.erl) in several states of that node, measured in the same
run, runs interleaved (the order of the states rotates every repetition), medians reported:

  untraced      nothing attached
  semaphore     the capture's probe semaphores raised by hand, nothing attached
                (tests/bench/probe_floor semaphore): the BEAM formats the probe strings of
                every call (the enable table of patch 0003 is off: no capture runs)
  empty         an empty BPF program on the capture's probes (probe_floor empty): the floor,
                every call fires (no enable table either)
  unrelated     `orion capture` of a function that never runs during the workloads
                (orion_bench:calls/2, in their module): pairing in the BEAM (patch 0008)
                puts a breakpoint in that function only; BPF pairing's enable table
                (patch 0003) passes the module's calls to the probe bodies, which drop them
  pair_semaphore  the emulator pairs the hot functions' calls itself (patch 0007) with
                orion__call's semaphore raised by hand, nothing attached (probe_floor
                pair-semaphore): what pairing costs the emulator
  pair_empty    the same with an empty BPF program on orion__call and orion__calls
                (probe_floor pair-empty): the floor of pairing in the BEAM, one trap per
                batch of 64 targeted calls (patch 0010)
  hot           `orion capture` of each workload's hot function (the BEAM pairs the calls)
  hot_bpf       the same with --pairing bpf: BPF pairs the calls from the function probes
  xprof         the Erlang-tracing baseline (orion_bench_xprof) on the same hot function
  eprof, fprof  the standard profilers on the same workloads, for the record (every call of the
                workload's processes, not one function)
  stock         with --stock-erl: untraced runs alternating between a second node running a USDT
                OTP without Orion's patches (beam_dtrace_build/build.sh --no-patches) and the
                patched node (recorded as "idle"): the patches' idle cost

With --flavor jit the node runs the JIT, which has no function probes: the states that need them
(semaphore, empty, hot_bpf) and the profilers are left out (JIT_STATES), and the tables compare
pairing in the BEAM (patch 0012) with Erlang tracing on that node.

With --tracer-erl ERL (Debian's stock /usr/bin/erl: JIT, no USDT), a second node of that erl
runs the same workloads for tracer mode (docs/tracer.md): untraced, `orion capture --mode tracer`
of the hot functions, and the Erlang-tracing baseline, interleaved the same way.

Prints Markdown tables on stdout (progress on stderr), and the raw samples as JSON with --raw.

  tests/bench/beam/beam_bench.py --build /tmp/build-bench --reps 5
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [  # name, size, hot function (orion pattern), what it is
    ("fib", 25, "orion_bench:fib/1", "call-heavy: fib(25), body recursive"),
    ("ring", 100000, "orion_bench:relay/2", "message-heavy: 64-process ring, 4 tokens, 100,000 hops"),
    ("codec", 20000, "orion_bench:handle/2",
     "realistic: 20,000 requests, each term_to_binary/binary_to_term of a map + ETS insert/lookup"),
]
STATES = ["untraced", "semaphore", "empty", "unrelated", "pair_semaphore", "pair_empty", "hot",
          "hot_bpf", "xprof", "eprof", "fprof"]
JIT_STATES = ["untraced", "unrelated", "pair_semaphore", "pair_empty", "hot", "xprof"]
UNTRACED_RUNS_PER_REP = 3  # untraced runs are short: take more samples of them
IDLE_PAIRS_PER_REP = 9  # stock/patched pairs per repetition for the patches' idle cost


def log(msg):
    print(f"beam_bench: {msg}", file=sys.stderr, flush=True)


class Node:
    """A USDT node of `flavor` (emu or jit), driven through orion_bench:serve/0 on its
    stdin/stdout; with extra_args instead, whatever node those arguments start."""

    def __init__(self, erl, ebin, extra_args=None, flavor="emu"):
        flavor_args = ["-emu_flavor", flavor] if extra_args is None else extra_args
        self.proc = subprocess.Popen(
            [erl, *flavor_args, "-noshell", "-pa", ebin, "-eval", "orion_bench:serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        info = self.ask("info").split()
        self.flavor = info[1]
        if extra_args is None and info[1:] != [flavor, "systemtap"]:
            raise SystemExit(f"beam_bench: {erl} is not a USDT {flavor} node: {info}")
        self.os_pid = int(info[0])

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        if not line.startswith("ok"):
            raise SystemExit(f"beam_bench: node answered {line!r} to {command!r}")
        return line[3:]

    def cpu_ns(self):
        """On-CPU time of all the node's threads so far (schedstat, ns): immune to waiting for a CPU."""
        total = 0
        task_dir = f"/proc/{self.os_pid}/task"
        for tid in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def timed_ask(self, command):
        """ask(command), and the node's CPU time it took in microseconds."""
        before = self.cpu_ns()
        answer = self.ask(command)
        return answer, (self.cpu_ns() - before) / 1000

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()


class Tracer:
    """A background process that is attached once `ready` appears in its output file."""

    def __init__(self, argv, ready_text, ready_in_stderr):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err, text=True)
        watched = self.err if ready_in_stderr else self.out
        deadline = time.monotonic() + 60
        while True:
            watched.seek(0)
            if ready_text in watched.read():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.err.seek(0)
                raise SystemExit(f"beam_bench: {' '.join(argv)} did not attach: {self.err.read()}")
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.out.seek(0)
        return self.out.read()


def add_common_args(parser):
    """The options every BEAM benchmark script takes (beam_bench, untargeted_ab, rate_run)."""
    parser.add_argument("--build", required=True, help="the CMake build directory")
    parser.add_argument("--erl", help="the USDT OTP's erl (default: build.sh --print-prefix)")
    parser.add_argument("--orion", help="the orion binary (default: BUILD/userspace/orion)")
    parser.add_argument("--tracer-erl", help="a stock erl (JIT): adds tracer mode")
    parser.add_argument("--flavor", choices=["emu", "jit"], default="emu",
                        help="the flavor of the USDT node (default emu; jit: the patched JIT, "
                        "which pairs in the BEAM only)")


def resolve_paths(args):
    """(erl, ebin, orion) from add_common_args's options."""
    erl = args.erl
    if not erl:
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
        prefix = subprocess.check_output(
            [os.path.join(root, "beam_dtrace_build", "build.sh"), "--print-prefix"], text=True)
        erl = os.path.join(prefix.strip(), "bin", "erl")
    ebin = os.path.join(args.build, "tests", "bench", "beam", "ebin")
    orion = args.orion or os.path.join(args.build, "userspace", "orion")
    return erl, ebin, orion


def tracer_node(erl, ebin, prefix):
    """A distributed node of `erl` for tracer mode: (node, its name, a cookie file for orion)."""
    tag = f"{prefix}_{os.getpid()}"
    cookie_file = os.path.join(tempfile.mkdtemp(prefix="orion-bench-"), "cookie")
    with open(os.open(cookie_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(tag)
    node = Node(erl, ebin, ["-sname", tag, "-setcookie", tag])
    host = subprocess.check_output(["hostname", "-s"], text=True).strip()
    return node, f"{tag}@{host}", cookie_file


def start_tracer(state, build, orion, pid):
    floor = os.path.join(build, "tests", "bench", "probe_floor")
    # --max-rate 0: the benchmark measures the uncapped cost (the guard would stop fib).
    capture = [orion, "capture", "--pid", str(pid), "--duration", "600", "--json", "--max-rate", "0"]
    hot = [w[2] for w in WORKLOADS]
    if state in ("semaphore", "empty"):
        return Tracer([floor, "--pid", str(pid), state], "ready", ready_in_stderr=False)
    if state in ("pair_semaphore", "pair_empty"):
        return Tracer([floor, "--pid", str(pid), state.replace("_", "-")] + hot, "ready",
                      ready_in_stderr=False)
    if state == "hot_bpf":
        return Tracer(capture + ["--pairing", "bpf"] + hot, "capturing", ready_in_stderr=True)
    if state == "unrelated":
        # Loaded, in the workloads' module, never run during them (see STATES).
        return Tracer(capture + ["orion_bench:calls/2"], "capturing", ready_in_stderr=True)
    if state == "hot":
        return Tracer(capture + hot, "capturing", ready_in_stderr=True)
    return None


def run_idle_pairs(node, stock, samples):
    """Untraced runs alternating stock node / patched node, IDLE_PAIRS_PER_REP pairs each."""
    for name, size, _, _ in WORKLOADS:
        for _ in range(IDLE_PAIRS_PER_REP):
            for state, n in (("stock", stock), ("idle", node)):
                answer, cpu = n.timed_ask(f"run {name} {size}")
                samples[state][name].append(int(answer))
                samples["cpu_" + state][name].append(cpu)


def run_state(node, state, build, orion, samples, counts):
    """Runs every workload once (untraced: UNTRACED_RUNS_PER_REP times) in `state` on `node`."""
    if state in ("eprof", "fprof"):
        for name, size, _, _ in WORKLOADS:
            answer, cpu = node.timed_ask(f"{state} {name} {size}")
            samples[state][name].append(int(answer))
            samples["cpu_" + state][name].append(cpu)
        return
    if state == "xprof":
        for name, size, _, _ in WORKLOADS:
            answer, cpu = node.timed_ask(f"xprof {name} {size}")
            micros, drain, calls = map(int, answer.split())
            samples[state][name].append(micros)
            samples["cpu_" + state][name].append(cpu)
            samples["xprof_drain"][name].append(drain)
            counts["xprof"][name].append(calls)
        return
    tracer = start_tracer(state, build, orion, node.os_pid)
    runs = UNTRACED_RUNS_PER_REP if state == "untraced" else 1
    try:
        for name, size, _, _ in WORKLOADS:
            for _ in range(runs):
                answer, cpu = node.timed_ask(f"run {name} {size}")
                samples[state][name].append(int(answer))
                samples["cpu_" + state][name].append(cpu)
    except BaseException:
        if tracer:
            tracer.proc.kill()  # nothing stays attached when a run fails
        raise
    if tracer:
        out = tracer.stop()
        if state in ("hot", "hot_bpf"):
            doc = json.loads(out)
            by_mfa = {c["mfa"]: c["count"] for c in doc["calls"]}
            for name, _, mfa, _ in WORKLOADS:
                counts["orion" if state == "hot" else "orion_bpf"][name].append(by_mfa.get(mfa, 0))
            counts["lost"].append(sum(doc["lost"].values()))
            counts["paired_in_beam"].append(doc.get("paired_in_beam", 0))


def ratio(x):
    return f"{x:.3g}×" if x < 100 else f"{x:,.0f}×"


def cost_table(med, expected, prefix, bpf=True):
    """The states' ratios and the per-targeted-call costs, by wall time (prefix "") or by the
    node's CPU time (prefix "cpu_"); the wall-time table also names the hot function and its
    number of calls. bpf: with the BPF-pairing columns (the emu flavor's function probes)."""
    wall = prefix == ""
    head = ["workload", "untraced" if wall else "untraced CPU", "orion, unrelated function",
            "orion, hot function"] + (["orion, hot, BPF pairing"] if bpf else []) + \
        ["Erlang tracing, hot function"] + (["targeted calls"] if wall else []) + \
        ["per targeted call: orion"] + (["orion, BPF pairing"] if bpf else []) + \
        ["Erlang tracing", "orion / Erlang tracing"] + \
        (["BPF pairing / Erlang tracing"] if bpf else [])
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, _, mfa, _ in WORKLOADS:
        states = ("untraced", "unrelated", "hot", "xprof") + (("hot_bpf",) if bpf else ())
        m = {s: med[prefix + s][name] for s in states}
        base, calls = m["untraced"], expected[name]
        orion_us = (m["hot"] - base) / calls
        xprof_us = (m["xprof"] - base) / calls
        bpf_us = (m["hot_bpf"] - base) / calls if bpf else 0
        cells = [name + (f" (`{mfa}`)" if wall else ""), f"{base / 1000:.2f} ms",
                 ratio(m["unrelated"] / base), ratio(m["hot"] / base)] + \
            ([ratio(m["hot_bpf"] / base)] if bpf else []) + [ratio(m["xprof"] / base)] + \
            ([f"{calls:,}"] if wall else []) + [f"{orion_us:.2f} µs"] + \
            ([f"{bpf_us:.2f} µs"] if bpf else []) + \
            [f"{xprof_us:.2f} µs", f"{orion_us / xprof_us:.2f}"] + \
            ([f"{bpf_us / xprof_us:.2f}"] if bpf else [])
        out.append("| " + " | ".join(cells) + " |")
    return out


def jit_tables(samples, counts, expected, loads):
    """What --flavor jit measures: pairing in the BEAM (patch 0012) against Erlang tracing on
    the same JIT node, where the time of a targeted call goes, and the exact counts."""
    med = {s: {w: statistics.median(v) for w, v in ws.items()} for s, ws in samples.items()}
    out = cost_table(med, expected, "", bpf=False)
    out += ["", "The same runs measured by the node's CPU time (all its threads, from "
            "`/proc/PID/task/*/schedstat`; for Erlang tracing it includes the tracer process "
            "draining its queue):", ""]
    out += cost_table(med, expected, "cpu_", bpf=False)
    if med.get("stock", {}).get("fib"):
        out.append("")
        out.append("Idle cost of Orion's probe patches on the JIT (nothing attached; runs "
                   "alternating between the patched node and a USDT JIT node built without the "
                   f"patches, {IDLE_PAIRS_PER_REP} pairs per repetition): patched / unpatched, "
                   "wall time and CPU time: " + ", ".join(
                       f"{w} {med['idle'][w] / med['stock'][w]:.3f}× / "
                       f"{med['cpu_idle'][w] / med['cpu_stock'][w]:.3f}×" for w in expected)
                   + " (two long-lived nodes side by side: the instruction counts below are "
                   "the measure).")
    calls = expected["fib"]
    ns = {s: (med["cpu_" + s]["fib"] - med["cpu_untraced"]["fib"]) * 1000 / calls
          for s in ("pair_semaphore", "pair_empty", "hot", "unrelated")}
    out += ["", f"One function call of fib(25) on the JIT ({calls:,} calls, all targeted), in ns "
            "of the node's CPU time per call:", "", "| part | ns per call | cumulative |",
            "|---|---:|---:|"]
    parts = [
        ("the emulator pairs and times the call (orion__call's semaphore raised, nothing "
         "attached)", ns["pair_semaphore"], ns["pair_semaphore"]),
        ("the uprobe traps, an empty BPF program (1 hit per 64 calls)",
         ns["pair_empty"] - ns["pair_semaphore"], ns["pair_empty"]),
        ("orion's program (read the batch; per call a record lookup, two histograms), extra",
         ns["hot"] - ns["pair_empty"], ns["hot"]),
    ]
    for label, part, total in parts:
        out.append(f"| {label} | {part:,.0f} | {total:,.0f} |")
    out.append("")
    out.append(f"An untargeted call while a capture runs (orion, unrelated function), from the "
               f"medians above: {ns['unrelated']:,.1f} ns per call, against "
               f"{med['cpu_untraced']['fib'] * 1000 / calls:,.1f} ns for the whole call untraced "
               "(`untargeted_ab.py --flavor jit` asks this with many samples).")
    exact = all(all(c == expected[w] for c in counts["orion"][w]) for w in expected)
    out.append("")
    out.append(f"Counts: orion counted {'exactly' if exact else 'NOT exactly'} the workloads' "
               f"targeted calls in every run (BEAMs that paired, per run: "
               f"{sorted(set(counts['paired_in_beam']))}; lost events: {sum(counts['lost'])}); "
               "the Erlang tracer paired "
               + ", ".join(f"{w} {statistics.median(counts['xprof'][w]):,.0f}" for w in expected)
               + ". Load average (1 min) at the start and end of the run: "
               f"{loads[0]:.2f}, {loads[1]:.2f} on {os.cpu_count()} CPUs.")
    return "\n".join(out)


def tables(samples, counts, expected, loads):
    med = {s: {w: statistics.median(v) for w, v in ws.items()} for s, ws in samples.items()}
    out = cost_table(med, expected, "")
    out.append("")
    out.append("The same runs measured by the node's CPU time (all its threads, from "
               "`/proc/PID/task/*/schedstat`: what the node pays, whatever else the machine runs; "
               "for Erlang tracing it includes the tracer process draining its queue):")
    out.append("")
    out += cost_table(med, expected, "cpu_")
    if med.get("stock", {}).get("fib"):
        out.append("")
        out.append("Idle cost of Orion's probe patches (nothing attached; runs alternating between "
                   "the patched node and a USDT node built without the patches, "
                   f"{IDLE_PAIRS_PER_REP} pairs per repetition): patched / unpatched, wall time "
                   "and CPU time: " + ", ".join(
                       f"{w} {med['idle'][w] / med['stock'][w]:.3f}× / "
                       f"{med['cpu_idle'][w] / med['cpu_stock'][w]:.3f}×" for w in expected)
                   + ". Two long-lived nodes side by side: which one started first moves this "
                   "ratio by 5 % to 2× here, so the A/B on fresh nodes below is the measure.")
    out.append("")
    out.append("For the record, the standard profilers on the same workloads (they trace every "
               "call of the workload's processes, not one function), wall time against untraced: "
               + ", ".join(f"{w} eprof {ratio(med['eprof'][w] / med['untraced'][w])}, fprof "
                           f"{ratio(med['fprof'][w] / med['untraced'][w])}"
                           for w, _, _, _ in WORKLOADS) + ".")
    out.append("")
    out.append("Where the time goes, by the node's CPU time, each state against the untraced run:")
    out.append("")
    breakdown = ("semaphore", "empty", "hot_bpf", "unrelated", "pair_semaphore", "pair_empty", "hot")
    out.append("| workload | BPF pairing: semaphores raised, nothing attached | empty BPF program "
               "| orion | orion, unrelated function | BEAM pairing: semaphore raised, nothing "
               "attached | empty BPF program | orion |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, _, _, _ in WORKLOADS:
        base = med["cpu_untraced"][name]
        out.append(f"| {name} | " + " | ".join(
            ratio(med["cpu_" + s][name] / base) for s in breakdown) + " |")
    # fib: every call is one function call of fib/1.
    calls = expected["fib"]
    ns = {s: (med["cpu_" + s]["fib"] - med["cpu_untraced"]["fib"]) * 1000 / calls
          for s in breakdown}
    out.append("")
    out.append(f"One function call of fib(25) ({calls:,} calls, all targeted), in ns of the node's "
               "CPU time per call:")
    out.append("")
    out.append("| part | ns per call | cumulative |")
    out.append("|---|---:|---:|")
    parts = [
        ("BPF pairing: the BEAM formats the probe strings (semaphores raised, nothing attached)",
         ns["semaphore"], ns["semaphore"]),
        ("BPF pairing: the uprobe traps, an empty BPF program (2 hits)",
         ns["empty"] - ns["semaphore"], ns["empty"]),
        ("BPF pairing: orion's programs (read the strings, hash, look up, in-flight "
         "stack, histograms), extra", ns["hot_bpf"] - ns["empty"], ns["hot_bpf"]),
        ("BEAM pairing: the emulator pairs and times the call (semaphore raised, nothing "
         "attached)", ns["pair_semaphore"], ns["pair_semaphore"]),
        ("BEAM pairing: the uprobe traps, an empty BPF program (1 hit per 64 calls)",
         ns["pair_empty"] - ns["pair_semaphore"], ns["pair_empty"]),
        ("BEAM pairing: orion's program (read the batch; per call a record lookup, two "
         "histograms), extra",
         ns["hot"] - ns["pair_empty"], ns["hot"]),
    ]
    for label, part, total in parts:
        out.append(f"| {label} | {part:,.0f} | {total:,.0f} |")
    trap = ns["empty"] - ns["semaphore"]
    pair_trap = ns["pair_empty"] - ns["pair_semaphore"]
    out.append("")
    out.append(f"An untargeted call while a capture runs (orion, unrelated function; pairing in "
               f"the BEAM only the targeted function carries a breakpoint, patch 0008), from the "
               f"medians above: {ns['unrelated']:,.1f} ns per call, against "
               f"{med['cpu_untraced']['fib'] * 1000 / calls:,.1f} ns for the whole call untraced "
               "(two medians of a few runs each: `untargeted_ab.py` measures this one question "
               "with many samples).")
    out.append("")
    out.append("Kernel side per targeted call against an empty program on the same probes (the "
               "traps included, the BEAM's own work excluded): pairing in the BEAM "
               f"{(ns['hot'] - ns['pair_semaphore']) / pair_trap:.2f}×, pairing in BPF "
               f"{(ns['hot_bpf'] - ns['semaphore']) / trap:.2f}×.")
    out.append("")
    exact = all(all(c == expected[w] for c in counts[k][w]) for w in expected
                for k in ("orion", "orion_bpf"))
    paired = set(counts["paired_in_beam"])
    out.append(f"Counts: orion counted {'exactly' if exact else 'NOT exactly'} the workloads' "
               f"targeted calls in every run, with either pairing (BEAMs that paired, per run: "
               f"{sorted(paired)}; lost events: {sum(counts['lost'])}); the Erlang "
               "tracer paired "
               + ", ".join(f"{w} {statistics.median(counts['xprof'][w]):,.0f}" for w in expected)
               + ". Erlang tracing's tracer process drains its queue after the workload ends "
               "(median: " + ", ".join(f"{w} {statistics.median(samples['xprof_drain'][w]) / 1000:.0f} ms"
                                       for w in expected)
               + "), not counted above. Load average (1 min) at the start and end of the run: "
               f"{loads[0]:.2f}, {loads[1]:.2f} on {os.cpu_count()} CPUs.")
    return "\n".join(out)


def tracer_mode_tables(erl, ebin, orion, reps):
    """Tracer mode on a stock node, interleaved: untraced / orion tracer mode on a function that
    never runs (what untargeted code pays: ERTS checks trace patterns per function) / orion tracer
    mode on the hot function / Erlang tracing on the hot function."""
    node, node_name, cookie_file = tracer_node(erl, ebin, "orion_bench")
    states = ["untraced", "tracer_unrelated", "tracer", "xprof"]
    samples = {s: {w[0]: [] for w in WORKLOADS}
               for s in states + ["cpu_" + s for s in states] + ["xprof_drain"]}
    counts = {w[0]: [] for w in WORKLOADS}
    try:
        expected = {name: int(node.ask(f"calls {name} {size}")) for name, size, _, _ in WORKLOADS}
        for name, size, _, _ in WORKLOADS:
            node.ask(f"run {name} {size}")
        for rep in range(reps):
            for state in states[rep % len(states):] + states[:rep % len(states)]:
                t0 = time.monotonic()
                tracer = None
                if state.startswith("tracer"):
                    # orion_bench:calls/2 exists and never runs during the workloads.
                    targets = (["orion_bench:calls/2"] if state == "tracer_unrelated"
                               else [w[2] for w in WORKLOADS])
                    tracer = Tracer([orion, "capture", "--mode", "tracer", "--node", node_name,
                                     "--cookie-file", cookie_file, "--duration", "600", "--json",
                                     "--max-rate", "0"] + targets,
                                    "tracer mode on", ready_in_stderr=True)
                try:
                    for name, size, _, _ in WORKLOADS:
                        if state == "xprof":
                            answer, cpu = node.timed_ask(f"xprof {name} {size}")
                            samples["xprof_drain"][name].append(int(answer.split()[1]))
                            answer = answer.split()[0]
                        else:
                            answer, cpu = node.timed_ask(f"run {name} {size}")
                        samples[state][name].append(int(answer))
                        samples["cpu_" + state][name].append(cpu)
                finally:
                    if tracer:
                        doc = json.loads(tracer.stop())
                        by_mfa = {c["mfa"]: c["count"] for c in doc["calls"]}
                        if state == "tracer":
                            for name, _, mfa, _ in WORKLOADS:
                                counts[name].append(by_mfa.get(mfa, 0))
                log(f"tracer mode rep {rep + 1}/{reps} {state}: {time.monotonic() - t0:.1f} s")
    finally:
        node.close()
    med = {s: {w: statistics.median(v) for w, v in ws.items()} for s, ws in samples.items()}
    out = [f"Tracer mode ([tracer.md](tracer.md)) on Debian's stock `erl` ({node.flavor} flavor, "
           "no USDT build), the same workloads, hot functions traced by `orion capture --mode "
           "tracer` and by the Erlang-tracing baseline; medians of "
           f"{reps} repetitions, states interleaved. Per targeted call, wall time and the node's "
           "CPU time: (traced - untraced) / calls.", "",
           "| workload | untraced | orion tracer mode, unrelated function | orion tracer mode "
           "| Erlang tracing | per targeted call: orion | per targeted call: Erlang tracing "
           "| orion / Erlang tracing | same, by CPU time |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, _, mfa, _ in WORKLOADS:
        base, calls = med["untraced"][name], expected[name]
        o_us, x_us = (med["tracer"][name] - base) / calls, (med["xprof"][name] - base) / calls
        cbase = med["cpu_untraced"][name]
        o_cpu = (med["cpu_tracer"][name] - cbase) / calls
        x_cpu = (med["cpu_xprof"][name] - cbase) / calls
        out.append(f"| {name} (`{mfa}`) | {base / 1000:.2f} ms "
                   f"| {ratio(med['tracer_unrelated'][name] / base)} "
                   f"| {ratio(med['tracer'][name] / base)} "
                   f"| {ratio(med['xprof'][name] / base)} | {o_us:.2f} µs | {x_us:.2f} µs "
                   f"| {o_us / x_us:.2f} | {o_cpu / x_cpu:.2f} |")
    exact = all(all(c == expected[w] for c in counts[w]) for w in expected)
    out.append("")
    out.append(f"Counts: tracer mode counted {'exactly' if exact else 'NOT exactly'} the "
               "workloads' targeted calls in every run (" +
               ", ".join(f"{w} {statistics.median(counts[w]):,.0f} of {expected[w]:,}"
                         for w in expected) + "). Erlang tracing's tracer process was still "
               "draining its mailbox when each workload ended, for (median) " +
               ", ".join(f"{w} {med['xprof_drain'][w] / 1000:.1f} ms" for w in expected) +
               " more, not counted above: at these call rates its queue grows.")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--stock-erl", help="erl of a USDT OTP without Orion's patches: adds the "
                        "patches' idle cost (build it with beam_dtrace_build/build.sh --no-patches)")
    parser.add_argument("--raw", help="write the raw samples as JSON here")
    parser.add_argument("--tracer-only", action="store_true",
                        help="only tracer mode's tables (needs --tracer-erl)")
    args = parser.parse_args()
    if args.tracer_only and not args.tracer_erl:
        parser.error("--tracer-only needs --tracer-erl")
    erl, ebin, orion = resolve_paths(args)
    if args.tracer_only:
        print(tracer_mode_tables(args.tracer_erl, ebin, orion, args.reps))
        return

    states = (JIT_STATES if args.flavor == "jit" else STATES) + (["stock"] if args.stock_erl else [])
    recorded = states + (["idle"] if args.stock_erl else [])
    samples = {s: {w[0]: [] for w in WORKLOADS}
               for s in recorded + ["cpu_" + s for s in recorded] + ["xprof_drain"]}
    counts = {"orion": {w[0]: [] for w in WORKLOADS}, "orion_bpf": {w[0]: [] for w in WORKLOADS},
              "xprof": {w[0]: [] for w in WORKLOADS}, "lost": [], "paired_in_beam": []}
    loads = [os.getloadavg()[0]]
    node = Node(erl, ebin, flavor=args.flavor)
    stock = Node(args.stock_erl, ebin, flavor=args.flavor) if args.stock_erl else None
    try:
        expected = {name: int(node.ask(f"calls {name} {size}")) for name, size, _, _ in WORKLOADS}
        for name, size, _, _ in WORKLOADS:  # warm up
            node.ask(f"run {name} {size}")
            if stock:
                stock.ask(f"run {name} {size}")
        for rep in range(args.reps):
            order = states[rep % len(states):] + states[:rep % len(states)]
            for state in order:
                t0 = time.monotonic()
                if state == "stock":
                    run_idle_pairs(node, stock, samples)
                else:
                    run_state(node, state, args.build, orion, samples, counts)
                log(f"rep {rep + 1}/{args.reps} {state}: {time.monotonic() - t0:.1f} s")
    finally:
        node.close()
        if stock:
            stock.close()
    loads.append(os.getloadavg()[0])
    if args.raw:
        with open(args.raw, "w") as f:
            json.dump({"samples": samples, "counts": counts, "expected": expected}, f, indent=1)
    print(jit_tables(samples, counts, expected, loads) if args.flavor == "jit"
          else tables(samples, counts, expected, loads))
    if args.tracer_erl:
        print()
        print(tracer_mode_tables(args.tracer_erl, ebin, orion, args.reps))


if __name__ == "__main__":
    main()
