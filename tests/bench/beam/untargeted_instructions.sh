#!/usr/bin/env bash
# What untargeted code executes while a capture pairs another function, counted in instructions
# (callgrind): issue 20's "untargeted code while a capture runs" asked without the wall clock.
#
# untargeted_ab.py times the question, and on this shared VM a fib run's wall time moves by
# tens of per cent from block to block: a few per cent between medians is within that. Here
# one node of the patched USDT OTP (the JIT flavor by default) runs fib(27) N times and 0 times
# under callgrind (+S 1), in two states:
#   A  nothing attached;
#   B  the emulator's state during `orion capture orion_bench:calls/2` (a loaded function of
#      the workloads' module that never runs, as untargeted_ab.py's B): its breakpoint
#      installed through the pairing table and orion__call's and orion__calls' semaphores
#      raised (tests/bench/probe_floor pair-semaphore), before the runs start.
# B has no BPF program attached: a program only runs when a probe fires, and no probe fires
# for code the capture does not target (orion capture's process itself is not the node's
# work). Each node runs the workload N times or 0 times; the difference is the workload's
# instructions, so what starting the node and installing the breakpoint cost cancels out.
#
#   sudo tests/bench/beam/untargeted_instructions.sh BUILD_DIR [N]   # default N 20
#   sudo ORION_IDLE_FLAVOR=emu tests/bench/beam/untargeted_instructions.sh build
#
# Prints a Markdown table. Needs valgrind and BUILD_DIR/tests/bench/probe_floor.
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
(( $# >= 1 )) || { echo "usage: $0 BUILD_DIR [N]" >&2; exit 2; }
readonly BUILD="$1" N="${2:-20}"
: "${ORION_IDLE_FLAVOR:=jit}"
source "$ROOT/tests/bench/beam/idle_lib.sh"
readonly FLOOR="$BUILD/tests/bench/probe_floor"
[[ -x "$FLOOR" ]] || { echo "untargeted_instructions: no $FLOOR (cmake --build $BUILD --target probe_floor)" >&2; exit 1; }
idle_callgrind
patched="$("$ROOT/beam_dtrace_build/build.sh" --otp "${ORION_IDLE_RELEASE:-25}" --print-prefix)"
idle_require_erl "$patched"
binary="$(find "$patched" -path "*/erts-*/bin/beam.$ORION_IDLE_FLAVOR" | head -1)"
[[ -n "$binary" ]] || { echo "untargeted_instructions: no beam.$ORION_IDLE_FLAVOR under $patched" >&2; exit 1; }
idle_ebin

# Instructions the node executed (its busiest process under callgrind) running fib(27) $2 times
# in state $1 (A or B).
instructions() {
  local state="$1" runs="$2" dir node floor_pid="" pid
  dir="$(mktemp -d "$ebin/cg.XXXX")"
  mkfifo "$dir/in"
  # The node writes its pid, waits for a line, runs the workload, says so, waits for another
  # line and halts: the state is set up and undone while it waits.
  "${callgrind[@]}" --callgrind-out-file="$dir/cg.%p" \
    "$patched/bin/erl" -emu_flavor "$IDLE_FLAVOR" +S 1 -noshell -pa "$ebin" -eval "
      {module, _} = code:ensure_loaded(orion_bench),
      ok = file:write_file(\"$dir/pid\", os:getpid()),
      _ = io:get_line(''),
      [orion_bench:fib(27) || _ <- lists:seq(1, $runs)],
      io:format(\"done~n\"), _ = io:get_line(''), halt()." \
    <"$dir/in" >"$dir/out" 2>"$dir/valgrind.log" &
  node=$!
  exec {fd}>"$dir/in"
  for _ in $(seq 1200); do [[ -s "$dir/pid" ]] && break; sleep 0.1; done
  [[ -s "$dir/pid" ]] || { echo "untargeted_instructions: the node did not start" >&2; cat "$dir/valgrind.log" >&2; exit 1; }
  pid="$(cat "$dir/pid")"
  if [[ "$state" == B ]]; then
    "$FLOOR" --pid "$pid" --exe "$binary" pair-semaphore orion_bench:calls/2 >"$dir/floor" 2>&1 &
    floor_pid=$!
    for _ in $(seq 3000); do grep -q ready "$dir/floor" && break; sleep 0.1; done
    grep -q ready "$dir/floor" || { echo "untargeted_instructions: probe_floor:" >&2; cat "$dir/floor" >&2; exit 1; }
  fi
  echo go >&"$fd"
  for _ in $(seq 36000); do grep -q done "$dir/out" && break; sleep 0.1; done
  if [[ -n "$floor_pid" ]]; then kill -TERM "$floor_pid"; wait "$floor_pid" || true; fi
  echo quit >&"$fd"
  exec {fd}>&-
  wait "$node" || true
  grep -h '^summary:' "$dir"/cg.* | awk '{print $2}' | sort -n | tail -1
}

echo "untargeted_instructions: callgrind, fib(27) x $N and x 0, A and B ($IDLE_FLAVOR flavor)" >&2
a0="$(instructions A 0)"; an="$(instructions A "$N")"
b0="$(instructions B 0)"; bn="$(instructions B "$N")"
python3 - "$a0" "$an" "$b0" "$bn" "$N" "$IDLE_FLAVOR" <<'PY'
import sys
a0, an, b0, bn, n = (int(x) for x in sys.argv[1:6])
flavor = sys.argv[6]
calls = 635621 * n  # fib(27) makes 635,621 calls of fib/1
a, b = an - a0, bn - b0
print(f"| fib(27) x {n}, patched USDT OTP, {flavor} flavor | instructions | per fib/1 call |")
print("|---|---:|---:|")
print(f"| A: nothing attached | {a:,} | {a / calls:.2f} |")
print(f"| B: the emulator's state of a capture of `orion_bench:calls/2` | {b:,} | {b / calls:.2f} |")
print(f"| B / A | {b / a:.4f} | {(b - a) / calls:+.2f} |")
PY
