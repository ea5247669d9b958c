#!/usr/bin/env bash
# docs/images/ui-console-demo.png: the console on the demo as a newcomer uses it. Starts
# `scripts/demo.sh --ui` (the demo BEAM, a daemon, orion ui), reads the URL it prints, and
# drives Debian's chromium headless (tests/ui/browser_driver.mjs) as a person does: types
# orion_demo in the query box, TAB completes, Start, waits ORION_DEMO_SHOT_SECONDS (60) of capture,
# selects the last 20 s of the wall-time chart (its histogram), then takes the screenshot and
# prints the function table and the per-node table as the page shows them. It skips the set-up
# (ORION_DEMO_SETUP=0) when build/userspace/orion is built.
#
#   sudo flock -o /tmp/orion-itest.lock scripts/demo/ui_screenshot.sh [OUT.png]
set -euo pipefail
readonly ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
readonly OUT="$(realpath -m "${1:-$ROOT/docs/images/ui-console-demo.png}")"
readonly SECONDS_TO_CAPTURE="${ORION_DEMO_SHOT_SECONDS:-60}"
readonly LISTEN="${ORION_DEMO_UI_LISTEN:-127.0.0.1:7172}"
work="$(mktemp -d)"
demo_pid=""
cleanup() {
  [[ -n "$demo_pid" ]] && kill -INT -- -"$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ORION_DEMO_SETUP="${ORION_DEMO_SETUP:-0}" ORION_DEMO_UI_LISTEN="$LISTEN" setsid "$ROOT/scripts/demo.sh" --ui > "$work/demo.log" 2>&1 &
demo_pid=$!
url=""
for _ in $(seq 1 600); do
  url="$(grep -o 'http://[^ ]*?token=[0-9a-zA-Z_-]*' "$work/demo.log" | head -1 || true)"
  [[ -n "$url" ]] && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.log" >&2; exit 1; }
  sleep 0.5
done
[[ -n "$url" ]] || { cat "$work/demo.log" >&2; echo "ui_screenshot: no URL from demo.sh --ui" >&2; exit 1; }
echo "ui_screenshot: demo.sh --ui printed $url"

# One command per line to the driver, one answer per line back (coprocess).
coproc DRIVER { node "$ROOT/tests/ui/browser_driver.mjs"; }
send() {
  echo "$1" >&"${DRIVER[1]}"
  local answer
  read -r answer <&"${DRIVER[0]}"
  [[ "$answer" == '{"ok":true'* ]] || { echo "ui_screenshot: $1 -> $answer" >&2; exit 1; }
  REPLY="$answer"
}
send "{\"op\":\"goto\",\"url\":\"$url\",\"viewport\":{\"width\":1400,\"height\":1000}}"
send '{"op":"typeQuery","text":"orion_de"}'
send '{"op":"key","key":"Tab"}'
echo "ui_screenshot: TAB completed to $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["value"])' "$REPLY")"
send '{"op":"start"}'
id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$REPLY")"
send "{\"op\":\"waitFor\",\"id\":\"$id\",\"drawn\":true,\"timeoutMs\":20000}"
sleep "$SECONDS_TO_CAPTURE"
send "{\"op\":\"selectRange\",\"id\":\"$id\",\"from\":0.66,\"to\":0.99}"
mkdir -p "$(dirname "$OUT")"
send "{\"op\":\"screenshot\",\"path\":\"$OUT\",\"fullPage\":true}"
echo "ui_screenshot: wrote $OUT"
send "{\"op\":\"capture\",\"id\":\"$id\"}"
python3 - "$REPLY" <<'PY'
import json, sys
c = json.loads(sys.argv[1])["capture"]
print("state:", c["state"])
for name, f in c["functions"].items():
    print("function:", " | ".join(f["cells"]))
for name, n in c["nodes"].items():
    print("node:", " | ".join(n["cells"]))
print("range:", c["range"])
PY
send '{"op":"close"}'
