#!/usr/bin/env bash
# The idle cost of Orion's BEAM patches, A/B: fib(27) on a fresh node of the patched USDT OTP
# and of the same OTP built without the patches (beam_dtrace_build/build.sh --no-patches),
# nothing attached, alternating nodes PAIRS times (in the order A B B A ...). Each sample is
# the fastest of 15 runs in one node (the machine's noise only ever adds time); the table
# compares the fastest samples and the medians of the samples.
#
#   sudo tests/bench/beam/idle_ab.sh [PAIRS]      # default 8
#
# ORION_IDLE_AB_BASE=PREFIX compares against another OTP prefix instead of the unpatched one:
# e.g. one built by beam_dtrace_build/build.sh at an earlier commit (fewer patches), to see
# what the newest patch costs idle.
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
readonly PAIRS="${1:-8}"
source "$ROOT/tests/bench/beam/idle_lib.sh"
idle_prefixes
idle_ebin
declare -a p_samples s_samples
# Which node of a pair starts first alternates (base, patched, patched, base, ...), so that
# whatever the first of two runs pays or gains weighs on both sides alike.
for ((i = 0; i < PAIRS; i++)); do
  if (( i % 2 == 0 )); then
    s_samples+=("$(idle_sample "$base")")
    p_samples+=("$(idle_sample "$patched")")
  else
    p_samples+=("$(idle_sample "$patched")")
    s_samples+=("$(idle_sample "$base")")
  fi
done
python3 - "${p_samples[*]}" "${s_samples[*]}" "$base_label" <<'PY'
import statistics, sys
p = [int(x) for x in sys.argv[1].split()]
s = [int(x) for x in sys.argv[2].split()]
base = sys.argv[3]
print("| fib(27), µs, nothing attached | fastest sample | median sample |")
print("|---|---:|---:|")
print(f"| {base} | {min(s):,} | {statistics.median(s):,.0f} |")
print(f"| USDT OTP with Orion's patches | {min(p):,} | {statistics.median(p):,.0f} |")
print(f"| patched / base | {min(p) / min(s):.3f} | {statistics.median(p) / statistics.median(s):.3f} |")
print()
print(f"Samples (µs), base: {' '.join(map(str, s))}; patched: {' '.join(map(str, p))}.")
PY
