#!/usr/bin/env python3
"""Memory of a long capture: orion's RSS and its BPF maps, sampled while it runs.

Starts the demo BEAM (scripts/demo/orion_demo.erl, emu flavor) with its 4 request workers plus
a spawner that starts a short-lived process every millisecond (each makes targeted calls, so the
kernel's per-process state churns), and runs one `orion capture --max-rate 0` of every function
of orion_demo and lists for --minutes. Every --every seconds it samples orion's VmRSS, the
memory of the BPF maps orion holds (memlock of the maps in its /proc/PID/fdinfo) and the
BEAM's VmRSS. Prints a Markdown table; --update-doc also rewrites the
"memory" section of docs/performance.md.

    sudo scripts/bench/memory_run.py --minutes 10 --update-doc
    ORION_BUILD_DIR=/tmp/b sudo scripts/bench/memory_run.py --minutes 1 --every 5

Needs root (BPF), the build (orion) and the USDT-enabled OTP of beam_dtrace_build/build.sh.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPAWNER = ("spawn(fun Loop() -> spawn(fun() -> [orion_demo:lookup(I) || I <- lists:seq(1, 20)] end),"
           " timer:sleep(1), Loop() end)")


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bpf_map_bytes(pid):
    """memlock of every BPF map `pid` holds a file descriptor of (/proc/PID/fdinfo)."""
    seen = {}
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}") != "anon_inode:bpf-map":
                continue
            info = dict(line.split(":", 1) for line in open(f"/proc/{pid}/fdinfo/{fd}")
                        if ":" in line)
            seen[info["map_id"].strip()] = int(info.get("memlock", "0").strip())
        except (OSError, KeyError, ValueError):
            continue
    return sum(seen.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("memory_run: run as root (BPF)")
    build = os.environ.get("ORION_BUILD_DIR", os.path.join(ROOT, "build"))
    orion = os.path.join(build, "userspace", "orion")
    prefix = subprocess.run([os.path.join(ROOT, "beam_dtrace_build", "build.sh"), "--print-prefix"],
                            capture_output=True, text=True, check=True).stdout.strip()
    ebin = tempfile.mkdtemp(prefix="orion-memory-")
    subprocess.run(["erlc", "-o", ebin, os.path.join(ROOT, "scripts", "demo", "orion_demo.erl")],
                   check=True)
    node = subprocess.Popen(
        [os.path.join(prefix, "bin", "erl"), "-emu_flavor", "emu", "-noshell", "-pa", ebin,
         "-eval", f"orion_demo:start(), {SPAWNER}."],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = node.stdout.readline()
    m = re.search(r"os pid (\d+)", line)
    if not m:
        node.kill()
        sys.exit(f"memory_run: the demo node did not start: {line!r}")
    beam_pid = int(m.group(1))
    seconds = args.minutes * 60
    # Output to files, not pipes: the JSON document is larger than a pipe's buffer, and nothing
    # reads it until the capture ends.
    out_file, err_file = tempfile.TemporaryFile(mode="w+"), tempfile.TemporaryFile(mode="w+")
    capture = subprocess.Popen(
        [orion, "capture", "--pid", str(beam_pid), "--json", "--max-rate", "0",
         "--duration", str(seconds), "orion_demo", "lists"],
        stdout=out_file, stderr=err_file, text=True)
    samples = []
    start = time.monotonic()
    try:
        time.sleep(3)
        while capture.poll() is None:
            t = time.monotonic() - start
            samples.append((t, vm_rss_kib(capture.pid), bpf_map_bytes(capture.pid),
                            vm_rss_kib(beam_pid)))
            print(f"memory_run: {t:6.0f} s  orion {samples[-1][1]} KiB  maps "
                  f"{samples[-1][2] >> 10} KiB  beam {samples[-1][3]} KiB", file=sys.stderr)
            deadline = time.monotonic() + args.every
            while time.monotonic() < deadline and capture.poll() is None:
                time.sleep(0.5)
        capture.wait(timeout=120)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    finally:
        if capture.poll() is None:
            capture.kill()
        node.send_signal(signal.SIGKILL)
        node.wait()
    if capture.returncode != 0:
        sys.exit(f"memory_run: orion failed ({capture.returncode}): {err}")
    doc = json.loads(out)
    calls = sum(c["count"] for c in doc["calls"])
    lost = {k: v for k, v in doc["lost"].items() if v}
    first, last = samples[0], samples[-1]
    rows = ["| time | orion RSS | orion's BPF maps | BEAM RSS |", "|---:|---:|---:|---:|"]
    for t, rss, maps, beam in samples:
        rows.append(f"| {t / 60:.1f} min | {rss / 1024:.1f} MiB | {maps / 1048576:.2f} MiB "
                    f"| {beam / 1024:.1f} MiB |")
    body = "\n".join([
        f"Measured {datetime.date.today()} on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Linux {platform.release()}. "
        f"`scripts/bench/memory_run.py --minutes {args.minutes:g} --every {args.every:g}`: one "
        "`orion capture --max-rate 0 orion_demo lists` on the demo BEAM (4 request workers, and a "
        "new short-lived process every millisecond making 20 targeted calls).",
        "",
        *rows,
        "",
        f"Over {doc['duration_s'] / 60:.1f} minutes orion counted {calls:,} calls of "
        f"{len(doc['calls'])} functions; lost: {lost or 'nothing'}. Between the first and the "
        f"last sample orion's RSS changed by {(last[1] - first[1]) / 1024:+.2f} MiB and its BPF "
        f"maps by {(last[2] - first[2]) / 1048576:+.2f} MiB, the BEAM's RSS by "
        f"{(last[3] - first[3]) / 1024:+.2f} MiB (between {min(r[3] for r in samples) / 1024:.1f} "
        f"and {max(r[3] for r in samples) / 1024:.1f} MiB): the maps are sized when the capture "
        "starts (per-CPU histograms for --max-functions functions; pairing in BPF, the in-flight "
        "state of --max-procs processes, an LRU that evicts rather than grows; pairing in the "
        "BEAM, its per-process frame stacks are given back as calls end) and userspace keeps "
        "only the sketches it folds them into.",
    ])
    print(body)
    if args.update_doc:
        path = os.path.join(ROOT, "docs", "performance.md")
        text = open(path).read()
        section = ("<!-- bench:memory:begin -->\n## Memory over a long capture\n\n" + body +
                   "\n<!-- bench:memory:end -->")
        if "<!-- bench:memory:begin -->" in text:
            text = re.sub(r"<!-- bench:memory:begin -->.*<!-- bench:memory:end -->",
                          lambda _: section, text, flags=re.S)
        else:
            text = text.replace("<!-- bench:beam:end -->", "<!-- bench:beam:end -->\n\n" + section)
        open(path, "w").write(text)


if __name__ == "__main__":
    main()
