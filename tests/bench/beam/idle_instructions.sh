#!/usr/bin/env bash
# The idle cost of Orion's BEAM patches, counted in instructions: what the emulator executes
# for fib(27) with nothing attached, on the patched USDT OTP and on the same OTP built without
# the patches (beam_dtrace_build/build.sh --no-patches), under valgrind's callgrind.
#
# idle_ab.sh times the same question, and on a shared VM a wall-clock ratio moves by several
# per cent between runs, and between builds whose code merely sits at other addresses. An
# instruction count does not move with the machine: it says whether the patches make the
# emulator do more work, which is what they could cost idle. Each build runs the workload
# N times and 0 times in fresh nodes (+S 1); the difference is the workload's instructions
# (boot varies by about 1 M instructions between runs, so N is large enough to make that
# noise small against the difference).
#
#   sudo tests/bench/beam/idle_instructions.sh [N]    # default 30 (about a minute)
#   sudo ORION_IDLE_FLAVOR=jit tests/bench/beam/idle_instructions.sh   # the JIT (patch 0012)
#
# ORION_IDLE_AB_BASE=PREFIX compares against another OTP prefix, as idle_ab.sh does;
# ORION_IDLE_RELEASE=27 or 29 compares that release's patched and stock builds (build.sh --otp
# 27|29, and --no-patches); both releases' sets pair in the JIT too (their patch 0004). In the
# JIT valgrind runs with --smc-check=all (the JIT writes its code before running it).
# ORION_VALGRIND=PATH runs another valgrind than the one on PATH, for both builds: OTP 29's JIT
# needs a newer one than Debian 12's 3.19 (tests/bench/beam/build_valgrind.sh builds trixie's):
#
#   sudo ORION_VALGRIND="$(tests/bench/beam/build_valgrind.sh)" ORION_IDLE_RELEASE=29 \
#     ORION_IDLE_FLAVOR=jit tests/bench/beam/idle_instructions.sh 20
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
readonly N="${1:-30}"
source "$ROOT/tests/bench/beam/idle_lib.sh"
idle_prefixes
idle_callgrind
idle_ebin

# Instructions the node's busiest process (beam.emu or beam.jit) executed running fib(27) $2
# times.
instructions() {
  local prefix="$1" runs="$2" out="$ebin/cg.$RANDOM"
  mkdir "$out"
  # A node that dies under valgrind still leaves counts (of its boot): fail instead of
  # printing a difference of two crashes (OTP 29's JIT does so under an unpatched valgrind).
  if ! "${callgrind[@]}" --callgrind-out-file="$out/cg.%p" \
    "$prefix/bin/erl" -emu_flavor "$IDLE_FLAVOR" +S 1 -noshell -pa "$ebin" -eval \
    "[orion_bench:fib(27) || _ <- lists:seq(1, $runs)], halt()." >"$out/log" 2>&1; then
    echo "idle_instructions: the $IDLE_FLAVOR node of $prefix failed under callgrind (fib(27) x $runs):" >&2
    grep -m1 -A3 'Process terminating' "$out/log" >&2 || tail -5 "$out/log" >&2
    return 1
  fi
  grep -h '^summary:' "$out"/cg.* | awk '{print $2}' | sort -n | tail -1
}

echo "idle_instructions: callgrind ($callgrind_version), fib(27) x $N and x 0 on each build ($IDLE_FLAVOR flavor)" >&2
b0="$(instructions "$base" 0)"; bn="$(instructions "$base" "$N")"
p0="$(instructions "$patched" 0)"; pn="$(instructions "$patched" "$N")"
python3 - "$b0" "$bn" "$p0" "$pn" "$N" "$base_label" "$IDLE_FLAVOR" "$callgrind_version" <<'PY'
import sys
b0, bn, p0, pn, n = (int(x) for x in sys.argv[1:6])
base, flavor, valgrind = sys.argv[6], sys.argv[7], sys.argv[8]
calls = 635621 * n  # fib(27) makes 635,621 calls of fib/1
b, p = bn - b0, pn - p0
print(f"| fib(27) x {n}, nothing attached, {flavor} flavor ({valgrind}) | instructions | per fib/1 call |")
print("|---|---:|---:|")
print(f"| {base} | {b:,} | {b / calls:.2f} |")
print(f"| USDT OTP with Orion's patches | {p:,} | {p / calls:.2f} |")
print(f"| patched / base | {p / b:.4f} | {(p - b) / calls:+.2f} |")
PY
