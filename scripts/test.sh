#!/usr/bin/env bash
# Runs every test: set-up (packages, USDT OTP, build), then unit and integration tests
# through ctest, then the capture and probe tests again on the patched build of each later
# release CI builds (OTP 29: scripts/ci_releases.sh), then the fuzzers for a bounded time.
# Prints one summary line at the end.
#
#   scripts/test.sh                     # all tests, on the releases CI builds (OTP 25 and 29)
#   scripts/test.sh --all-releases      # the full matrix: builds what is missing (a stock and
#                                       # a patched OTP 27, the debug JIT emulator too) and
#                                       # runs the release-dependent tests on every release
#                                       # and build (ctest label all-releases, and the patched
#                                       # 27's run); scripts/release_matrix.sh
#                                       # runs them row by row for docs/releases.md's table
#   scripts/test.sh -R capture          # extra arguments go to ctest (then neither the later
#                                       # releases' runs nor the fuzzers run)
#   ORION_REQUIRE_BPF=1 scripts/test.sh # a BPF test that cannot run fails instead of skipping
set -uo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
# shellcheck source=scripts/ci_releases.sh
source "$ROOT/scripts/ci_releases.sh"

all_releases=0
ctest_args=()
for arg in "$@"; do
  if [[ "$arg" == --all-releases ]]; then all_releases=1; else ctest_args+=("$arg"); fi
done
readonly user_ctest_args=${#ctest_args[@]}
setup_args=()
patched_releases=("${CI_PATCHED_RELEASES[@]}")
if (( all_releases )); then
  setup_args=(--all-releases)
  patched_releases=("${ALL_PATCHED_RELEASES[@]}")
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

# The later releases' patched builds: the tests of their rows in scripts/release_matrix.sh that
# take their node from ORION_OTP_PREFIX (capture, pairing in the BEAM and in BPF, the probe
# tests), run again with the release's prefix.
release_logs=()
if (( user_ctest_args == 0 )); then
  for release in "${patched_releases[@]}"; do
    prefix="$("$ROOT/beam_dtrace_build/build.sh" --otp "$release" --print-prefix)"
    regex="$("$ROOT/scripts/release_matrix.sh" --patched-regex "$release")" || { ctest_rc=1; continue; }
    log="$BUILD_DIR/ctest-otp$release.log"
    release_logs+=("$release:$log")
    echo
    echo "==> ctest on the patched OTP $release ($prefix)"
    (cd "$BUILD_DIR" && ORION_OTP_PREFIX="$prefix" ctest --output-on-failure --timeout 900 -R "$regex") 2>&1 |
      tee "$log"
    (( PIPESTATUS[0] == 0 )) || ctest_rc=1
  done
fi

fuzz_rc=0
if (( user_ctest_args == 0 )) && [[ -x "$ROOT/scripts/fuzz.sh" ]]; then
  echo
  echo "==> fuzzers (${ORION_FUZZ_SECONDS:-20} s each)"
  "$ROOT/scripts/fuzz.sh"
  fuzz_rc=$?
fi

summary="$(grep -E '^[0-9]+% tests passed' "$ctest_log" | tail -1)"
logs=("$ctest_log")
for entry in "${release_logs[@]}"; do
  release="${entry%%:*}" log="${entry#*:}"
  logs+=("$log")
  summary+="; OTP $release: $(grep -E '^[0-9]+% tests passed' "$log" | tail -1 || echo "no summary")"
done
skipped="$(cat "${logs[@]}" | grep -cE '\*\*\*Skipped|Not Run')"
echo
echo "SUMMARY: ${summary:-ctest produced no summary}; skipped: $skipped; fuzz: $([[ $fuzz_rc -eq 0 ]] && echo ok || echo FAILED)"
if (( skipped )); then
  echo "skipped tests (each says why above):"
  cat "${logs[@]}" | grep -E '\*\*\*Skipped|Not Run' | sed 's/^/  /'
fi
(( ctest_rc == 0 && fuzz_rc == 0 ))
