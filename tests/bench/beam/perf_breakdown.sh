#!/usr/bin/env bash
# Where the BEAM's time goes during fib(25) with `orion capture` of an unrelated function
# attached: perf samples (cpu-clock; this kernel has no hardware counters) of the node's
# threads, grouped by where they land. Run as root after building orion, probe_floor and
# orion_bench_beams:
#
#   tests/bench/beam/perf_breakdown.sh /tmp/build-bench [unrelated|empty|semaphore|untraced]
#
# ORION_BIN overrides the orion binary (default BUILD_DIR/userspace/orion).
set -euo pipefail
BUILD="${1:?usage: $0 BUILD_DIR [unrelated|empty|semaphore|untraced]}"
STATE="${2:-unrelated}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
ERL="$("$ROOT/beam_dtrace_build/build.sh" --print-prefix)/bin/erl"
WORK="$(mktemp -d)"

coproc NODE { "$ERL" -emu_flavor emu -noshell -pa "$BUILD/tests/bench/beam/ebin" -eval 'orion_bench:serve()'; }
# Sets ANSWER (coproc descriptors do not reach $(...) subshells).
ask() { echo "$1" >&${NODE[1]}; read -r ANSWER <&${NODE[0]}; }
ask info
PID="$(echo "$ANSWER" | cut -d' ' -f2)"
TRACER=""
cleanup() {
  [[ -n "$TRACER" ]] && kill -INT "$TRACER" 2>/dev/null && wait "$TRACER" 2>/dev/null || true
  echo quit >&${NODE[1]} 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

: >"$WORK/err"  # exists before the background tracer's redirection creates it
case "$STATE" in
  unrelated)
    "${ORION_BIN:-$BUILD/userspace/orion}" capture --pid "$PID" --duration 600 --json unrelated:f/1 \
      >"$WORK/out" 2>"$WORK/err" & TRACER=$!
    until grep -q capturing "$WORK/err"; do sleep 0.05; done ;;
  empty|semaphore)
    "$BUILD/tests/bench/probe_floor" --pid "$PID" "$STATE" >"$WORK/err" & TRACER=$!
    until grep -q ready "$WORK/err"; do sleep 0.05; done ;;
  untraced) ;;
  *) echo "unknown state $STATE" >&2; exit 2 ;;
esac

perf record -q -e cpu-clock -F 2999 -p "$PID" -o "$WORK/perf.data" -- sleep 4 2>/dev/null &
PERF=$!
sleep 0.3
end=$((SECONDS + 3))
runs=0
while ((SECONDS < end)); do ask "run fib 25"; runs=$((runs + 1)); done
wait "$PERF"
echo "state: $STATE; $runs runs of fib(25) in 3 s, perf samples of the BEAM's threads (pid $PID):"
echo
echo '```'
# awk reads the whole report (no early exit, so no SIGPIPE under pipefail).
perf report -i "$WORK/perf.data" --stdio --sort dso 2>/dev/null | awk '!/^#/ && NF && n++ < 8'
echo
perf report -i "$WORK/perf.data" --stdio --sort dso,sym 2>/dev/null | awk '!/^#/ && NF && n++ < 25'
echo '```'
