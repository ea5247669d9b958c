#!/usr/bin/env python3
"""Soak of the daemon's watches: memory over BEAM restarts and scrapes, compressed in time.

Starts `orion daemon` with a [[watch]] of every function of orion_demo and lists:reverse/1 on
each of two nodes and a /metrics listener, and two demo BEAMs (scripts/demo/orion_demo.erl, emu flavor, a request
workload plus a new short-lived process every millisecond). Every --restart-every seconds one
of the two BEAMs is killed and started again under the same name, so the daemon's sessions end,
fold into their series and re-attach: a day of hourly restarts in a few minutes. /metrics is
scraped (protobuf, with the token) every 2 s. Every --every seconds it samples the daemon's
VmRSS, the memlock of the BPF maps it holds, its threads and file descriptors. Prints a Markdown
table; --update-doc also rewrites the "watch-soak" section of docs/performance.md.

    sudo scripts/bench/watch_soak.py --minutes 6 --update-doc
    ORION_BUILD_DIR=/tmp/b sudo scripts/bench/watch_soak.py --minutes 1 --every 10

Needs root (BPF), the build (orion) and the USDT-enabled OTP of beam_dtrace_build/build.sh.
"""
import argparse
import datetime
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_run import ROOT, SPAWNER, bpf_map_bytes, vm_rss_kib  # noqa: E402

PROTOBUF = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited")


