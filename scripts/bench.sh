#!/usr/bin/env bash
# Runs Orion's benchmarks, prints ns/op beside the naive baseline measured in the same run, and
# rewrites that section of docs/performance.md (with the machine and date in its header).
#
#   scripts/bench.sh            # all sections
#   scripts/bench.sh sketch     # the DDSketch library (tests/bench/sketch)
#   ORION_BUILD_DIR=/tmp/b ORION_BENCH_MIN_TIME=1 scripts/bench.sh sketch
#   sudo scripts/bench.sh beam  # BEAM workloads under orion vs Erlang tracing (root, BPF, USDT OTP)
#   sudo scripts/bench.sh jit   # the same on the patched JIT (patch 0012): cost per targeted call,
#                               # untargeted A/B, the exact-count rate
#   sudo scripts/bench.sh jit-instructions   # the JIT under callgrind: idle instructions patched
#                               # vs unpatched JIT, untargeted code with a capture's state
#   ORION_BENCH_CALLGRIND_RUNS=10 sudo scripts/bench.sh jit-instructions   # fewer fib(27) runs
#   ORION_BENCH_BEAM_REPS=9 sudo scripts/bench.sh beam
#   ORION_BENCH_ORION=/path/to/orion sudo scripts/bench.sh beam   # measure that orion binary
#   sudo scripts/bench.sh ui    # orion ui's page in chromium, 10 functions x 3 nodes, 12 min
#                               # (scripts/bench/ui_goal.sh; written to docs/ui.md and
#                               # docs/performance.md)
#   sudo scripts/bench.sh ui-memory   # orion ui's memory once its kept window is full: a 60 s
#                               # window (ORION_UI_WINDOW_S), 5 min, a replay before each sample
#                               # (ORION_BENCH_UI_WINDOW_S, _SECONDS, _SAMPLE_S change it)
#
# Each section is a function bench_<name> that prints a Markdown body on stdout; add BPF or BEAM
# workload sections as more functions and list them in SECTIONS.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
readonly DOC="$ROOT/docs/performance.md"
readonly MIN_TIME="${ORION_BENCH_MIN_TIME:-0.5}"
readonly SECTIONS=(sketch beam jit jit-instructions ui ui-memory)
# This invocation as a user would type it (with the ORION_* settings it used), for the doc.
COMMAND_LINE="$(env | { grep -E '^ORION_(BUILD_DIR|BENCH_[A-Z_]+)=' || true; } | sort | tr '\n' ' ')scripts/bench.sh${*:+ $*}"
readonly COMMAND_LINE

die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
usage() { printf 'usage: %s [%s|all]\n' "$0" "$(IFS='|'; echo "${SECTIONS[*]}")" >&2; exit 2; }

# Configures the build directory if needed and builds the given targets.
build_targets() {
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -DORION_BUILD_BENCH=ON >"$BUILD_DIR.configure.log" 2>&1 ||
      { cat "$BUILD_DIR.configure.log" >&2; die "cmake configure failed"; }
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target "$@" >/dev/null ||
    die "build of $* failed (run: cmake --build $BUILD_DIR --target $*)"
}

machine_line() {
  local model cores
  model="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  cores="$(nproc)"
  printf 'Measured %s on %s, %s cores, Linux %s.' "$(date -u +%Y-%m-%d)" "${model:-unknown CPU}" \
    "$cores" "$(uname -r)"
}

# Google Benchmark JSON -> a Markdown table of ns/op, each operation beside its naive baseline.
sketch_table() {
  python3 - "$1" <<'PY'
import json, sys

runs = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("run_type", "iteration") == "iteration"}

def ns_per_op(name):
    return 1e9 / runs[name]["items_per_second"]

def fmt(ns):
    return f"{ns:.2f}" if ns < 10 else f"{ns:,.0f}"

