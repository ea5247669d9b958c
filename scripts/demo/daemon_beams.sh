#!/usr/bin/env bash
# A host as an operator finds it, and what `orion capture --daemon` says of each of its BEAMs
# (docs/capture.md, "Through a daemon: each BEAM on its own", shows this script's output). In a
# network namespace of its own, so that no other BEAM of the machine is part of it:
#   bar@127.0.0.1    an Elixir application (tests/elixir/bar_repo_app.exs): Debian's elixir on
#                    the USDT OTP in the emu flavor, calling Bar.Repo.get/1 when asked
#   shell@127.0.0.1  an Elixir shell node: Debian's elixir on Debian's erl (no Bar.Repo)
#   an erl that is not distributed
#   orion daemon     orion@127.0.0.1, --only-netns
# then `orion capture --daemon` (the app makes 1,000 calls), the same with --json (500 calls),
# and the same request from another Elixir shell on the host, asker@127.0.0.1, with
# GenServer.call and no node (700 calls): docs/protocol.md shows its reply.
# Root, after a build:
#
#   sudo scripts/demo/daemon_beams.sh            # ORION_BUILD_DIR: default build/
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"
readonly ORION="$BUILD_DIR/userspace/orion"
readonly NS="orion-beams-$$"
readonly DIR="$(mktemp -d /tmp/orion-beams-XXXXXX)"
readonly COOKIE="orion-beams-demo"

[[ $EUID -eq 0 ]] || { echo "daemon_beams: run as root (the daemon attaches probes)" >&2; exit 1; }
prefix="$("$ROOT/beam_dtrace_build/build.sh" --print-prefix)"

cleanup() {
  exec 3>&- || true
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }
# Waits up to 60 s until `file` has `count` lines containing `text`.
wait_for() {
  local file="$1" text="$2" count="${3:-1}"
  for _ in $(seq 1 600); do
    (( $(grep -c -- "$text" "$file" 2>/dev/null || true) >= count )) && return 0
    sleep 0.1
  done
  echo "daemon_beams: no '$text' in $file:" >&2
  cat "$file" >&2
  exit 1
}

ip netns add "$NS"
ip -n "$NS" link set lo up
printf '%s\n' "$COOKIE" > "$DIR/cookie"
chmod 600 "$DIR/cookie"

# The app reads its orders ("run N") from a FIFO held open here.
mkfifo "$DIR/app.in"
exec 3<> "$DIR/app.in"
in_ns env PATH="$prefix/bin:/usr/bin:/bin" ELIXIR_ERL_OPTIONS="-emu_flavor emu" \
  /usr/bin/elixir --name bar@127.0.0.1 --cookie "$COOKIE" "$ROOT/tests/elixir/bar_repo_app.exs" \
  < "$DIR/app.in" > "$DIR/app.log" 2>&1 &
wait_for "$DIR/app.log" "BAR-READY"
in_ns env PATH=/usr/bin:/bin /usr/bin/elixir --name shell@127.0.0.1 --cookie "$COOKIE" \
  -e 'Process.sleep(:infinity)' > "$DIR/shell.log" 2>&1 &
in_ns /usr/bin/erl -noshell -eval 'timer:sleep(infinity).' > /dev/null 2>&1 &
for _ in $(seq 1 300); do
  in_ns /usr/bin/epmd -names 2>/dev/null | grep -q "name shell " && break
  sleep 0.1
done
in_ns "$ORION" daemon --name orion@127.0.0.1 --longnames --cookie-file "$DIR/cookie" \
  --listen 127.0.0.1 --no-discover --only-netns 2> "$DIR/daemon.log" &
wait_for "$DIR/daemon.log" " serving"

# One capture: the asking command (the CLI, or a shell) in the background, `calls` calls of
# Bar.Repo.get/1 once the daemon attached (its `nth` capture); its output in capture.out.
capture_by() {
  local nth="$1" calls="$2"
  shift 2
  in_ns "$@" > "$DIR/capture.out" 2> "$DIR/capture.err" &
  local cli=$!
  wait_for "$DIR/daemon.log" "capture attached" "$nth"
  echo "run $calls" >&3
  wait_for "$DIR/app.log" "DONE $calls"
  wait "$cli" || { cat "$DIR/capture.err" >&2; exit 1; }
}
capture() {
  local nth="$1" calls="$2"
  shift 2
  echo "\$ sudo orion capture $*"
  capture_by "$nth" "$calls" "$ORION" capture --cookie-file "$DIR/cookie" "$@"
}

capture 1 1000 --daemon orion@127.0.0.1 --duration 8 Bar.Repo.get/1
cat "$DIR/capture.err" "$DIR/capture.out"
echo
capture 2 500 --daemon orion@127.0.0.1 --duration 4 --json Bar.Repo.get/1
python3 -c 'import json, sys; print(json.dumps({"nodes": json.load(sys.stdin)["nodes"]}, indent=2))' \
  < "$DIR/capture.out"
echo
readonly ASK='GenServer.call({:orion, :"orion@127.0.0.1"},
  {:capture, %{patterns: ["Bar.Repo.get/1"], duration_ms: 8000}}, 30_000)'
echo "asker@127.0.0.1> $ASK"
# The reply as IO.inspect prints it, each sketch (a DDSketch protobuf) shown as {:bytes, Size}.
readonly SHOW='IO.puts("asker pid #{System.pid()}")
{:ok, reply} = '"$ASK"'
sizes = fn c -> %{c | sketch: {:bytes, byte_size(c.sketch)}, cpu_sketch: {:bytes, byte_size(c.cpu_sketch)}} end
IO.inspect({:ok, %{reply | calls: Enum.map(reply.calls, sizes)}}, pretty: true, limit: :infinity)'
capture_by 3 700 env PATH=/usr/bin:/bin /usr/bin/elixir --name asker@127.0.0.1 --cookie "$COOKIE" \
  -e "$SHOW"
cat "$DIR/capture.out"
