#!/usr/bin/env bash
# The release matrix: runs the release-dependent integration tests on every OTP release, flavor
# and mode orion supports, one ctest run per row (each under the machine's integration-test
# lock, /tmp/orion-itest.lock, so that the lock is held minutes at a time), and writes the result
# table into docs/releases.md (between its matrix markers) with the date, the commit and the OTP
# build of each row (its version and prefix key).
#
#   sudo scripts/release_matrix.sh              # every row; rewrites docs/releases.md's table
#   sudo scripts/release_matrix.sh 27 29        # only the rows of these releases (the table's
#                                               # other rows keep their last results)
#   sudo scripts/release_matrix.sh --list       # the rows and their ctest regexes, runs nothing
#   scripts/release_matrix.sh --patched-regex 29  # one regex for the rows of 29 that run on its
#                                               # patched build (scripts/test.sh runs them)
#
# A row whose OTP build is missing is reported "not built" with the command that builds it
# (scripts/test.sh --all-releases builds them all). Tests run with ORION_REQUIRE_BPF=1, so a
# test that cannot run fails instead of skipping. ORION_BUILD_DIR names the CMake build (build/).
set -uo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
readonly DOC="$ROOT/docs/releases.md"
readonly BUILDER="$ROOT/beam_dtrace_build/build.sh"
readonly LOG_DIR="$BUILD_DIR/release_matrix"

die() { printf 'release_matrix: error: %s\n' "$*" >&2; exit 1; }

# The rows: release|flavor|mode|OTP build (build.sh options, or "debian" for Debian's erl)|ctest
# regex. The capture tests take their node from ORION_OTP_PREFIX (the patched build of the
# release); tracer mode's take a stock JIT node of the release whatever the prefix.
readonly ROWS=(
  "25|emu|probes, paired in the BEAM|--otp 25|^Pairing/.*/InBeamEmu( |$)"
  "25|emu|probes, paired in BPF|--otp 25|^Pairing/.*/InBpfEmu( |$)|^(ProbeCountBpfTest|UsdtPatchTest)\\."
  "25|jit|probes, paired in the BEAM|--otp 25|^Pairing/.*/InBeamJit(FramePointers)?( |$)|^JitCaptureTest\\."
  "25|jit, debug emulator type|probes, paired in the BEAM|--debug|^Pairing/CoreCaptureTest\\..*/InBeamJitDebug( |$)"
  "25|jit|tracer|debian|^StockReleases/TracerReleaseTest\\..*/OTP25( |$)"
  "25|jit|top|--otp 25|^Flavors/TopTest\\..*/jit( |$)"
  "25|emu|top|--otp 25|^Flavors/TopTest\\..*/emu( |$)"
  "27|emu|probes, paired in the BEAM|--otp 27|^Pairing/.*/InBeamEmu( |$)"
  "27|emu|probes, paired in BPF|--otp 27|^Pairing/.*/InBpfEmu( |$)|^(ProbeCountBpfTest|UsdtPatchTest)\\."
  "27|jit|probes, paired in the BEAM|--otp 27|^Pairing/.*/InBeamJit(FramePointers)?( |$)|^JitCaptureTest\\.|^ReleaseCaptureTest\\..*/OTP27( |$)"
  "27|jit|tracer|--otp 27 --no-patches|^StockReleases/TracerReleaseTest\\..*/OTP27( |$)"
  "27|emu|tracer|--otp 27 --no-patches|^StockReleases/TracerReleaseTest\\..*/OTP27Emu( |$)"
  "29|emu|probes, paired in the BEAM|--otp 29|^Pairing/.*/InBeamEmu( |$)"
  "29|emu|probes, paired in BPF|--otp 29|^Pairing/.*/InBpfEmu( |$)|^(ProbeCountBpfTest|UsdtPatchTest)\\."
  "29|jit|probes, paired in the BEAM|--otp 29|^Pairing/.*/InBeamJit(FramePointers)?( |$)|^JitCaptureTest\\."
  "29|jit|tracer|--otp 29 --no-patches|^StockReleases/TracerReleaseTest\\..*/OTP29( |$)"
  "29|emu|tracer|--otp 29 --no-patches|^StockReleases/TracerReleaseTest\\..*/OTP29Emu( |$)"
  "29|jit|top (not the busy loop, TCP bytes)|--otp 29|^Flavors/TopTest\\.(Mailbox|Selective|SlowAndFast|BurningReductions|Pids|PidLayout|GcCounts|PlainOutput|NothingStays)[A-Za-z0-9]*/jit( |$)"
  "29|emu|top (not the busy loop, TCP bytes)|--otp 29|^Flavors/TopTest\\.(Mailbox|Selective|SlowAndFast|BurningReductions|Pids|PidLayout|GcCounts|PlainOutput|NothingStays)[A-Za-z0-9]*/emu( |$)"
  "29|jit, emu|top, pids from the command line|--otp 29 --no-patches|^StockOtp29/TopStockTest\\."
)

