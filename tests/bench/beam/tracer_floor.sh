#!/usr/bin/env bash
# tracer_floor.erl on Debian's stock erl (JIT) with the build's tracer NIF: what ERTS's meta
# call tracing costs per call with the NIF ignoring the event, and what the NIF's counting adds.
#   tests/bench/beam/tracer_floor.sh BUILD_DIR [REPS]
set -euo pipefail
build="${1:?usage: tracer_floor.sh BUILD_DIR [REPS]}"
reps="${2:-15}"
ebin="$(mktemp -d)"
trap 'rm -rf "$ebin"' EXIT
here="$(cd "$(dirname "$0")" && pwd)"
erlc -o "$ebin" "$here/tracer_floor.erl" "$here/orion_bench.erl"
cp "$build/tracer/orion_tracer.beam" "$build/tracer/orion_tracer_nif.so" "$ebin/"
erl -noshell -pa "$ebin" -eval "tracer_floor:run(<<\"$ebin/orion_tracer_nif\">>, $reps), halt()."
