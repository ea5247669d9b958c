#!/usr/bin/env python3
"""Measures what `orion top` costs the BEAM it watches, per probe group.

For each probe group and a workload that fires its probes often (tests/erlang/
orion_top_workload.erl, bench/2), the workload runs REPS times with `orion top --probes GROUP`
attached and REPS times without, alternating sessions, on a fresh node of each flavor. It prints
a Markdown table: median wall time of one run without and with top, the overhead, the probe
hits per second top saw, and the cost per hit ((with - without) / hits).

    sudo scripts/bench/top_overhead.py                    # prints the table
    sudo scripts/bench/top_overhead.py --update-doc       # also rewrites docs/performance.md
    ORION_BUILD_DIR=/tmp/b scripts/bench/top_overhead.py --flavors jit --reps 3

Needs root (BPF), the build (orion and tests/erlang/ebin) and the USDT-enabled OTP.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (group, workload, rounds per run): the group's probes fire on every round.
CASES = [
    ("sched", "pingpong", 100_000),
    ("sched", "spawn", 20_000),
    ("offcpu", "pingpong", 100_000),
    ("messages", "pingpong", 100_000),
    ("messages", "flood", 200_000),
    ("gc", "alloc", 100_000),
    ("ports", "tcp", 50_000),
    ("all", "pingpong", 100_000),
    ("all", "spawn", 20_000),
    ("all", "alloc", 100_000),
    ("all", "tcp", 50_000),
]


class Node:
    """An Erlang node driven through tests/erlang/orion_test_repl.erl."""

    def __init__(self, erl, ebin, flavor):
        self.proc = subprocess.Popen(
            [erl, "-emu_flavor", flavor, "-noshell", "-pa", ebin, "-s", "orion_test_repl", "start"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self._line()
        if not line.startswith("ORION-READY "):
            raise RuntimeError(f"node did not start: {line!r}")
        self.os_pid = int(line.split()[1])

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the node exited")
        return line.rstrip("\n")

    def eval(self, expr):
        self.proc.stdin.write(expr + "\n")
        self.proc.stdin.flush()
        while True:
            line = self._line()
            if line.startswith("ORION-RESULT "):
                return line[len("ORION-RESULT "):]
            if line.startswith("ORION-ERROR "):
                raise RuntimeError(f"{expr} raised {line}")

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Top:
    """`orion top --json` attached in the background."""

    def __init__(self, orion, pid, group):
        self.proc = subprocess.Popen(
            [orion, "top", "--json", "--duration", "3600", "--limit", "1", "--probes", group,
             "--pid", str(pid), "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:  # the debug line that says everything is attached
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("orion top exited: " + self.proc.stdout.read())
            if "top attached to pid" in line:
                return
        raise RuntimeError("orion top did not attach")

    @staticmethod
    def program_stats():
        """run_cnt and run_time_ns of top's BPF programs (kernel.bpf_stats_enabled = 1)."""
        out = subprocess.run(["bpftool", "--json", "prog", "show"], capture_output=True, text=True).stdout
        stats = {}
        for prog in json.loads(out or "[]"):
            if prog.get("name", "").startswith("orion_top"):
                cnt, ns = stats.get(prog["name"], (0, 0))
                stats[prog["name"]] = (cnt + prog.get("run_cnt", 0), ns + prog.get("run_time_ns", 0))
        return stats

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        return json.loads(out)


PROGRAM_STATS = {}  # (flavor, program) -> [run_cnt, run_time_ns], summed over sessions


def median_run(node, workload, rounds, reps):
    return statistics.median(int(node.eval(f"orion_top_workload:bench({workload}, {rounds}).")) / 1e6
                             for _ in range(reps))


def measure(args, flavor):
    erl = os.path.join(args.otp_prefix, "bin", "erl")
    ebin = os.path.join(args.build_dir, "tests", "erlang", "ebin")
    orion = os.path.join(args.build_dir, "userspace", "orion")
    rows = []
    node = Node(erl, ebin, flavor)
    try:
        for workload in {w for _, w, _ in CASES}:  # warm up: code loaded, heaps grown
            node.eval(f"orion_top_workload:bench({workload}, 1000).")
        for group, workload, rounds in CASES:
            top = Top(orion, node.os_pid, group)
            with_top = median_run(node, workload, rounds, args.reps)
            for name, (cnt, ns) in Top.program_stats().items():
                total = PROGRAM_STATS.setdefault((flavor, name), [0, 0])
                total[0] += cnt
                total[1] += ns
            doc = top.stop()
            without = median_run(node, workload, rounds, args.reps)
            hits = doc["events"] / args.reps  # per run (background hits are negligible)
            rows.append((flavor, group, workload, rounds, without, with_top, hits))
            print(f"{flavor} {group:8} {workload:8} {without * 1e3:8.1f} ms -> {with_top * 1e3:8.1f} ms"
                  f"  {hits:10.0f} hits", file=sys.stderr)
    finally:
        node.close()
    return rows


