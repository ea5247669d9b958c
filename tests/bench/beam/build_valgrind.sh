#!/usr/bin/env bash
# The valgrind the idle benchmarks need for OTP 29's JIT: Debian trixie's valgrind 3.24.0 with
# Orion's patches (tests/bench/beam/valgrind/*.patch). Every valgrind up to 3.27 translates the
# register form of `bt` by storing the register 288 bytes below %RSP; Erlang's JIT keeps the
# process heap just below %RSP, so that store overwrites live terms, and OTP 29's JIT (stock
# and patched alike) dies with a SIGSEGV in its map lookup while it boots, with or without
# +JMsingle true, --smc-check=all or --vex-iropt-register-updates (docs/performance.md, "Each
# release's patched emulator idle, in instructions"). The patch reads the bit from the
# register; a guest instruction stays one instruction to callgrind.
#
# Downloads the source package through beam_dtrace_build's apt configuration of its own (the
# machine's apt lists stay bookworm's), builds it amd64-only into
# $CACHE_DIR/valgrind-VERSION-KEY (KEY: the patches'; not /usr) and prints the valgrind
# executable's path, for ORION_VALGRIND:
#
#   sudo tests/bench/beam/build_valgrind.sh          # about 15 minutes on 2 shared cores
#   sudo ORION_VALGRIND="$(tests/bench/beam/build_valgrind.sh)" ORION_IDLE_RELEASE=29 \
#     ORION_IDLE_FLAVOR=jit tests/bench/beam/idle_instructions.sh 20
set -euo pipefail
{
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
readonly DEB_VERSION="1:3.24.0-3"   # trixie's
readonly CACHE_DIR="${ORION_CACHE_DIR:-/var/cache/orion}"
readonly PATCH_DIR="$ROOT/tests/bench/beam/valgrind"
log() { printf '[build_valgrind %s] %s\n' "$(date -u +%T)" "$*" >&2; }
step() { log "$*"; }
die() { printf '[build_valgrind] error: %s\n' "$*" >&2; exit 1; }
source "$ROOT/beam_dtrace_build/debian_apt.sh"

upstream="${DEB_VERSION#*:}"; upstream="${upstream%-*}"
key="$({ echo "$DEB_VERSION"; cat "$PATCH_DIR"/*.patch; } | sha256sum | cut -c1-12)"
readonly prefix="$CACHE_DIR/valgrind-$upstream-$key"
readonly src="$CACHE_DIR/src/valgrind-${DEB_VERSION#*:}"
if [[ -x "$prefix/bin/valgrind" && -f "$prefix/.orion-build" ]]; then echo "$prefix/bin/valgrind"; exit 0; fi
(( EUID == 0 )) || die "run as root (writes $prefix)"

if [[ ! -f "$src/.complete" ]]; then
  command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev >/dev/null
  exec 8>"$CACHE_DIR/.apt.lock"
  flock 8
  [[ -s "$APT_DIR/sources.list" ]] &&
    release_apt apt-cache showsrc valgrind 2>/dev/null | grep -qx "Version: $DEB_VERSION" ||
    update_release_apt_lists
  rm -rf "$src" && mkdir -p "$src"
  log "downloading Debian's source package valgrind=$DEB_VERSION"
  (cd "$src" && release_apt apt-get source --download-only -qq "valgrind=$DEB_VERSION") > "$src.log" 2>&1 ||
    { tail -5 "$src.log" >&2; die "cannot download valgrind=$DEB_VERSION (log: $src.log)"; }
  exec 8>&-
  touch "$src/.complete"
fi

readonly work="$CACHE_DIR/build/valgrind-$upstream-$key"
rm -rf "$work" && mkdir -p "$work"
log "unpacking $(basename "$src"/*.dsc) (with Debian's patches)"
dpkg-source -x --no-check "$src"/*.dsc "$work/tree" > "$work/unpack.log" 2>&1 ||
  { tail -5 "$work/unpack.log" >&2; die "dpkg-source -x failed (log: $work/unpack.log)"; }
cd "$work/tree"
for p in "$PATCH_DIR"/*.patch; do
  log "applying $(basename "$p")"
  patch -p1 --quiet < "$p" || die "$(basename "$p") does not apply to valgrind $upstream"
done
log "configuring and building into $prefix (log: $work/build.log)"
{
  nice -n 5 ./configure --prefix="$prefix" --enable-only64bit &&
    nice -n 5 make -j2 && make install
} > "$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; die "the build failed (log: $work/build.log)"; }
# The patched instructions give what the CPU gives (bt_check.c's hash, native and under valgrind).
cc -O1 -o "$work/bt_check" "$PATCH_DIR/bt_check.c"
native="$("$work/bt_check")"; emulated="$("$prefix/bin/valgrind" -q "$work/bt_check")"
[[ "$native" == "$emulated" ]] ||
  die "bt_check under $prefix/bin/valgrind prints $emulated, natively $native: the bt patch is wrong"
{ echo "debian-source=valgrind=$DEB_VERSION"; (cd "$PATCH_DIR" && ls ./*.patch); } > "$prefix/.orion-build"
"$prefix/bin/valgrind" --version >&2
rm -rf "$work"
echo "$prefix/bin/valgrind"
exit 0
}
