#!/usr/bin/env bash
# Builds the orion .deb from the CMake build (packaging/CMakeLists.txt): build/package/orion_*.deb.
# Idempotent; scripts/setup.sh runs it after the build.
#
#   scripts/package.sh            # -> build/package/orion_<version>_amd64.deb
#   sudo dpkg -i build/package/orion_*.deb
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"

die() { printf 'package: error: %s\n' "$*" >&2; exit 1; }

[[ -f "$BUILD_DIR/CPackConfig.cmake" ]] || die "no CMake build in $BUILD_DIR: run scripts/setup.sh first"
command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps is missing (apt-get install dpkg-dev)"
cmake --build "$BUILD_DIR" --target orion orion_tracer_nif orion_tracer_beam -j"$(nproc)" >/dev/null
(cd "$BUILD_DIR" && cpack -G DEB >"$BUILD_DIR/cpack.log" 2>&1) ||
  { tail -30 "$BUILD_DIR/cpack.log" >&2; die "cpack failed (log: $BUILD_DIR/cpack.log)"; }
deb="$(ls -t "$BUILD_DIR"/package/orion_*.deb | head -1)"
echo "$deb"
