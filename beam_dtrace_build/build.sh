#!/usr/bin/env bash
# Builds Erlang/OTP with USDT probes (--with-dynamic-trace=systemtap), both emulator
# flavors (jit and emu), with or without Orion's probe patches, into a cached prefix outside
# the repo. One prefix per release (--otp 25|27|29), variant (patched or --no-patches) and
# recipe; --print-prefix names it.
#
# The prefix's bin/erl is a USDT-enabled erl:
#   $(beam_dtrace_build/build.sh --print-prefix)/bin/erl -emu_flavor emu   # function probes fire
#   $(beam_dtrace_build/build.sh --print-prefix)/bin/erl -emu_flavor jit   # runtime probes only
#
# OTP 25 (the default) is Debian 12's own release: only the emulators are built (about 4
# minutes on 2 cores); the Erlang libraries, boot files and helper programs come from the
# installed erlang-base of the same version. OTP 27 and 29 have no Debian 12 binaries: their
# source comes from Debian's trixie/forky/sid archive through an apt configuration of this
# script's own (under $CACHE_DIR/apt; the machine's apt sources and lists are not touched),
# and they get a full build of the applications a node, erl_interface and the tests need;
# a patched one takes the libraries of the stock prefix of the same source when that is built
# (the patches change only the emulator) and compiles just the two emulators.
# An official OTP source tarball (--tarball) of another version than the installed one gets the
# same full build.
set -euo pipefail
# The whole script is one block, read before it runs: a build takes minutes, and bash reads a
# script while it runs it, so editing this file meanwhile would otherwise change the running build.
{
readonly RECIPE_VERSION=1       # bump when the way the prefix is assembled changes
readonly FULL_BUILD_RECIPE=1    # bump when the full build's configuration changes
readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly CACHE_DIR="${ORION_CACHE_DIR:-/var/cache/orion}"
# The releases this script builds. 25 is the default: Debian 12's own (the demo's, the probe
# patches' and the tests' release), built in minutes because only its emulators are compiled.
readonly SUPPORTED_RELEASES=(25 27 29)
readonly DEFAULT_RELEASE=25
# Headers the patches include, shared with Orion (one layout for both sides): copied into
# erts/emulator/beam/ with the patches.
readonly PATCH_INCLUDE_DIR="$HERE/include"
readonly REQUIRED_EMU_PROBES=(global__function__entry local__function__entry function__return
                              process__scheduled message__queued)
readonly PATCHED_EMU_PROBES=(exception__catch orion__call orion__calls)
# A full build compiles only these applications (configure --without-APP for every other one):
# what a node runs (kernel, stdlib, sasl: the mandatory ones with compiler and erl_interface),
# what the tests and tracer mode call (runtime_tools), and what building them needs (parsetools
# for yecc, tools). erl_interface gives erl_call and libei.
readonly FULL_BUILD_APPS=(kernel stdlib sasl compiler erl_interface runtime_tools tools parsetools)

usage() {
  cat <<USAGE
Usage: $(basename "$0") [OPTIONS]

Build OTP with USDT probes (jit and emu flavors) into a cached prefix.

Options:
  --otp RELEASE     OTP release: ${SUPPORTED_RELEASES[*]} (default $DEFAULT_RELEASE). 25 is Debian 12's
                    installed erlang-base: only its emulators are built (about 4 min on
                    2 cores). 27 and 29 come from Debian's source of that release (trixie,
                    forky or sid; the newest revision the archive serves) and get a full
                    build of the applications a node needs (about 19 CPU minutes).
  --print-prefix    print the prefix for these options and exit (builds nothing)
  --tarball PATH    build from an official OTP source tarball instead of Debian's
                    source (its release is read from the tarball's OTP_VERSION)
  --no-patches      build stock OTP (no Orion patches): the baseline for benchmarks,
                    and the build tracer mode is tested on for 27 and 29
  --debug           add the JIT flavor of the debug emulator type (beam.debug.jit:
                    assertions, and the JIT's checks of the stack's frames) to the
                    prefix these options name otherwise (built first if missing), in
                    a prefix of its own; run it as erl -emu_type debug -emu_flavor jit
  --force           rebuild even if the prefix is complete
  --jobs N          parallel make jobs (default: number of cores)
  -h, --help        this help

Orion's emulator patches: OTP 25's in beam_dtrace_build/patches/, OTP 27's and 29's in
beam_dtrace_build/patches/otp-27/ and otp-29/ (same probe ABI): the same probes and pairing as
25's, in both flavors (the JIT on x86_64). A patched 27 or 29 takes its libraries from the stock
prefix of its release when that is built (build it first: --otp 27 --no-patches), and then
compiles only the two patched emulators.

Environment:
  ORION_OTP_PREFIX  use this prefix instead of the default under $CACHE_DIR
  ORION_CACHE_DIR   cache root (default /var/cache/orion)

Examples:
  $(basename "$0")                          # build (or reuse) the patched USDT OTP 25
  $(basename "$0") --print-prefix           # where it is
  $(basename "$0") --no-patches             # stock USDT OTP 25, for overhead baselines
  $(basename "$0") --otp 29 --no-patches    # stock USDT OTP 29 (jit and emu)
  $(basename "$0") --otp 29 --no-patches --print-prefix
  $(basename "$0") --otp 29                 # patched 29 (after the stock one: emulators only)
  $(basename "$0") --tarball otp_src_27.3.4.1.tar.gz --no-patches
  $(basename "$0") --debug                  # the patched 25 with beam.debug.jit beside the others
USAGE
}

log() { printf '[beam_dtrace_build %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { printf '[beam_dtrace_build] error: %s\n' "$*" >&2; exit 1; }

tarball=""
release=""
patches=1
debug=0
force=0
print_prefix=0
jobs="$(nproc)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --otp) [[ $# -ge 2 ]] || die "--otp needs a release (${SUPPORTED_RELEASES[*]})"; release="$2"; shift ;;
    --print-prefix) print_prefix=1 ;;
    --tarball) [[ $# -ge 2 ]] || die "--tarball needs a path"; tarball="$(realpath "$2")"; shift ;;
    --no-patches) patches=0 ;;
    --debug) debug=1 ;;
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
tarball_otp_version() {
  [[ -f "$tarball" ]] || die "no such tarball: $tarball"
  tar -xOf "$tarball" --wildcards '*/OTP_VERSION' 2>/dev/null | head -1
}

