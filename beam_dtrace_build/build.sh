#!/usr/bin/env bash
# Builds Erlang/OTP with USDT probes (--with-dynamic-trace=systemtap), both emulator
# flavors (jit and emu), with Orion's probe patches, into a cached prefix outside the repo.
#
# The prefix's bin/erl is a USDT-enabled erl:
#   $(beam_dtrace_build/build.sh --print-prefix)/bin/erl -emu_flavor emu   # function probes fire
#   $(beam_dtrace_build/build.sh --print-prefix)/bin/erl -emu_flavor jit   # runtime probes only
#
# Only the emulators are built (about 4 minutes on 2 cores); the Erlang libraries, boot
# files and helper programs come from the installed erlang-base of the same version.
# An official OTP source tarball of another version gets a full build and install.
set -euo pipefail

readonly RECIPE_VERSION=1   # bump when the way the prefix is assembled changes
readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly PATCH_DIR="$HERE/patches"
# Headers the patches include, shared with Orion (one layout for both sides): copied into
# erts/emulator/beam/ with the patches.
readonly PATCH_INCLUDE_DIR="$HERE/include"
readonly CACHE_DIR="${ORION_CACHE_DIR:-/var/cache/orion}"
readonly REQUIRED_EMU_PROBES=(global__function__entry local__function__entry function__return
                              process__scheduled message__queued)
readonly PATCHED_EMU_PROBES=(exception__catch orion__call orion__calls)

usage() {
  cat <<EOF
Usage: $(basename "$0") [OPTIONS]

Build OTP with USDT probes (jit and emu flavors) into a cached prefix.

Options:
  --print-prefix    print the prefix for these options and exit (builds nothing)
  --tarball PATH    build from an official OTP source tarball instead of Debian's
                    source package of the installed erlang-base
  --no-patches      build stock OTP (no Orion patches): the baseline for benchmarks
  --force           rebuild even if the prefix is complete
  --jobs N          parallel make jobs (default: number of cores)
  -h, --help        this help

Environment:
  ORION_OTP_PREFIX  use this prefix instead of the default under $CACHE_DIR
  ORION_CACHE_DIR   cache root (default /var/cache/orion)

Examples:
  $(basename "$0")                      # build (or reuse) the patched USDT OTP
  $(basename "$0") --print-prefix       # where it is
  $(basename "$0") --no-patches         # stock USDT OTP, for overhead baselines
  $(basename "$0") --tarball otp_src_25.2.3.tar.gz
EOF
}

log() { printf '[beam_dtrace_build] %s\n' "$*" >&2; }
die() { printf '[beam_dtrace_build] error: %s\n' "$*" >&2; exit 1; }