list=0
patched_regex=""
releases=()
while (( $# )); do
  arg="$1"; shift
  case "$arg" in
    --list) list=1 ;;
    --patched-regex)
      [[ "${1:-}" =~ ^(25|27|29)$ ]] || die "--patched-regex needs a release (25 27 29)"
      patched_regex="$1"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    25|27|29) releases+=("$arg") ;;
    *) die "unknown argument: $arg (releases: 25 27 29; --list, --patched-regex RELEASE)" ;;
  esac
done

wanted() { (( ${#releases[@]} == 0 )) || [[ " ${releases[*]} " == *" $1 "* ]]; }

# The rows of a release that run on its patched build (build.sh --otp RELEASE): their tests
# take their node from ORION_OTP_PREFIX. One ctest regex, the rows' alternatives joined.
if [[ -n "$patched_regex" ]]; then
  joined=""
  for row in "${ROWS[@]}"; do
    IFS='|' read -r rel _ _ build _ <<<"$row"
    [[ "$rel" == "$patched_regex" && "$build" == "--otp $rel" ]] || continue
    regex="${row#*|*|*|*|}"
    joined+="${joined:+|}$regex"
  done
  [[ -n "$joined" ]] || die "no row of OTP $patched_regex runs on its patched build"
  echo "$joined"
  exit 0
fi

if (( list )); then
  for row in "${ROWS[@]}"; do
    IFS='|' read -r rel flavor mode build regex <<<"$row"
    printf '%s %s %-40s %-22s %s\n' "$rel" "$flavor" "$mode" "$build" "${row#*|*|*|*|}"
  done
  exit 0
fi
[[ $EUID -eq 0 ]] || die "run as root (the tests attach BPF programs): sudo $0"
[[ -d "$BUILD_DIR" ]] || die "no build in $BUILD_DIR (scripts/setup.sh makes it)"
[[ -f "$DOC" ]] || die "no $DOC"
mkdir -p "$LOG_DIR"

# The OTP version a build.sh prefix holds (its .orion-build), "" when it is not built.
prefix_otp() { sed -n 's/^otp=//p' "$1/.orion-build" 2>/dev/null; }
# The key of a build.sh prefix (its .orion-build's, the hash of its sources, patches and recipe).
prefix_key() { sed -n 's/^key=//p' "$1/.orion-build" 2>/dev/null; }

# A row's words as a log file's name: "jit, debug emulator type probes, paired in BPF" is
# jit-debug-emulator-type-probes-paired-in-bpf.
log_name() { tr 'A-Z' 'a-z' <<<"$1" | tr -cs 'a-z0-9' '-' | sed 's/-*$//'; }

# One row: prints "| release | flavor | mode | OTP build | result | tests |".
run_row() {
  local rel="$1" flavor="$2" mode="$3" build="$4" regex="$5" prefix otp env=() log out
  if [[ "$build" == debian ]]; then
    otp="$(cat /usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null | head -1) (Debian's erl)"
  else
    # shellcheck disable=SC2086
    prefix="$("$BUILDER" $build --print-prefix)"
    otp="$(prefix_otp "$prefix")"
    if [[ -z "$otp" ]]; then
      echo "| $rel | $flavor | $mode | not built | not run: build it with \`build.sh $build\` | 0 |"
      return
    fi
    [[ "$build" == *--no-patches* ]] && otp+=" stock" || otp+=" patched"
    otp+=", key $(prefix_key "$prefix")"
    # The capture tests' node: the patched build of the release (a stock row's tests take
    # their node from build.sh themselves).
    [[ "$build" == *--no-patches* ]] || env=(ORION_OTP_PREFIX="$prefix")
  fi
  log="$LOG_DIR/otp$rel-$(log_name "$flavor $mode").log"
  env "${env[@]}" ORION_REQUIRE_BPF=1 flock -o /tmp/orion-itest.lock \
    ctest --test-dir "$BUILD_DIR" -R "$regex" --output-on-failure --timeout 600 > "$log" 2>&1
  local passed failed skipped total
  passed="$(grep -cE 'Test +#[0-9]+: .* +Passed' "$log")"
  failed="$(grep -cE 'Test +#[0-9]+: .*\*\*\*(Failed|Timeout|Exception)|Test +#[0-9]+: .*(Not Run|SEGFAULT|Subprocess aborted)' "$log")"
  skipped="$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$log")"
  total=$(( passed + failed + skipped ))
  local result
  if (( total == 0 )); then
    result="no test matched"
  elif (( failed )); then
    result="**failed**: $failed of $total ($(grep -oE 'Test +#[0-9]+: [^ ]+ .*\*\*\*(Failed|Timeout|Exception)' "$log" |
             sed -E 's/Test +#[0-9]+: ([^ ]+).*/\1/' | sed -E 's/^Pairing\///' | paste -sd, - | sed 's/,/, /g'))"
  elif (( skipped )); then
    result="passed $passed, skipped $skipped"
  else
    result="passed"
  fi
  echo "| $rel | $flavor | $mode | $otp | $result | $passed / $total |"
}

commit="$(git -C "$ROOT" rev-parse --short HEAD)"
git -C "$ROOT" diff --quiet HEAD -- userspace bpf tests beam_dtrace_build 2>/dev/null || commit+=" (with uncommitted changes)"
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
# The rows not run this time keep their line from the last table.
old_rows="$(sed -n '/<!-- matrix:begin -->/,/<!-- matrix:end -->/p' "$DOC" | grep -E '^\| (25|27|29) \|' || true)"
{
  echo "<!-- matrix:begin -->"
  echo "Generated by \`scripts/release_matrix.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit$( (( ${#releases[@]} )) && echo " (releases ${releases[*]} run then; the other rows are from the run before)"), kernel $(uname -r)."
  echo
  echo "| release | flavor | mode | OTP build | result | passed / tests |"
  echo "|---|---|---|---|---|---:|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r rel flavor mode build _ <<<"$row"
    regex="${row#*|*|*|*|}"
    if wanted "$rel"; then
      line="$(run_row "$rel" "$flavor" "$mode" "$build" "$regex")"
      echo "release_matrix: $line" >&2
    else
      line="$(grep -F "| $rel | $flavor | $mode |" <<<"$old_rows" | head -1)"
      [[ -n "$line" ]] || line="| $rel | $flavor | $mode | | not run yet | |"
    fi
    echo "$line"
  done
  echo "<!-- matrix:end -->"
} > "$table"
python3 - "$DOC" "$table" <<'PY'
import re, sys
doc, table = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(doc).read()
pattern = re.compile(r"<!-- matrix:begin -->.*?<!-- matrix:end -->", re.S)
if not pattern.search(text):
    sys.exit(f"release_matrix: {doc} has no <!-- matrix:begin --> ... <!-- matrix:end --> block")
open(doc, "w").write(pattern.sub(lambda _: table, text))
PY
echo "release_matrix: wrote the table in ${DOC#"$ROOT/"} (logs in $LOG_DIR)" >&2
! grep -qE '^\| .*\*\*failed\*\*' "$table"