def count_dir(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def start_beam(prefix, ebin, name, cookie):
    return subprocess.Popen(
        [os.path.join(prefix, "bin", "erl"), "-emu_flavor", "emu", "-noshell", "-sname", name,
         "-setcookie", cookie, "-pa", ebin, "-eval", f"orion_demo:start(), {SPAWNER}."],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=6)
    parser.add_argument("--every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--restart-every", type=float, default=15,
                        help="seconds between BEAM restarts")
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("watch_soak: run as root (BPF)")
    build = os.environ.get("ORION_BUILD_DIR", os.path.join(ROOT, "build"))
    orion = os.path.join(build, "userspace", "orion")
    prefix = subprocess.run([os.path.join(ROOT, "beam_dtrace_build", "build.sh"), "--print-prefix"],
                            capture_output=True, text=True, check=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="orion-soak-")
    subprocess.run(["erlc", "-o", work, os.path.join(ROOT, "scripts", "demo", "orion_demo.erl")],
                   check=True)
    cookie, token, port = "orion-soak", "soak-token-0123456789abcdef", 19465
    names = ["soak_a", "soak_b"]
    host = platform.node().split(".")[0]
    for name, text in (("cookie", cookie), ("token", token + "\n")):
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
    with open(os.path.join(work, "orion.toml"), "w") as f:
        f.write(f'metrics_listen = "127.0.0.1:{port}"\nmetrics_token_file = "{work}/token"\n')
        # One watch per node: the daemon sees every BEAM of the host, and the soak measures
        # its own two only.
        for name in names:
            f.write(f'\n[[watch]]\npatterns = ["orion_demo", "lists:reverse/1"]\n'
                    f'node = "{name}@{host}"\n')
    beams = {n: start_beam(prefix, work, n, cookie) for n in names}
    daemon_log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([orion, "daemon", "--name", "orion_soak", "--no-discover",
                               "--config", os.path.join(work, "orion.toml"), "--cookie-file",
                               os.path.join(work, "cookie")],
                              stdout=daemon_log, stderr=subprocess.STDOUT)
    samples, restarts, scrapes, scrape_bytes = [], 0, 0, 0
    start = time.monotonic()
    next_sample, next_restart, next_scrape = start + 10, start + args.restart_every, start
    end = start + args.minutes * 60
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if daemon.poll() is not None:
                sys.exit(f"watch_soak: the daemon exited ({daemon.returncode}); log: {work}/daemon.log")
            if now >= next_restart:
                name = names[restarts % 2]
                beams[name].send_signal(signal.SIGKILL)
                beams[name].wait()
                time.sleep(1)
                beams[name] = start_beam(prefix, work, name, cookie)
                restarts += 1
                next_restart += args.restart_every
            if now >= next_scrape:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={
                    "Authorization": f"Bearer {token}", "Accept": PROTOBUF})
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        scrape_bytes = len(response.read())
                        scrapes += 1
                except OSError as e:
                    print(f"watch_soak: scrape failed: {e}", file=sys.stderr)
                next_scrape += 2
            if now >= next_sample:
                t = now - start
                samples.append((t, vm_rss_kib(daemon.pid), bpf_map_bytes(daemon.pid),
                                count_dir(f"/proc/{daemon.pid}/task"),
                                count_dir(f"/proc/{daemon.pid}/fd"), scrape_bytes))
                print(f"watch_soak: {t:6.0f} s  rss {samples[-1][1]} KiB  maps "
                      f"{samples[-1][2] >> 10} KiB  threads {samples[-1][3]}  fds {samples[-1][4]}"
                      f"  restarts {restarts}", file=sys.stderr)
                next_sample += args.every
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        for b in beams.values():
            b.kill()
            b.wait()
    log = open(os.path.join(work, "daemon.log")).read()
    attached = log.count("capture attached")
    if len(samples) < 2:
        sys.exit("watch_soak: too short to compare samples (raise --minutes)")
    rows = ["| time | daemon RSS | its BPF maps | threads | fds | /metrics body |",
            "|---:|---:|---:|---:|---:|---:|"]
    for t, rss, maps, threads, fds, body_bytes in samples:
        rows.append(f"| {t / 60:.1f} min | {rss / 1024:.1f} MiB | {maps / 1048576:.2f} MiB "
                    f"| {threads} | {fds} | {body_bytes / 1024:.1f} KiB |")
    first, last = samples[0], samples[-1]
    later = samples[len(samples) // 2:]
    body = "\n".join([
        f"Measured {datetime.date.today()} on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Linux {platform.release()}. "
        f"`scripts/bench/watch_soak.py --minutes {args.minutes:g} --every {args.every:g} "
        f"--restart-every {args.restart_every:g}`: `orion daemon` watching every function of "
        "orion_demo and lists:reverse/1 on two demo BEAMs (request workers, and a new "
        "short-lived process every millisecond), one of which is killed and started again under "
        f"its name every {args.restart_every:g} s; /metrics scraped every 2 s.",
        "",
        *rows,
        "",
        f"{restarts} BEAM restarts, {attached} watch sessions attached, {scrapes} scrapes. Between "
        f"the first and the last sample the daemon's RSS changed by "
        f"{(last[1] - first[1]) / 1024:+.2f} MiB (last / first: {last[1] / first[1]:.3f}; over "
        f"the second half it stayed between {min(s[1] for s in later) / 1024:.1f} and "
        f"{max(s[1] for s in later) / 1024:.1f} MiB), its BPF maps by "
        f"{(last[2] - first[2]) / 1048576:+.2f} MiB, its threads by {last[3] - first[3]:+d}, its fds "
        f"by {last[4] - first[4]:+d}. Each session's maps are freed when it ends (its BEAM exits); "
        "what a series counted is folded into one sketch per function and node, bounded by "
        "max_series.",
    ])
    print(body)
    if args.update_doc:
        path = os.path.join(ROOT, "docs", "performance.md")
        text = open(path).read()
        section = ("<!-- bench:watch-soak:begin -->\n## Watches over restarts (soak)\n\n" + body +
                   "\n<!-- bench:watch-soak:end -->")
        if "<!-- bench:watch-soak:begin -->" in text:
            text = re.sub(r"<!-- bench:watch-soak:begin -->.*<!-- bench:watch-soak:end -->",
                          lambda _: section, text, flags=re.S)
        else:
            text = text.replace("<!-- bench:memory:end -->", "<!-- bench:memory:end -->\n\n" + section)
        open(path, "w").write(text)


if __name__ == "__main__":
    main()