rows = [
    ("add, integer ns, kernel mapping (exact integer path)", "BM_AddIntegerKernel", "BM_NaiveAdd"),
    ("add, double, kernel mapping", "BM_AddDouble/mapping:0", "BM_NaiveAdd"),
    ("add, double, logarithmic mapping (1 %)", "BM_AddDouble/mapping:1", "BM_NaiveAdd"),
    ("add, double, linearly interpolated mapping (1 %)", "BM_AddDouble/mapping:2", "BM_NaiveAdd"),
    ("add, double, cubically interpolated mapping (1 %)", "BM_AddDouble/mapping:3", "BM_NaiveAdd"),
    ("add_bucket_counts (fold one kernel slot)", "BM_AddBucketCounts", None),
    ("merge two 2,000-bin sketches", "BM_Merge", "BM_NaiveMerge"),
    ("quantile (p99 of 2,000 bins)", "BM_Quantile", "BM_NaiveQuantile"),
    ("encode 2,000 bins (protobuf)", "BM_Encode", None),
    ("decode 2,000 bins (protobuf)", "BM_Decode", None),
]
naive = {
    "BM_NaiveAdd": "push_back into a vector",
    "BM_NaiveMerge": "concatenate 2 x 100,000 values",
    "BM_NaiveQuantile": "sort 100,000 values, index",
}
print("| operation | sketch ns/op | naive baseline | naive ns/op | sketch / naive |")
print("|---|---:|---|---:|---:|")
for label, name, baseline in rows:
    sketch = ns_per_op(name)
    if baseline:
        base = ns_per_op(baseline)
        print(f"| {label} | {fmt(sketch)} | {naive[baseline]} | {fmt(base)} | {sketch / base:.3g} |")
    else:
        print(f"| {label} | {fmt(sketch)} | - | - | - |")
PY
}

bench_sketch() {
  build_targets sketch_benchmark
  local json
  json="$(mktemp)"
  "$BUILD_DIR/tests/bench/sketch/sketch_benchmark" --benchmark_min_time="$MIN_TIME" \
    --benchmark_format=json --benchmark_out="$json" --benchmark_out_format=json >/dev/null ||
    die "sketch_benchmark failed"
  local build_type
  build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt")"
  echo "$(machine_line) Build type ${build_type:-default}; \`scripts/bench.sh sketch\`."
  echo
  sketch_table "$json"
  echo
  cat <<'EOF'
Goals: add <= 5 ns/value for the integer and interpolated mappings, merge <= 2 us,
quantile <= 1 us.  Adds are measured in loops of 256 values (lognormal latencies around
50 us), every add updating the exact count, sum, min and max; quantile walks the bins of a
2,000-bin sketch.  The naive baseline keeps every value: adding is cheaper, but its memory
grows with the number of values, a merge moves every value, and an exact quantile sorts them
all, where the sketch keeps at most about 2,600 bins for 1 ns to 1000 s and answers with a
relative error of at most 0.54 %.
EOF
  rm -f "$json"
}

