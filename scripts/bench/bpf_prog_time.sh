#!/usr/bin/env bash
# Time inside orion's capture programs per run (kernel.bpf_stats_enabled), on fib under a
# capture of fib/1: the figure docs/performance.md quotes for bpf/usdt_fast.h.
#
#   sudo scripts/bench/bpf_prog_time.sh [SECONDS]      # default 5
#   ORION_BUILD_DIR=/tmp/b sudo scripts/bench/bpf_prog_time.sh
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
readonly SECONDS_TO_RUN="${1:-5}"
[[ $EUID -eq 0 ]] || { echo "bpf_prog_time: run as root (BPF)" >&2; exit 1; }
prefix="$("$ROOT/beam_dtrace_build/build.sh" --print-prefix)"
work="$(mktemp -d)"
node_pid=""
previous_stats="$(sysctl -n kernel.bpf_stats_enabled)"
cleanup() {
  sysctl -q kernel.bpf_stats_enabled="$previous_stats"
  [[ -n "$node_pid" ]] && kill -9 "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
erlc -o "$work" "$ROOT/tests/bench/beam/orion_bench.erl"
# fib(20) in a loop, forever: about a million fib/1 calls a second under the capture.
"$prefix/bin/erl" -emu_flavor emu -noshell -pa "$work" \
  -eval 'io:format("~s~n", [os:getpid()]), (fun L() -> orion_bench:fib(20), L() end)().' \
  > "$work/node.out" &
for _ in $(seq 50); do [[ -s "$work/node.out" ]] && break; sleep 0.1; done
node_pid="$(head -1 "$work/node.out")"
sysctl -q kernel.bpf_stats_enabled=1
"$BUILD_DIR/userspace/orion" capture --pid "$node_pid" --duration "$((SECONDS_TO_RUN + 2))" \
  --max-rate 0 'orion_bench:fib/1' > /dev/null 2>&1 &
capture_pid=$!
sleep "$SECONDS_TO_RUN"
bpftool -j prog show | python3 -c '
import json, sys
print("| BPF program | runs | ns per run |")
print("|---|---:|---:|")
for p in json.load(sys.stdin):
    if p.get("name", "") in ("orion_entry", "orion_return") and p.get("run_cnt"):
        name, runs, ns = p["name"], p["run_cnt"], p["run_time_ns"]
        print(f"| {name} | {runs:,} | {ns / runs:.0f} |")
'
wait "$capture_pid" || true
