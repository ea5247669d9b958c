#!/usr/bin/env bash
# Idle fib(27) on fresh nodes of several OTP prefixes, rotated: round r samples prefix
# (k + r) mod n at position k, so each prefix takes each position equally often and a drift of
# the machine weighs on all alike. Each sample is the fastest of 15 runs in one fresh node.
# Prints, per prefix, the fastest and median sample and their ratio to the first prefix's.
#
# idle_ab.sh answers "patched against unpatched"; this one asks how much builds that should
# not differ do differ on this machine: give the same prefix twice (an A/A inside the same
# rotation), or a stock tree rebuilt with a no-op change, beside the patched one.
#
#   sudo tests/bench/beam/idle_rotation.sh PREFIX... [ROUNDS=40 in the environment]
#   sudo tests/bench/beam/idle_rotation.sh "$(beam_dtrace_build/build.sh --no-patches --print-prefix)" \
#        "$(beam_dtrace_build/build.sh --print-prefix)" \
#        "$(beam_dtrace_build/build.sh --no-patches --print-prefix)"
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
(( $# >= 2 )) || { echo "usage: $0 PREFIX PREFIX [PREFIX...]" >&2; exit 2; }
source "$ROOT/tests/bench/beam/idle_lib.sh"
idle_require_erl "$@"
idle_ebin
prefixes=("$@")
n=${#prefixes[@]}
declare -a samples
for ((r = 0; r < ${ROUNDS:-40}; r++)); do
  for ((k = 0; k < n; k++)); do
    j=$(( (k + r) % n ))
    samples[$j]+=" $(idle_sample "${prefixes[$j]}")"
  done
done
for ((j = 0; j < n; j++)); do echo "${prefixes[$j]}${samples[$j]}"; done | python3 -c '
import statistics, sys
rows = [line.split() for line in sys.stdin]
first = [int(x) for x in rows[0][1:]]
print("| prefix | fastest sample, µs | median sample, µs | fastest / first | median / first |")
print("|---|---:|---:|---:|---:|")
for i, row in enumerate(rows):
    v = [int(x) for x in row[1:]]
    print(f"| {i + 1}: `{row[0]}` | {min(v):,} | {statistics.median(v):,.0f} | "
          f"{min(v) / min(first):.3f} | {statistics.median(v) / statistics.median(first):.3f} |")
'