# BEAM workloads on a USDT emu node (tests/bench/beam/beam_bench.py), then where the time of a
# probe goes by perf sampling (tests/bench/beam/perf_breakdown.sh) when perf can sample here.
bench_beam() {
  [[ $EUID -eq 0 ]] || die "the beam section attaches BPF programs: run it as root"
  local orion="${ORION_BENCH_ORION:-$BUILD_DIR/userspace/orion}"
  if [[ -n "${ORION_BENCH_ORION:-}" ]]; then
    build_targets probe_floor orion_bench_beams synthetic_probe_bench
  else
    build_targets orion probe_floor orion_bench_beams synthetic_probe_bench
  fi
  local reps="${ORION_BENCH_BEAM_REPS:-7}"
  # The patches' idle cost needs a USDT OTP without them; used when it has been built
  # (beam_dtrace_build/build.sh --no-patches, a few minutes), skipped otherwise.
  local stock_args=() stock_erl
  stock_erl="$("$ROOT/beam_dtrace_build/build.sh" --no-patches --print-prefix)/bin/erl"
  [[ -x "$stock_erl" ]] && stock_args=(--stock-erl "$stock_erl")
  # Tracer mode on Debian's own erl (JIT, no USDT), when installed.
  [[ -x /usr/bin/erl ]] && stock_args+=(--tracer-erl /usr/bin/erl)
  local tables
  tables="$(python3 "$ROOT/tests/bench/beam/beam_bench.py" --build "$BUILD_DIR" --orion "$orion" \
    --reps "$reps" "${stock_args[@]}")" ||
    die "beam_bench.py failed"
  echo "$(machine_line) OTP 25.2.3 emu flavor with USDT probes and Orion's patches \
(\`beam_dtrace_build/build.sh\`), 2 schedulers; medians of $reps repetitions, states interleaved;
run as root with \`$COMMAND_LINE\`."
  echo
  echo "Each cell is the workload's wall time in that state divided by its untraced wall time,"
  echo "measured in the same run on the same node. Per targeted call: (traced - untraced) / calls."
  echo
  echo "$tables"
  echo
  if [[ -x "$stock_erl" ]]; then
    echo "The patches' idle cost, A/B on fresh nodes (\`tests/bench/beam/idle_ab.sh 8\`): fib(27)"
    echo "with nothing attached, the fastest of 15 runs per node, nodes alternating:"
    echo
    "$ROOT/tests/bench/beam/idle_ab.sh" 8 || echo "(idle_ab.sh failed)"
    echo
    if command -v valgrind >/dev/null; then
      echo "The same in instructions executed, which the machine's noise and code placement do not"
      echo "move (\`tests/bench/beam/idle_instructions.sh 30\`, callgrind, fresh nodes with +S 1):"
      echo
      "$ROOT/tests/bench/beam/idle_instructions.sh" 30 || echo "(idle_instructions.sh failed)"
      echo
    fi
  fi
  local ab_args=()
  [[ -x /usr/bin/erl ]] && ab_args=(--tracer-erl /usr/bin/erl)
  python3 "$ROOT/tests/bench/beam/untargeted_ab.py" --build "$BUILD_DIR" --orion "$orion" \
    "${ab_args[@]}" || echo "(untargeted_ab.py failed)"
  echo
  python3 "$ROOT/tests/bench/beam/rate_run.py" --build "$BUILD_DIR" --orion "$orion" \
    "${ab_args[@]}" || echo "(rate_run.py failed)"
  echo
  if [[ -x /usr/bin/erl ]]; then
    echo "Tracer mode's floor (\`tests/bench/beam/tracer_floor.sh\`): ERTS's meta call tracing with"
    echo "the NIF ignoring every event, and with it counting, on Debian's erl:"
    echo
    "$ROOT/tests/bench/beam/tracer_floor.sh" "$BUILD_DIR" || echo "(tracer_floor.sh failed)"
    echo
  fi
  echo "Synthetic probes (\`tests/bench/synthetic_probe_bench --calls 200000 --reps 5\`): the BEAM's"
  echo "probe names and arguments fired from a C++ loop with constant strings, so no formatting:"
  echo "the kernel side alone, on probe sites built as the BEAM's (1-byte nop) and on 5-byte nops;"
  echo "the CPU time of the calling thread, which includes the kernel's handling of its uprobes."
  echo
  "$BUILD_DIR/tests/bench/synthetic_probe_bench" --calls 200000 --reps 5 ||
    die "synthetic_probe_bench failed"
  if command -v perf >/dev/null && perf stat -e cpu-clock true >/dev/null 2>&1; then
    echo
    echo "perf samples of the node (\`tests/bench/beam/perf_breakdown.sh BUILD_DIR STATE\`):"
    for state in semaphore unrelated; do
      echo
      ORION_BIN="$orion" "$ROOT/tests/bench/beam/perf_breakdown.sh" "$BUILD_DIR" "$state" ||
        echo "(perf_breakdown.sh $state failed)"
    done
  fi
}

bench_ui() {
  [[ $EUID -eq 0 ]] || die "the ui section runs a cluster of BEAMs and daemons: run it as root"
  echo "$(machine_line) Debian's chromium, headless; run as root with \`$COMMAND_LINE\`"
  echo "(\`scripts/bench/ui_goal.sh\`)."
  echo
  ORION_BUILD_DIR="$BUILD_DIR" "$ROOT/scripts/bench/ui_goal.sh" || die "ui_goal.sh failed"
}

# orion ui's memory once its kept window is full, over several windows of steady state: the
# window shortened (ORION_UI_WINDOW_S) so that it is full within a minute.
bench_ui_memory() {
  [[ $EUID -eq 0 ]] || die "the ui-memory section runs a cluster of BEAMs and daemons: run it as root"
  echo "$(machine_line) Debian's chromium, headless; run as root with \`$COMMAND_LINE\`"
  echo "(\`scripts/bench/ui_goal.sh\` with a shorter window)."
  echo
  ORION_BUILD_DIR="$BUILD_DIR" ORION_BENCH_UI_WINDOW_S="${ORION_BENCH_UI_WINDOW_S:-60}" \
    ORION_BENCH_UI_SECONDS="${ORION_BENCH_UI_SECONDS:-300}" \
    ORION_BENCH_UI_SAMPLE_S="${ORION_BENCH_UI_SAMPLE_S:-15}" \
    "$ROOT/scripts/bench/ui_goal.sh" || die "ui_goal.sh failed"
}

# The kernel path on the JIT (patch 0012): the BEAM workloads on a patched USDT JIT node, paired
# in the BEAM, against Erlang tracing on the same node; untargeted code A/B; the exact-count rate.
# The instruction counts are the jit-instructions section (bench_jit_instructions).
bench_jit() {
  [[ $EUID -eq 0 ]] || die "the jit section attaches BPF programs: run it as root"
  local orion="${ORION_BENCH_ORION:-$BUILD_DIR/userspace/orion}"
  if [[ -n "${ORION_BENCH_ORION:-}" ]]; then
    build_targets probe_floor orion_bench_beams
  else
    build_targets orion probe_floor orion_bench_beams
  fi
  local reps="${ORION_BENCH_BEAM_REPS:-7}"
  local stock_args=() stock_erl
  stock_erl="$("$ROOT/beam_dtrace_build/build.sh" --no-patches --print-prefix)/bin/erl"
  [[ -x "$stock_erl" ]] && stock_args=(--stock-erl "$stock_erl")
  local tables
  tables="$(python3 "$ROOT/tests/bench/beam/beam_bench.py" --build "$BUILD_DIR" --orion "$orion" \
    --flavor jit --reps "$reps" "${stock_args[@]}")" || die "beam_bench.py --flavor jit failed"
  echo "$(machine_line) OTP 25.2.3 JIT flavor (x86_64, the default frame layout) with USDT probes \
and Orion's patches (\`beam_dtrace_build/build.sh\`), 2 schedulers; medians of $reps repetitions, \
states interleaved; run as root with \`$COMMAND_LINE\`."
  echo
  echo "Each cell is the workload's wall time in that state divided by its untraced wall time,"
  echo "measured in the same run on the same node. Per targeted call: (traced - untraced) / calls."
  echo "The JIT has no function probes: the emulator pairs every targeted call (patch 0012)."
  echo
  echo "$tables"
  echo
  python3 "$ROOT/tests/bench/beam/untargeted_ab.py" --build "$BUILD_DIR" --orion "$orion" \
    --flavor jit || echo "(untargeted_ab.py --flavor jit failed)"
  echo
  python3 "$ROOT/tests/bench/beam/rate_run.py" --build "$BUILD_DIR" --orion "$orion" \
    --flavor jit || echo "(rate_run.py --flavor jit failed)"
  echo
  echo "The patches' idle cost on the JIT, and untargeted code during a capture, in instructions"
  echo "executed: the next section (\`scripts/bench.sh jit-instructions\`)."
}

# The JIT counted in instructions (callgrind), which this VM's noise and code placement do not
# move: the patches' idle cost against the unpatched JIT, and what untargeted code executes
# while a capture pairs another function. No BPF; root for probe_floor (the pairing table).
bench_jit_instructions() {
  [[ $EUID -eq 0 ]] || die "the jit-instructions section writes into a node's pairing table: run it as root"
  command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
  build_targets probe_floor
  local runs="${ORION_BENCH_CALLGRIND_RUNS:-30}" stock_erl tmp
  stock_erl="$("$ROOT/beam_dtrace_build/build.sh" --no-patches --print-prefix)/bin/erl"
  tmp="$(mktemp -d)"
  # Both at once: an instruction count does not depend on what else the machine runs.
  if [[ -x "$stock_erl" ]]; then
    ORION_IDLE_FLAVOR=jit "$ROOT/tests/bench/beam/idle_instructions.sh" "$runs" >"$tmp/idle" ||
      echo "(idle_instructions.sh failed)" >"$tmp/idle" &
  else
    echo "(not measured: no unpatched build; run \`beam_dtrace_build/build.sh --no-patches\`)" >"$tmp/idle"
  fi
  ORION_IDLE_FLAVOR=jit "$ROOT/tests/bench/beam/untargeted_instructions.sh" "$BUILD_DIR" "$runs" \
    >"$tmp/untargeted" || echo "(untargeted_instructions.sh failed)" >"$tmp/untargeted"
  wait
  echo "$(machine_line) OTP 25.2.3 with USDT probes, under valgrind's callgrind (instructions"
  echo "executed by the node's process, fresh nodes with +S 1); run as root with \`$COMMAND_LINE\`."
  echo
  echo "The patches' idle cost on the JIT: fib(27) with nothing attached on the patched JIT and on the"
  echo "JIT built without Orion's patches (\`ORION_IDLE_FLAVOR=jit tests/bench/beam/idle_instructions.sh"
  echo "$runs\`; the base is \`beam_dtrace_build/build.sh --no-patches\`):"
  echo
  cat "$tmp/idle"
  echo
  echo "Untargeted code while a capture runs, on the patched JIT: fib(27) with nothing attached (A)"
  echo "and with the emulator in the state \`orion capture orion_bench:calls/2\` puts it in (B: the"
  echo "breakpoint in \`calls/2\`, a function of fib's module that never runs, and the semaphores"
  echo "of orion__call and orion__calls raised; no BPF program, which would only run when a probe"
  echo "fires) (\`tests/bench/beam/untargeted_instructions.sh BUILD_DIR $runs\`):"
  echo
  cat "$tmp/untargeted"
  rm -rf "$tmp"
}

# Replaces the section between <!-- bench:NAME:begin --> and <!-- bench:NAME:end --> of the doc
# (appending it if absent) with the given title and body: update_section NAME TITLE BODY [DOC],
# DOC docs/performance.md by default.
update_section() {
  local name="$1" title="$2" body="$3" doc="${4:-$DOC}"
  mkdir -p "$(dirname "$doc")"
  [[ -f "$doc" ]] || printf '# Performance\n\nWritten by `scripts/bench.sh`; each section says where and when it was measured.\n' >"$doc"
  python3 - "$doc" "$name" "$title" "$body" <<'PY'
import re, sys
path, name, title, body = sys.argv[1:]
begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
section = f"{begin}\n## {title}\n\n{body.rstrip()}\n{end}"
text = open(path).read()
pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
}

run_section() {
  local name="$1" body
  case "$name" in
    sketch) body="$(bench_sketch)"; update_section sketch "Sketch" "$body" ;;
    beam) body="$(bench_beam)"; update_section beam "BEAM workloads: a capture against Erlang tracing" "$body" ;;
    ui) body="$(bench_ui)"; update_section ui "Performance" "$body" "$ROOT/docs/ui.md"
      update_section ui "The console: orion ui's page in chromium" "$body" ;;
    ui-memory) body="$(bench_ui_memory)"
      update_section ui-memory "The console: orion ui's memory once its window is full" "$body" ;;
    jit) body="$(bench_jit)"; update_section jit "The JIT: a capture against Erlang tracing (patch 0012)" "$body" ;;
    jit-instructions) body="$(bench_jit_instructions)"
      update_section jit-instructions "The JIT in instructions: idle, and untargeted code during a capture" "$body" ;;
    *) usage ;;
  esac
  printf '%s\n\n' "$body"
}

main() {
  command -v python3 >/dev/null || die "python3 is needed to read the benchmark results"
  local target="${1:-all}"
  if [[ "$target" == all ]]; then
    for section in "${SECTIONS[@]}"; do run_section "$section"; done
  else
    run_section "$target"
  fi
  echo "updated $DOC"
}

main "$@"