tarball=""
patches=1
force=0
print_prefix=0
jobs="$(nproc)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --print-prefix) print_prefix=1 ;;
    --tarball) [[ $# -ge 2 ]] || die "--tarball needs a path"; tarball="$(realpath "$2")"; shift ;;
    --no-patches) patches=0 ;;
    --force) force=1 ;;
    --jobs) [[ $# -ge 2 ]] || die "--jobs needs a number"; jobs="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

installed_deb_version() { dpkg-query -W -f='${Version}' erlang-base 2>/dev/null || true; }
installed_otp_version() {
  local f
  for f in /usr/lib/erlang/releases/*/OTP_VERSION; do [[ -f "$f" ]] && cat "$f" && return; done
}

# The cache key: what the prefix is built from and how.
source_identity() {
  if [[ -n "$tarball" ]]; then
    [[ -f "$tarball" ]] || die "no such tarball: $tarball"
    echo "tarball:$(sha256sum "$tarball" | cut -d' ' -f1)"
  else
    local v; v="$(installed_deb_version)"
    [[ -n "$v" ]] || die "erlang-base is not installed (apt-get install erlang-base erlang-dev), or pass --tarball"
    echo "debian:$v"
  fi
}

build_key() {
  {
    echo "recipe:$RECIPE_VERSION"
    source_identity
    if (( patches )); then cat "$PATCH_DIR"/*.patch "$PATCH_INCLUDE_DIR"/*.h; else echo "stock"; fi
  } | sha256sum | cut -c1-12
}

default_prefix() {
  local flavor="patched"; (( patches )) || flavor="stock"
  local version
  if [[ -n "$tarball" ]]; then
    version="$(tar -xOf "$tarball" --wildcards '*/OTP_VERSION' 2>/dev/null | head -1)"
  else
    version="$(installed_otp_version)"
  fi
  echo "$CACHE_DIR/otp-${version:-unknown}-$flavor-$(build_key)"
}

prefix="${ORION_OTP_PREFIX:-$(default_prefix)}"
if (( print_prefix )); then
  echo "$prefix"
  exit 0
fi

readonly STAMP="$prefix/.orion-build"
key="$(build_key)"
if (( !force )) && [[ -f "$STAMP" ]] && grep -qx "key=$key" "$STAMP"; then
  log "up to date: $prefix"
  echo "$prefix"
  exit 0
fi

[[ $EUID -eq 0 ]] || die "run as root (it writes $CACHE_DIR and may install packages)"
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.build.lock"
flock 9
start_s=$SECONDS

# ---- source ---------------------------------------------------------------------------
ensure_deb_src() {
  if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src ' /etc/apt/sources.list; then
    return
  fi
  log "adding a deb-src entry for Debian's source packages"
  cat > /etc/apt/sources.list.d/orion-deb-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
}

fetch_debian_source() {
  local version="$1"
  local dir="$CACHE_DIR/src/debian-$version"
  if [[ ! -f "$dir/.complete" ]]; then
    ensure_deb_src
    command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev >/dev/null
    log "downloading Debian's source package erlang=$version"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && apt-get source --download-only -qq "erlang=$version" >/dev/null 2>&1) ||
      { ensure_deb_src; (cd "$dir" && apt-get source --download-only -qq "erlang=$version"); } ||
      die "cannot download the source of erlang=$version (is a deb-src entry configured?)"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

readonly WORK="$CACHE_DIR/build/$key"
rm -rf "$WORK"
mkdir -p "$WORK"
if [[ -n "$tarball" ]]; then
  log "unpacking $tarball"
  tar -xf "$tarball" -C "$WORK"
  src="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -1)"
else
  deb_version="$(installed_deb_version)"
  src_dir="$(fetch_debian_source "$deb_version")"
  log "unpacking Debian's source (with Debian's patches)"
  dpkg-source -x "$src_dir"/erlang_*.dsc "$WORK/otp" > "$WORK/dpkg-source.log" 2>&1 ||
    { tail -5 "$WORK/dpkg-source.log" >&2; die "dpkg-source could not unpack the source"; }
  src="$WORK/otp"
fi
[[ -f "$src/OTP_VERSION" ]] || die "$src does not look like an OTP source tree (no OTP_VERSION)"
src_version="$(cat "$src/OTP_VERSION")"

# ---- patches --------------------------------------------------------------------------
if (( patches )); then
  for p in "$PATCH_DIR"/*.patch; do
    name="$(basename "$p")"
    if ! patch -d "$src" -p1 --forward --dry-run --silent < "$p" >/dev/null 2>&1; then
      die "patch $name does not apply to OTP $src_version; it was written for OTP 25.2.3 (see its header in beam_dtrace_build/patches/)"
    fi
    patch -d "$src" -p1 --forward --silent < "$p"
    log "applied $name"
  done
  cp "$PATCH_INCLUDE_DIR"/*.h "$src/erts/emulator/beam/"
fi

# ---- build ----------------------------------------------------------------------------
export ERL_TOP="$src"
cd "$src"
log "configuring OTP $src_version with --with-dynamic-trace=systemtap"
configure_log="$WORK/configure.log"
./configure --with-dynamic-trace=systemtap --prefix="$prefix" \
    --without-javac --without-wx --without-odbc --enable-kernel-poll \
    > "$configure_log" 2>&1 || { tail -20 "$configure_log" >&2; die "configure failed (log: $configure_log)"; }

installed="$(installed_otp_version)"
full_build=0
[[ "$src_version" == "$installed" ]] || full_build=1

for flavor in emu jit; do
  log "building the $flavor emulator ($jobs jobs)"
  make -j"$jobs" -C erts/emulator opt FLAVOR="$flavor" > "$WORK/make-$flavor.log" 2>&1 ||
    { tail -30 "$WORK/make-$flavor.log" >&2; die "the $flavor emulator failed to build (log: $WORK/make-$flavor.log)"; }
done

# ---- install --------------------------------------------------------------------------
target="$(erts/autoconf/config.guess)"
bindir="$src/bin/$target"
staging="$prefix.tmp"
rm -rf "$staging"
if (( full_build )); then
  log "OTP $src_version differs from the installed erlang-base ($installed): full build and install"
  make -j"$jobs" > "$WORK/make-all.log" 2>&1 || { tail -30 "$WORK/make-all.log" >&2; die "OTP build failed"; }
  make install DESTDIR="$staging" > "$WORK/make-install.log" 2>&1 || die "OTP install failed"
  # make install lays out $prefix/{bin,lib/erlang}; bin/erl is a link into lib/erlang.
  mv "$staging$prefix" "$staging.root" && rm -rf "$staging" && mv "$staging.root" "$staging"
  erts_dir="$(find "$staging/lib/erlang" -maxdepth 1 -name 'erts-*' | head -1)"
  cp "$bindir"/beam.emu "$bindir"/beam.jit "$erts_dir/bin/"
else
  log "assembling the prefix from the installed OTP $installed and the new emulators"
  mkdir -p "$staging"
  cp -a /usr/lib/erlang/bin /usr/lib/erlang/releases /usr/lib/erlang/erts-* "$staging/"
  ln -s /usr/lib/erlang/lib "$staging/lib"
  erts_dir="$(find "$staging" -maxdepth 1 -name 'erts-*' | head -1)"
  cp "$bindir"/beam.emu "$bindir"/beam.jit "$bindir"/beam.smp "$erts_dir/bin/"
  for f in "$staging/bin/erl" "$erts_dir/bin/erl" "$staging/bin/start" "$erts_dir/bin/start"; do
    [[ -f "$f" ]] && sed -i "s|ROOTDIR=/usr/lib/erlang|ROOTDIR=$prefix|" "$f"
  done
fi
rm -rf "$prefix"
mv "$staging" "$prefix"

# ---- verify ---------------------------------------------------------------------------
erts_dir="$(find "$prefix" -maxdepth 3 -type d -name 'erts-*' | head -1)"
erl="$prefix/bin/erl"
[[ -x "$erl" ]] || die "no $erl after install"
notes="$(readelf -n "$erts_dir/bin/beam.emu")"
probes=("${REQUIRED_EMU_PROBES[@]}")
(( patches )) && probes+=("${PATCHED_EMU_PROBES[@]}")
for probe in "${probes[@]}"; do
  grep -q "Name: $probe\$" <<<"$notes" || die "beam.emu has no USDT note erlang:$probe"
done
for flavor in emu jit; do
  got="$("$erl" -emu_flavor "$flavor" -noshell -eval \
    'io:format("~s ~s", [erlang:system_info(emu_flavor), erlang:system_info(dynamic_trace)]), halt().' 2>&1)" ||
    die "erl -emu_flavor $flavor does not start: $got"
  [[ "$got" == "$flavor systemtap" ]] || die "erl -emu_flavor $flavor reports '$got', expected '$flavor systemtap'"
done

{
  echo "key=$key"
  echo "otp=$src_version"
  echo "source=$(source_identity)"
  echo "patches=$( (( patches )) && (cd "$PATCH_DIR" && ls *.patch | tr '\n' ' ') || echo none)"
  echo "built=$(date -u +%FT%TZ)"
} > "$STAMP"
rm -rf "$WORK"
log "done in $(( SECONDS - start_s )) s: $prefix"
echo "$prefix"