def table(rows):
    out = ["| flavor | probe group | workload (rounds) | without top | with top | overhead | "
           "probe hits/s | cost per hit |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for flavor, group, workload, rounds, without, with_top, hits in rows:
        overhead = (with_top - without) / without * 100
        # offcpu's sched_switch hits are not counted in "events": no per-hit cost for it.
        per_hit = "-" if group == "offcpu" or hits == 0 else f"{(with_top - without) / hits * 1e6:.2f} µs"
        rate = hits / with_top if with_top else 0
        out.append(f"| {flavor} | {group} | {workload} ({rounds:,}) | {without * 1e3:.0f} ms | "
                   f"{with_top * 1e3:.0f} ms | {overhead:+.0f} % | {rate:,.0f} | {per_hit} |")
    return "\n".join(out)


def program_table():
    out = ["| flavor | BPF program | runs | time in the program per run |", "|---|---|---:|---:|"]
    for (flavor, name), (cnt, ns) in sorted(PROGRAM_STATS.items()):
        if cnt:
            out.append(f"| {flavor} | {name} | {cnt:,} | {ns / cnt:.0f} ns |")
    return "\n".join(out)


READING_GUIDE = """\
How to read it: each workload fires one group's probes back to back (a message round trip takes
about 0.5 µs without top), so the overhead percentages are the worst case. What carries over to a
real node is the cost per event, paid per process run, message, collection or port command
whatever else the node does: cost per hit times hits per event (2 per process run with `sched`:
the uprobe and uretprobe on `erts_schedule`; 3 per message read with `messages`: send, the
sender's orion__mailbox (patch 0011; message__queued on a BEAM without it) and receive, 2 per
message never read (flood); 2 per collection with `gc`; 2 per port command with `ports`). The time inside the BPF
programs (below) is a fraction of it; the rest is the uprobe trap (about 0.55 µs) and the BEAM
formatting the probe arguments while a tracer is attached. The machine may be shared with other
builds and tests: baselines vary between runs more than the costs per hit do."""


def machine_line():
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    # Called after the measurement: the 5-minute load average spans most of it.
    load = os.getloadavg()
    shared = (": more runnable threads than cores, other work ran meanwhile"
              if load[1] > os.cpu_count() else "")
    return (f"Measured {datetime.date.today().isoformat()} on {model}, {os.cpu_count()} cores, "
            f"Linux {platform.release()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
            f"at the end{shared}.")


def update_doc(body):
    path = os.path.join(ROOT, "docs", "performance.md")
    begin, end = "<!-- bench:top:begin -->", "<!-- bench:top:end -->"
    section = f"{begin}\n## orion top: overhead per probe group\n\n{body.rstrip()}\n{end}"
    text = open(path).read()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    open(path, "w").write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.environ.get("ORION_BUILD_DIR", os.path.join(ROOT, "build")))
    parser.add_argument("--otp-prefix", default=os.environ.get("ORION_OTP_PREFIX"))
    parser.add_argument("--flavors", default="jit,emu")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("top_overhead: run as root (BPF)")
    if not args.otp_prefix:
        args.otp_prefix = subprocess.run([os.path.join(ROOT, "beam_dtrace_build", "build.sh"), "--print-prefix"],
                                         capture_output=True, text=True, check=True).stdout.strip()
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    saved_stats = open(stats_path).read().strip()
    open(stats_path, "w").write("1")  # run_time_ns of BPF programs, while measuring
    rows = []
    try:
        for flavor in args.flavors.split(","):
            rows += measure(args, flavor)
    finally:
        open(stats_path, "w").write(saved_stats)
    body = "\n".join([
        machine_line() + f" `scripts/bench/top_overhead.py --reps {args.reps}` (median of {args.reps} runs "
        "each, with and without top attached, alternating).",
        "",
        table(rows),
        "",
        READING_GUIDE,
        "",
        "Time spent inside each BPF program (`kernel.bpf_stats_enabled`, summed over the sessions "
        "above; orion_top_switch runs on every context switch of the machine, and returns after "
        "two comparisons unless a thread of the watched BEAM is involved):",
        "",
        program_table(),
    ])
    print(body)
    if args.update_doc:
        update_doc(body)


if __name__ == "__main__":
    main()
