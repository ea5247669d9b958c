#!/usr/bin/env bash
# Runs every test: set-up (packages, USDT OTP, build), then unit and integration tests
# through ctest, then the fuzzers for a bounded time.  Prints one summary line at the end.
#
#   scripts/test.sh                     # all tests, on the releases CI builds (OTP 25 and 29)
#   scripts/test.sh --all-releases      # the full matrix: builds what is missing (a stock OTP
#                                       # 27, the patched 27 and 29, the debug JIT
#                                       # emulator too) and runs the release-dependent
#                                       # tests on every release and build (ctest label
#                                       # all-releases); scripts/release_matrix.sh
#                                       # runs them row by row for docs/releases.md's table
#   scripts/test.sh -R capture          # extra arguments go to ctest
#   ORION_REQUIRE_BPF=1 scripts/test.sh # a BPF test that cannot run fails instead of skipping
set -uo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"

all_releases=0
ctest_args=()
for arg in "$@"; do
  if [[ "$arg" == --all-releases ]]; then all_releases=1; else ctest_args+=("$arg"); fi
done
readonly user_ctest_args=${#ctest_args[@]}
setup_args=()
if (( all_releases )); then
  setup_args=(--all-releases)
else
  # The tests of releases CI does not build (their names end in /OTP27).
  ctest_args+=(--label-exclude all-releases)
fi

setup_start=$SECONDS
"$ROOT/scripts/setup.sh" "${setup_args[@]}" || { echo "test: set-up failed" >&2; exit 1; }
echo "set-up took $(( SECONDS - setup_start )) s"

echo
echo "==> ctest (ORION_REQUIRE_BPF=${ORION_REQUIRE_BPF:-0}$( (( all_releases )) && echo ", all releases"))"
ctest_log="$BUILD_DIR/ctest.log"
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 900 "${ctest_args[@]}") 2>&1 | tee "$ctest_log"
ctest_rc=${PIPESTATUS[0]}

fuzz_rc=0
if (( user_ctest_args == 0 )) && [[ -x "$ROOT/scripts/fuzz.sh" ]]; then
  echo
  echo "==> fuzzers (${ORION_FUZZ_SECONDS:-20} s each)"
  "$ROOT/scripts/fuzz.sh"
  fuzz_rc=$?
fi

summary="$(grep -E '^[0-9]+% tests passed' "$ctest_log" | tail -1)"
skipped="$(grep -cE '\*\*\*Skipped|Not Run' "$ctest_log")"
echo
echo "SUMMARY: ${summary:-ctest produced no summary}; skipped: $skipped; fuzz: $([[ $fuzz_rc -eq 0 ]] && echo ok || echo FAILED)"
if (( skipped )); then
  echo "skipped tests (each says why above):"
  grep -E '\*\*\*Skipped|Not Run' "$ctest_log" | sed 's/^/  /'
fi
(( ctest_rc == 0 && fuzz_rc == 0 ))
