#!/usr/bin/env bash
# The control build for the idle comparison (docs/performance.md, "The patched BEAM idle, in
# wall time and in instructions"): the unpatched USDT OTP with one change that adds no work,
# PAD bytes of padding (int3, never executed) before process_main in beam_emu.c, so that the
# interpreter loop sits elsewhere. Builds the emu emulator only and assembles a prefix from the
# unpatched one (beam_dtrace_build/build.sh --no-patches, built first if missing).
#
#   sudo tests/bench/beam/build_padded_stock.sh [PAD]     # default 1056; prints the prefix
#   sudo tests/bench/beam/idle_rotation.sh STOCK "$(... build_padded_stock.sh)" PATCHED STOCK
set -euo pipefail
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
readonly PAD="${1:-1056}"
readonly CACHE_DIR="${ORION_CACHE_DIR:-/var/cache/orion}"
log() { printf '[build_padded_stock] %s\n' "$*" >&2; }

stock="$("$ROOT/beam_dtrace_build/build.sh" --no-patches --print-prefix)"
[[ -x "$stock/bin/erl" ]] || "$ROOT/beam_dtrace_build/build.sh" --no-patches >&2
readonly out="$CACHE_DIR/otp-padded-$PAD"
if [[ -x "$out/bin/erl" ]]; then echo "$out"; exit 0; fi

dsc="$(ls "$CACHE_DIR"/src/debian-*/erlang_*.dsc 2>/dev/null | head -1)"
[[ -n "$dsc" ]] || { echo "build_padded_stock: no Debian source under $CACHE_DIR/src (run beam_dtrace_build/build.sh first)" >&2; exit 1; }
work="$CACHE_DIR/build/padded-$PAD"
rm -rf "$work" && mkdir -p "$work"
log "unpacking $(basename "$dsc")"
dpkg-source -x "$dsc" "$work/otp" >/dev/null 2>&1
emu_c="$work/otp/erts/emulator/beam/emu/beam_emu.c"
python3 - "$emu_c" "$PAD" <<'PY'
import sys
path, pad = sys.argv[1], int(sys.argv[2])
src = open(path).read()
anchor = "ERTS_NO_RETPOLINE\nvoid process_main(ErtsSchedulerData *esdp)\n{"
if anchor not in src:
    sys.exit("build_padded_stock: process_main's definition not found in beam_emu.c")
pad_asm = f'/* Orion control build: process_main moved by {pad} bytes. */\n__asm__(".text\\n\\t.skip {pad}, 0xcc\\n");\n'
open(path, "w").write(src.replace(anchor, pad_asm + anchor, 1))
PY
cd "$work/otp"
export ERL_TOP="$PWD"
log "configuring and building the emu emulator (a few minutes)"
./configure --with-dynamic-trace=systemtap --prefix="$out" --without-javac --without-wx \
  --without-odbc --enable-kernel-poll >"$work/configure.log" 2>&1
make -j"$(nproc)" -C erts/emulator opt FLAVOR=emu >"$work/make-emu.log" 2>&1
rm -rf "$out.tmp" && cp -a "$stock" "$out.tmp"
erts_dir="$(find "$out.tmp" -maxdepth 1 -name 'erts-*' | head -1)"
cp "bin/$(erts/autoconf/config.guess)/beam.emu" "$erts_dir/bin/beam.emu"
# The start scripts name their root (as build.sh writes them); binaries are left alone.
for f in "$out.tmp/bin/erl" "$erts_dir/bin/erl" "$out.tmp/bin/start" "$erts_dir/bin/start"; do
  [[ -f "$f" ]] && sed -i "s|ROOTDIR=$stock|ROOTDIR=$out|" "$f"
done
rm -rf "$out" && mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out"
