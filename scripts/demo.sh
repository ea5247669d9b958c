#!/usr/bin/env bash
# The demo: set-up (packages, the USDT OTP, the build), a demo BEAM (the JIT, the flavor
# production runs; its emulator pairs the calls, Orion's patch 0012) running a toy request
# handler with known latencies (scripts/demo/orion_demo.erl), then orion on it: its probes, a
# live capture of the whole module, and the latency of one function as JSON.
#
#   sudo scripts/demo.sh                   # ~10 s of live view
#   ORION_DEMO_SECONDS=30 scripts/demo.sh
#   sudo scripts/demo.sh --ui              # the console instead: an orion daemon and orion ui on
#                                          # the demo node; open the URL it prints (Ctrl-C stops)
#   ORION_DEMO_UI_LISTEN=127.0.0.1:7171 scripts/demo.sh --ui
#   ORION_DEMO_FLAVOR=emu scripts/demo.sh  # the interpreter instead
#   ORION_DEMO_SETUP=0 scripts/demo.sh     # skip the set-up (build/userspace/orion is built)
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
readonly SECONDS_TO_CAPTURE="${ORION_DEMO_SECONDS:-10}"
readonly FLAVOR="${ORION_DEMO_FLAVOR:-jit}"
ui=0
case "${1:-}" in
  "") ;;
  --ui) ui=1 ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "demo: unknown option: $1 (scripts/demo.sh [--ui])" >&2; exit 2 ;;
esac

# ORION_DEMO_SETUP=0 skips the set-up (its full build) when build/ has orion already.
[[ "${ORION_DEMO_SETUP:-1}" == 0 && -x "$BUILD_DIR/userspace/orion" ]] || "$ROOT/scripts/setup.sh"

prefix="$("$ROOT/beam_dtrace_build/build.sh" --print-prefix)"
orion="$BUILD_DIR/userspace/orion"
ebin="$BUILD_DIR/demo/ebin"
mkdir -p "$ebin"
erlc -o "$ebin" "$ROOT/scripts/demo/orion_demo.erl"

# The demo's own cookie, for the node, the daemon and orion ui (the daemon wants it root-owned,
# mode 0600); the node reads it as $HOME/.erlang.cookie.
demo_home="$BUILD_DIR/demo/home"
cookie="$demo_home/.erlang.cookie"
mkdir -p "$demo_home"
if [[ ! -s "$cookie" ]]; then
  (umask 077; head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F > "$cookie")
fi
chmod 600 "$cookie"

echo
echo "==> starting the demo BEAM: $prefix/bin/erl -emu_flavor $FLAVOR -sname orion_demo"
log="$BUILD_DIR/demo/node.log"
HOME="$demo_home" "$prefix/bin/erl" -emu_flavor "$FLAVOR" -sname orion_demo -noshell -pa "$ebin" \
  -eval 'orion_demo:start()' > "$log" 2>&1 &
node_pid=$!
daemon_pid=""
trap 'kill $daemon_pid "$node_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "os pid" "$log" 2>/dev/null && break
  sleep 0.1
done
cat "$log"
beam_pid="$(sed -n 's/.*(os pid \([0-9]*\)).*/\1/p' "$log")"
[[ -n "$beam_pid" ]] || { echo "demo: the demo BEAM did not start" >&2; exit 1; }

if (( ui )); then
  "$orion" ui --help >/dev/null 2>&1 ||
    { echo "demo: this orion has no 'ui' command yet (issue 21): build one that has" >&2; exit 1; }
  daemon_name="orion_ui_demo@$(hostname -s)"
  echo
  echo "==> orion daemon --name $daemon_name --cookie-file $cookie --no-discover   # captures for orion ui"
  "$orion" daemon --name "$daemon_name" --cookie-file "$cookie" --no-discover \
    > "$BUILD_DIR/demo/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 1 100); do
    grep -q "serving" "$BUILD_DIR/demo/daemon.log" 2>/dev/null && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$BUILD_DIR/demo/daemon.log" >&2; exit 1; }
    sleep 0.1
  done
  echo
  echo "==> orion ui --daemon $daemon_name --cookie-file $cookie"
  echo "    Open the URL below. Type orion_demo in the box (TAB completes), press Start: the table"
  echo "    and the heatmap show which function is slow, and on which node. Ctrl-C stops."
  echo
  "$orion" ui --daemon "$daemon_name" --cookie-file "$cookie" \
    --listen "${ORION_DEMO_UI_LISTEN:-127.0.0.1:7070}" || true
  echo "demo: done (the demo BEAM and the daemon stop now)."
  exit 0
fi

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
