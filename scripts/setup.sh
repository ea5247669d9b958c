#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine, idempotent: Debian packages, the USDT-enabled OTP 25
# with Orion's patches, and OTP 29 stock (tracer mode's tests) and patched (the capture tests)
# (all cached outside the repo by beam_dtrace_build/; which releases: scripts/ci_releases.sh),
# node modules (the cross-check test, orion ui's page), and the CMake build in build/.
# A second run does nothing expensive.
#
#   scripts/setup.sh                  # everything CI tests: OTP 25 (patched), 29 (stock, patched)
#   scripts/setup.sh --all-releases   # and a stock and a patched OTP 27, and the debug JIT
#                                     # emulator too (scripts/test.sh --all-releases,
#                                     # scripts/release_matrix.sh)
#   ORION_BUILD_DIR=/tmp/b scripts/setup.sh
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_BUILD_DIR:-$ROOT/build}"

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/ci_releases.sh
source "$ROOT/scripts/ci_releases.sh"
# The stock (unpatched) releases built besides the patched OTP 25: tracer mode's tests run on a
# stock JIT node of each (tests/integration/tracer_bpf_test.cc). A full OTP build each the first
# time: about 19 CPU minutes for 29 (docs/probes.md).
stock_releases=("${CI_STOCK_RELEASES[@]}")
# The patched builds of the later releases (their patch sets in beam_dtrace_build/patches/otp-N/):
# only their two emulators, over the stock prefix (built first, above). scripts/test.sh runs
# the capture tests on them (scripts/release_matrix.sh's rows of the release).
patched_releases=("${CI_PATCHED_RELEASES[@]}")
debug_jit=0  # the debug JIT emulator: capture_bpf_test's InBeamJitDebug tests (all-releases)
case "${1:-}" in
  "") ;;
  --all-releases)
    stock_releases=("${ALL_STOCK_RELEASES[@]}"); patched_releases=("${ALL_PATCHED_RELEASES[@]}")
    debug_jit=1 ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) die "unknown option: $1 (scripts/setup.sh [--all-releases])" ;;
esac

[[ $EUID -eq 0 ]] || die "run as root: it installs packages, and BPF needs root anyway (sudo $0)"

# Everything the build, the tests and the demo use, from Debian's archive.
readonly PACKAGES=(
  build-essential cmake pkg-config git
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  erlang-base erlang-dev erlang-nox
  libspdlog-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  systemtap-sdt-dev bpfcc-tools python3-bpfcc bpftrace python3
  dpkg-dev libncurses-dev
  iproute2 procps psmisc
  libtomlplusplus-dev  # orion daemon's config file (userspace/daemon/config.cc)
  libcpp-httplib-dev  # orion daemon's /metrics listener (userspace/daemon/metrics_server.cc)
  prometheus  # the real Prometheus that scrapes /metrics in tests/integration/export_bpf_test.cc
  rabbitmq-server python3-pika  # a real RabbitMQ node (named at run time, stock erl) and its AMQP
                                # workload: NodeNamesTest in tests/integration/node_names_bpf_test.cc
  valgrind  # benchmarks: the patches' idle cost in instructions (tests/bench/beam/idle_instructions.sh)
  chromium  # orion ui's browser tests and benchmark, headless (tests/ui, scripts/bench/ui_goal.sh)
)

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

log "Debian packages"
mapfile -t missing < <(missing_packages)
if (( ${#missing[@]} )); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Servers among them (prometheus, ...) are started by the tests that need them, on loopback
  # ports of their own: keep their packages from starting system-wide services on install.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if (( own_policy )); then rm -f "$policy"; trap - EXIT; fi
else
  echo "all present"
fi
if ! command -v npm >/dev/null; then
  apt-get install -y -qq nodejs npm >/dev/null
fi

log "USDT-enabled OTP (beam_dtrace_build/)"
otp_prefix="$("$ROOT/beam_dtrace_build/build.sh" | tail -1)"
echo "prefix: $otp_prefix"
for release in "${stock_releases[@]}"; do
  log "stock OTP $release for tracer mode (beam_dtrace_build/build.sh --otp $release --no-patches)"
  echo "prefix: $("$ROOT/beam_dtrace_build/build.sh" --otp "$release" --no-patches | tail -1)"
done
for release in "${patched_releases[@]}"; do
  log "patched OTP $release (beam_dtrace_build/build.sh --otp $release)"
  echo "prefix: $("$ROOT/beam_dtrace_build/build.sh" --otp "$release" | tail -1)"
done
if (( debug_jit )); then
  log "the debug JIT emulator over the patched OTP (beam_dtrace_build/build.sh --debug)"
  echo "prefix: $("$ROOT/beam_dtrace_build/build.sh" --debug | tail -1)"
fi

# npm packages, each set locked in its package-lock.json: the DDSketch cross-check
# (tests/crosscheck) and orion ui's page (userspace/ui/web: uPlot, esbuild, playwright-core for
# the browser tests), which CMake bundles and embeds in the binary.
for dir in tests/crosscheck userspace/ui/web; do
  log "node modules for $dir"
  if [[ ! -d "$ROOT/$dir/node_modules" ]] ||
     [[ "$ROOT/$dir/package-lock.json" -nt "$ROOT/$dir/node_modules" ]]; then
    npm ci --prefix "$ROOT/$dir" --no-audit --no-fund --loglevel=error
    touch "$ROOT/$dir/node_modules"
  else
    echo "up to date"
  fi
done

log "CMake build ($BUILD_DIR)"
mkdir -p "$BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DORION_OTP_PREFIX="$otp_prefix" > "$BUILD_DIR/configure.log" 2>&1 ||
  { cat "$BUILD_DIR/configure.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD_DIR" -j"$(nproc)"

log "the orion .deb (scripts/package.sh)"
ORION_BUILD_DIR="$BUILD_DIR" "$ROOT/scripts/package.sh"
echo
echo "orion: $BUILD_DIR/userspace/orion"