# ---- which release, which source --------------------------------------------------------
if [[ -n "$tarball" ]]; then
  tarball_version="$(tarball_otp_version)"
  [[ -n "$tarball_version" ]] || die "$tarball has no OTP_VERSION: is it an OTP source tarball?"
  [[ -z "$release" || "$release" == "${tarball_version%%.*}" ]] ||
    die "--otp $release but $tarball is OTP $tarball_version"
  release="${tarball_version%%.*}"
else
  release="${release:-$DEFAULT_RELEASE}"
  [[ " ${SUPPORTED_RELEASES[*]} " == *" $release "* ]] ||
    die "--otp $release: this script builds OTP ${SUPPORTED_RELEASES[*]} (or any release from --tarball)"
fi
# Where the release's patch set lives: 25's is the original set in patches/; the ports to
# later releases are in patches/otp-RELEASE/ (one folded set per release, same probe ABI).
if [[ "$release" == 25 ]]; then patch_dir="$HERE/patches"; else patch_dir="$HERE/patches/otp-$release"; fi
if (( patches )) && ! compgen -G "$patch_dir/*.patch" >/dev/null; then
  die "Orion's emulator patch set for OTP $release does not exist (a port to $release would go in
  ${patch_dir#"$HERE/"}/). Build the stock variant, which tracer mode uses, with:
  $(basename "$0") --otp $release --no-patches"
fi

# How the prefix is built: "emulators" (only the two emulators, the rest from the installed
# erlang-base of the same version: OTP 25 on Debian 12) or "full" (configure, make, install).
if [[ -n "$tarball" ]]; then
  [[ "$tarball_version" == "$(installed_otp_version)" ]] && recipe=emulators || recipe=full
elif [[ "$release" == "$DEFAULT_RELEASE" ]]; then
  recipe=emulators
else
  recipe=full
fi

# The cache key: what the prefix is built from and how. For Debian's 27/29 it names the
# release, not the revision: a prefix, once built, is reused until --force re-picks the newest
# revision the archive serves.
source_identity() {
  if [[ -n "$tarball" ]]; then
    echo "tarball:$(sha256sum "$tarball" | cut -d' ' -f1)"
  elif [[ "$release" == "$DEFAULT_RELEASE" ]]; then
    local v; v="$(installed_deb_version)"
    [[ -n "$v" ]] || die "erlang-base is not installed (apt-get install erlang-base erlang-dev), or pass --tarball"
    echo "debian:$v"
  else
    echo "debian-release:$release"
  fi
}

build_key() {
  {
    echo "recipe:$RECIPE_VERSION"
    source_identity
    if [[ "$recipe" == full ]]; then echo "full:$FULL_BUILD_RECIPE ${FULL_BUILD_APPS[*]}"; fi
    if (( patches )); then cat "$patch_dir"/*.patch "$PATCH_INCLUDE_DIR"/*.h; else echo "stock"; fi
    if (( debug )); then echo "type:debug jit (over the opt prefix)"; fi
  } | sha256sum | cut -c1-12
}

default_prefix() {
  local variant="patched"; (( patches )) || variant="stock"
  (( debug )) && variant+="-debug"
  local version
  if [[ -n "$tarball" ]]; then
    version="$tarball_version"
  elif [[ "$release" == "$DEFAULT_RELEASE" ]]; then
    version="$(installed_otp_version)"
  else
    version="$release"
  fi
  echo "$CACHE_DIR/otp-${version:-unknown}-$variant-$(build_key)"
}

prefix="${ORION_OTP_PREFIX:-$(default_prefix)}"
if (( print_prefix )); then
  echo "$prefix"
  exit 0
fi

readonly STAMP="$prefix/.orion-build"
key="$(build_key)"
prefix_is_built() { [[ -f "$STAMP" ]] && grep -qx "key=$key" "$STAMP"; }
if (( !force )) && prefix_is_built; then
  log "up to date: $prefix"
  echo "$prefix"
  exit 0
fi

[[ $EUID -eq 0 ]] || die "run as root (it writes $CACHE_DIR and may install packages)"
mkdir -p "$CACHE_DIR"
# --debug: the prefix of the same options without it is the base, built first (before this
# build takes its lock, which that build takes too); only the debug JIT is compiled here.
debug_base=""
if (( debug )); then
  base_args=(--otp "$release" --jobs "$jobs")
  [[ -n "$tarball" ]] && base_args+=(--tarball "$tarball")
  (( patches )) || base_args+=(--no-patches)
  debug_base="$(ORION_OTP_PREFIX="" "$HERE/build.sh" "${base_args[@]}" --print-prefix)"
  if [[ ! -f "$debug_base/.orion-build" ]]; then
    log "building the base prefix first: $debug_base"
    ORION_OTP_PREFIX="" "$HERE/build.sh" "${base_args[@]}" >/dev/null
  fi
fi
# One build of a release at a time; other releases build meanwhile (25 keeps the lock name
# earlier versions of this script used).
# A --debug build (its base is built by then) has a lock of its own.
if (( debug )); then exec 9>"$CACHE_DIR/.build-debug-otp$release.lock"
elif [[ "$release" == "$DEFAULT_RELEASE" ]]; then exec 9>"$CACHE_DIR/.build.lock"; else exec 9>"$CACHE_DIR/.build-otp$release.lock"; fi
if ! flock -n 9; then
  log "waiting for another build of OTP $release to finish"
  flock 9
fi
if (( !force )) && prefix_is_built; then
  log "up to date (built meanwhile): $prefix"
  echo "$prefix"
  exit 0
fi
start_s=$SECONDS
# CPU seconds (user + system) of the build's finished child processes: less sensitive than the
# wall time to what else the machine runs.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($16 + $17) / hz }' "/proc/$$/stat"; }
step() { log "[$(( SECONDS - start_s )) s] $*"; }

# ---- source: Debian 12's own release (25) -----------------------------------------------
ensure_deb_src() {
  if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src ' /etc/apt/sources.list; then
    return
  fi
  log "adding a deb-src entry for Debian's source packages"
  cat > /etc/apt/sources.list.d/orion-deb-src.sources <<'SOURCES'
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
SOURCES
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

# ---- source: a later release (27, 29) from Debian's newer suites --------------------------
# apt with a configuration of its own (debian_apt.sh: release_apt, update_release_apt_lists).
source "$HERE/debian_apt.sh"

# The source package revisions of OTP $1 the lists name, newest first.
release_revisions() {
  release_apt apt-cache showsrc erlang 2>/dev/null | sed -n 's/^Version: //p' |
    grep -E "^([0-9]+:)?$1\." | sort -u | sort -r -V
}

# Downloads the newest revision of OTP $1 that the archive serves into $2 and prints
# "full VERSION" (the .dsc, Debian's patches and the orig tarball) or "orig VERSION" (only the
# orig tarball was served: then the build is of upstream's source, without Debian's patches).
download_release_source() {
  local rel="$1" dir="$2" version
  local -a revisions
  mapfile -t revisions < <(release_revisions "$rel")
  (( ${#revisions[@]} )) || die "Debian's source lists (${DEBIAN_SOURCE_SUITES[*]#* }) name no erlang $rel.x"
  for version in "${revisions[@]}"; do
    rm -rf "$dir" && mkdir -p "$dir"
    step "trying erlang=$version"
    if (cd "$dir" && release_apt apt-get source --download-only -qq "erlang=$version") > "$dir.log" 2>&1 &&
       compgen -G "$dir/*.dsc" >/dev/null; then
      echo "full $version"; return
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    if (cd "$dir" && release_apt apt-get source --download-only --tar-only -qq "erlang=$version") >> "$dir.log" 2>&1 &&
       compgen -G "$dir/*.orig.tar.*" >/dev/null; then
      echo "orig $version"; return
    fi
    log "erlang=$version is listed but not served (the archive answers 404 for it)"
  done
  rm -rf "$dir"
  die "no revision of erlang $rel.x could be downloaded (tried ${revisions[*]}; log: $dir.log)"
}

# Unpacks the source of OTP $1 into $2; prints the Debian revision it came from.
unpack_release_source() {
  local rel="$1" tree="$2" kind version
  local dir="$CACHE_DIR/src/release-$rel"
  if [[ -f "$dir/.complete" ]] && (( !force )); then
    read -r kind version < "$dir/.complete"
  else
    command -v dpkg-source >/dev/null || apt-get install -y -qq dpkg-dev >/dev/null
    exec 8>"$CACHE_DIR/.apt.lock"
    flock 8
    update_release_apt_lists
    read -r kind version < <(download_release_source "$rel" "$dir")
    exec 8>&-
    echo "$kind $version" > "$dir/.complete"
  fi
  if [[ "$kind" == full ]]; then
    step "unpacking Debian's source erlang=$version (with Debian's patches)"
    dpkg-source -x "$dir"/erlang_*.dsc "$tree" > "$tree.dpkg-source.log" 2>&1 ||
      { tail -5 "$tree.dpkg-source.log" >&2; die "dpkg-source could not unpack $dir"; }
  else
    # Debian's patches are in its debian.tar.xz, which was not served: build upstream's source
    # as the orig tarball has it (upstream's release less the non-free files Debian drops).
    step "unpacking the orig tarball of erlang=$version (its .dsc was not served: upstream's source, without Debian's patches)"
    mkdir -p "$tree"
    tar -xf "$dir"/erlang_*.orig.tar.* -C "$tree" --strip-components=1
  fi
  echo "debian:$version ($kind)"
}

# A patched full build takes its libraries from the stock prefix of the same release when that
# one is built (from the same source revision, checked after unpacking) and the patch set
# changes nothing outside erts/emulator/: then only the two patched emulators are compiled
# (minutes instead of a second full build) and the rest of the prefix is the stock one's.
stock_prefix=""
if (( patches )) && [[ "$recipe" == full && -z "$tarball" ]]; then
  candidate="$(ORION_OTP_PREFIX="" "$HERE/build.sh" --otp "$release" --no-patches --print-prefix)"
  outside="$(grep -h '^+++ ' "$patch_dir"/*.patch | awk '{print $2}' | grep -v '^b/erts/emulator/' || true)"
  if [[ -f "$candidate/.orion-build" && -z "$outside" ]]; then
    stock_prefix="$candidate"
  elif [[ -n "$outside" ]]; then
    log "the patch set changes files outside erts/emulator/ ($outside): a full build"
  else
    log "no stock OTP $release prefix ($candidate): a full build (build.sh --otp $release --no-patches first saves it)"
  fi
fi

# ---- unpack -------------------------------------------------------------------------------
readonly WORK="$CACHE_DIR/build/$key"
rm -rf "$WORK"
mkdir -p "$WORK"
src="$WORK/otp"
if [[ -n "$tarball" ]]; then
  step "unpacking $tarball"
  tar -xf "$tarball" -C "$WORK"
  src="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -1)"
  built_from="$(source_identity)"
elif [[ "$release" == "$DEFAULT_RELEASE" ]]; then
  deb_version="$(installed_deb_version)"
  src_dir="$(fetch_debian_source "$deb_version")"
  step "unpacking Debian's source (with Debian's patches)"
  dpkg-source -x "$src_dir"/erlang_*.dsc "$src" > "$WORK/dpkg-source.log" 2>&1 ||
    { tail -5 "$WORK/dpkg-source.log" >&2; die "dpkg-source could not unpack the source"; }
  built_from="$(source_identity)"
else
  built_from="$(unpack_release_source "$release" "$src")"
fi
[[ -f "$src/OTP_VERSION" ]] || die "$src does not look like an OTP source tree (no OTP_VERSION)"
src_version="$(cat "$src/OTP_VERSION")"
[[ "${src_version%%.*}" == "$release" ]] || die "the source is OTP $src_version, not $release"
if [[ -n "$stock_prefix" ]] && ! grep -qxF "source=$built_from" "$stock_prefix/.orion-build"; then
  log "$stock_prefix was built from another source than $built_from: a full build"
  stock_prefix=""
fi

# ---- patches --------------------------------------------------------------------------
if (( patches )); then
  for p in "$patch_dir"/*.patch; do
    name="$(basename "$p")"
    if ! patch -d "$src" -p1 --forward --dry-run --silent < "$p" >/dev/null 2>&1; then
      die "patch $name does not apply to OTP $src_version (see its header in ${patch_dir#"$HERE/"}/)"
    fi
    patch -d "$src" -p1 --forward --silent < "$p"
    step "applied $name"
  done
  cp "$PATCH_INCLUDE_DIR"/*.h "$src/erts/emulator/beam/"
fi

# ---- build ----------------------------------------------------------------------------
export ERL_TOP="$src"
cd "$src"
configure_args=(--with-dynamic-trace=systemtap --prefix="$prefix"
                --without-javac --without-wx --without-odbc --enable-kernel-poll)
if [[ "$recipe" == full ]]; then
  for app_dir in lib/*/; do
    app="$(basename "$app_dir")"
    [[ " ${FULL_BUILD_APPS[*]} odbc wx " == *" $app "* ]] || configure_args+=("--without-$app")
  done
fi
step "configuring OTP $src_version with --with-dynamic-trace=systemtap ($recipe build)"
configure_log="$WORK/configure.log"
./configure "${configure_args[@]}" > "$configure_log" 2>&1 ||
  { tail -20 "$configure_log" >&2; die "configure failed (log: $configure_log)"; }

if (( debug )); then
  step "building the debug jit emulator ($jobs jobs; log: $WORK/make-debug-jit.log)"
  make -j"$jobs" -C erts/emulator debug FLAVOR=jit > "$WORK/make-debug-jit.log" 2>&1 ||
    { tail -30 "$WORK/make-debug-jit.log" >&2; die "the debug jit emulator failed to build (log: $WORK/make-debug-jit.log)"; }
else
  for flavor in emu jit; do
    step "building the $flavor emulator ($jobs jobs; log: $WORK/make-$flavor.log)"
    make -j"$jobs" -C erts/emulator opt FLAVOR="$flavor" > "$WORK/make-$flavor.log" 2>&1 ||
      { tail -30 "$WORK/make-$flavor.log" >&2; die "the $flavor emulator failed to build (log: $WORK/make-$flavor.log)"; }
  done
fi

# ---- install --------------------------------------------------------------------------
target="$(erts/autoconf/config.guess)"
bindir="$src/bin/$target"
staging="$prefix.tmp"
rm -rf "$staging"
if [[ -n "$debug_base" ]]; then
  step "assembling the prefix from $debug_base and the debug jit emulator"
  cp -a "$debug_base" "$staging"
  rm -f "$staging/.orion-build"
  grep -rlIF "$debug_base" "$staging" | while read -r f; do sed -i "s|$debug_base|$prefix|g" "$f"; done
  erts_dir="$(find "$staging" -maxdepth 3 -type d -name 'erts-*' | head -1)"
  # The debug emulator starts the debug erl_child_setup (its name carries the type too).
  cp "$bindir"/beam.debug.jit "$bindir"/erl_child_setup.debug "$erts_dir/bin/"
elif [[ -n "$stock_prefix" ]]; then
  step "assembling the prefix from the stock $stock_prefix and the patched emulators"
  cp -a "$stock_prefix" "$staging"
  rm -f "$staging/.orion-build"
  # bin/erl and bin/start (and their copies in erts-*/bin) name their root directory.
  grep -rlIF "$stock_prefix" "$staging" | while read -r f; do sed -i "s|$stock_prefix|$prefix|g" "$f"; done
  erts_dir="$(find "$staging/lib/erlang" -maxdepth 1 -name 'erts-*' | head -1)"
  cp "$bindir"/beam.emu "$bindir"/beam.jit "$erts_dir/bin/"
  cp "$bindir"/beam.jit "$erts_dir/bin/beam.smp" # the default flavor, as make install puts it
elif [[ "$recipe" == full ]]; then
  step "building the rest of OTP $src_version: ${FULL_BUILD_APPS[*]} ($jobs jobs; log: $WORK/make-all.log)"
  make -j"$jobs" > "$WORK/make-all.log" 2>&1 ||
    { tail -30 "$WORK/make-all.log" >&2; die "the OTP build failed (log: $WORK/make-all.log)"; }
  step "installing"
  make install DESTDIR="$staging" > "$WORK/make-install.log" 2>&1 ||
    { tail -30 "$WORK/make-install.log" >&2; die "OTP install failed (log: $WORK/make-install.log)"; }
  # make install lays out $prefix/{bin,lib/erlang}; bin/erl is a link into lib/erlang.
  mv "$staging$prefix" "$staging.root" && rm -rf "$staging" && mv "$staging.root" "$staging"
  erts_dir="$(find "$staging/lib/erlang" -maxdepth 1 -name 'erts-*' | head -1)"
  cp "$bindir"/beam.emu "$bindir"/beam.jit "$erts_dir/bin/"
else
  installed="$(installed_otp_version)"
  step "assembling the prefix from the installed OTP $installed and the new emulators"
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
step "verifying the probes and both flavors"
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
# Patch 0004's 5-byte nop sites become a call under Linux's optimized uprobes: no function that
# holds a site may keep data below %rsp (the emulator is compiled with -mno-red-zone).
if (( patches )) && [[ "$(uname -m)" == x86_64 ]]; then
  beams=("$erts_dir/bin/beam.emu" "$erts_dir/bin/beam.jit")
  (( debug )) && beams+=("$erts_dir/bin/beam.debug.jit")
  redzone="$("$HERE/../scripts/check_red_zone.py" "${beams[@]}" 2>&1)" ||
    die "a probe site's function keeps data below %rsp (docs/probes.md, \"The red zone\"):
$redzone"
fi
if (( debug )); then
  got="$("$erl" -emu_type debug -emu_flavor jit -noshell -eval \
    'io:format("~s ~s ~s", [erlang:system_info(emu_flavor), erlang:system_info(dynamic_trace), erlang:system_info(build_type)]), halt().' 2>&1)" ||
    die "erl -emu_type debug -emu_flavor jit does not start: $got"
  [[ "$got" == "jit systemtap debug" ]] || die "erl -emu_type debug -emu_flavor jit reports '$got', expected 'jit systemtap debug'"
fi

{
  echo "key=$key"
  echo "otp=$src_version"
  echo "source=$built_from"
  echo "recipe=$recipe${stock_prefix:+ (emulators only; the rest from $stock_prefix)}${debug_base:+ (the debug jit emulator over $debug_base)}"
  echo "patches=$( (( patches )) && (cd "$patch_dir" && ls *.patch | tr '\n' ' ') || echo none)"
  echo "built=$(date -u +%FT%TZ)"
  echo "build_seconds=$(( SECONDS - start_s ))"
  echo "build_cpu_seconds=$(cpu_seconds)"
} > "$STAMP"
rm -rf "$WORK"
log "OTP $src_version ($recipe build) done in $(( SECONDS - start_s )) s ($(cpu_seconds) CPU seconds): $prefix"
echo "$prefix"
exit 0
}
