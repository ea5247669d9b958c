#!/usr/bin/env bash
# The demo: set-up (packages, the USDT OTP, the build), a demo BEAM (emu flavor) running a
# toy request handler with known latencies (scripts/demo/orion_demo.erl), then orion on it:
# its probes, a live capture of the whole module, and the latency of one function as JSON.
#
#   sudo scripts/demo.sh                   # ~10 s of live view
#   ORION_DEMO_SECONDS=30 scripts/demo.sh
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
readonly SECONDS_TO_CAPTURE="${ORION_DEMO_SECONDS:-10}"

"$ROOT/scripts/setup.sh"

prefix="$("$ROOT/beam_dtrace_build/build.sh" --print-prefix)"
orion="$BUILD_DIR/userspace/orion"
ebin="$BUILD_DIR/demo/ebin"
mkdir -p "$ebin"
erlc -o "$ebin" "$ROOT/scripts/demo/orion_demo.erl"

echo
echo "==> starting the demo BEAM: $prefix/bin/erl -emu_flavor emu -sname orion_demo"
log="$BUILD_DIR/demo/node.log"
"$prefix/bin/erl" -emu_flavor emu -sname orion_demo -noshell -pa "$ebin" \
  -eval 'orion_demo:start()' > "$log" 2>&1 &
node_pid=$!
trap 'kill "$node_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "os pid" "$log" 2>/dev/null && break
  sleep 0.1
done
cat "$log"
beam_pid="$(sed -n 's/.*(os pid \([0-9]*\)).*/\1/p' "$log")"
[[ -n "$beam_pid" ]] || { echo "demo: the demo BEAM did not start" >&2; exit 1; }

echo
echo "==> orion probes --pid $beam_pid --duration 2        # do its probes fire?"
"$orion" probes --pid "$beam_pid" --duration 2

echo
echo "==> orion capture --pid $beam_pid --duration $SECONDS_TO_CAPTURE orion_demo      # every function of the module"
"$orion" capture --pid "$beam_pid" --duration "$SECONDS_TO_CAPTURE" orion_demo

echo
echo "==> orion capture --json --duration 3 'orion_demo:db_query/1'   # one function, as JSON"
"$orion" capture --pid "$beam_pid" --json --duration 3 'orion_demo:db_query/1' |
  python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["calls"][0]; print(json.dumps({k: c[k] for k in ("mfa","count","p50_ns","p99_ns","max_ns")} | {"cpu_p50_ns": c["cpu"]["p50_ns"]}, indent=1))'
echo
echo "demo: done (the demo BEAM stops now)."
