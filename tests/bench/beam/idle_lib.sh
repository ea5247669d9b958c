# Shared by the idle benchmarks (idle_ab.sh, idle_instructions.sh, idle_rotation.sh); sourced,
# with ROOT set to the repository. fib(27) on fresh nodes of USDT OTP prefixes, in the flavor
# ORION_IDLE_FLAVOR names (emu by default; jit: the patched JIT of patch 0012 against the
# unpatched JIT).
readonly IDLE_FLAVOR="${ORION_IDLE_FLAVOR:-emu}"
[[ "$IDLE_FLAVOR" == emu || "$IDLE_FLAVOR" == jit ]] ||
  { echo "$(basename "$0"): ORION_IDLE_FLAVOR is emu or jit, not $IDLE_FLAVOR" >&2; exit 2; }

# Sets `patched` (beam_dtrace_build/build.sh's prefix of OTP ORION_IDLE_RELEASE, default 25),
# `base` (ORION_IDLE_AB_BASE, or the same release built without Orion's patches) and
# `base_label`; fails if either has no erl.
idle_prefixes() {
  local release=(--otp "${ORION_IDLE_RELEASE:-25}")
  patched="$("$ROOT/beam_dtrace_build/build.sh" "${release[@]}" --print-prefix)"
  base="${ORION_IDLE_AB_BASE:-$("$ROOT/beam_dtrace_build/build.sh" "${release[@]}" --no-patches --print-prefix)}"
  base_label="USDT OTP without Orion's patches"
  [[ -n "${ORION_IDLE_AB_BASE:-}" ]] && base_label="the base, $ORION_IDLE_AB_BASE"
  idle_require_erl "$patched" "$base"
}

idle_require_erl() {
  local p
  for p in "$@"; do
    [[ -x "$p/bin/erl" ]] || { echo "$(basename "$0"): no $p/bin/erl: run beam_dtrace_build/build.sh (and --no-patches for the base)" >&2; exit 1; }
  done
}

# Sets `ebin`, a temporary directory (removed on exit) holding orion_bench.beam.
idle_ebin() {
  ebin="$(mktemp -d)"
  trap 'rm -rf "$ebin"' EXIT
  erlc -o "$ebin" "$ROOT/tests/bench/beam/orion_bench.erl"
}

# One sample: the fastest of 15 fib(27) runs, in µs, in a fresh node of prefix $1.
idle_sample() {
  "$1/bin/erl" -emu_flavor "$IDLE_FLAVOR" -noshell -pa "$ebin" -eval \
    'T = [element(1, timer:tc(orion_bench, fib, [27])) || _ <- lists:seq(1, 15)], io:format("~p~n", [lists:min(T)]), halt().'
}

# Sets `callgrind`, the valgrind command line that counts a node's instructions: ORION_VALGRIND
# (a valgrind executable, e.g. tests/bench/beam/build_valgrind.sh's, which OTP 29's JIT needs:
# Debian 12's valgrind 3.19 cannot run it) or the valgrind on PATH, with callgrind, following
# erl's children, and --smc-check=all in the JIT (the JIT writes its code before running it).
# Every build a script compares runs under the same command line.
idle_callgrind() {
  local vg="${ORION_VALGRIND:-valgrind}"
  command -v "$vg" >/dev/null || {
    if [[ -n "${ORION_VALGRIND:-}" ]]; then
      echo "$(basename "$0"): ORION_VALGRIND=$ORION_VALGRIND is not an executable (tests/bench/beam/build_valgrind.sh prints one)" >&2
    else
      echo "$(basename "$0"): valgrind is not installed (apt-get install valgrind)" >&2
    fi
    exit 1
  }
  callgrind=("$vg" --tool=callgrind --trace-children=yes)
  [[ "$IDLE_FLAVOR" == jit ]] && callgrind+=(--smc-check=all)
  # A build_valgrind.sh build is named by its prefix (version and patches' key).
  local built; built="$(dirname "$(dirname "$(command -v "$vg")")")"
  if [[ -f "$built/.orion-build" ]]; then callgrind_version="$(basename "$built")"; else callgrind_version="$("$vg" --version)"; fi
}
