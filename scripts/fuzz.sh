#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/**, CMake targets named *_fuzzer) with clang in
# build-fuzz/ and runs each for ORION_FUZZ_SECONDS seconds from its seed corpus (the corpus/
# folder beside its source).  Exits non-zero if a fuzzer finds a crash, a leak, undefined
# behaviour or more than 512 MiB of memory; the input that did it is kept in build-fuzz/artifacts/.
#
#   scripts/fuzz.sh
#   ORION_FUZZ_SECONDS=300 scripts/fuzz.sh
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD_DIR="${ORION_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
readonly SECONDS_EACH="${ORION_FUZZ_SECONDS:-20}"

die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 1; }

command -v clang++ >/dev/null || die "clang++ is needed (apt-get install clang)"
mkdir -p "$BUILD_DIR"
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DORION_BUILD_FUZZ=ON -DORION_BUILD_TESTS=OFF -DORION_BUILD_BENCH=OFF \
    >"$BUILD_DIR/configure.log" 2>&1 || { cat "$BUILD_DIR/configure.log" >&2; die "cmake configure failed"; }
fi

mapfile -t targets < <(cmake --build "$BUILD_DIR" --target help | sed -n 's/^\.\.\. \([A-Za-z0-9_]*_fuzzer\)$/\1/p')
(( ${#targets[@]} )) || die "no *_fuzzer target in $BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]}" >"$BUILD_DIR/build.log" 2>&1 ||
  { tail -50 "$BUILD_DIR/build.log" >&2; die "building ${targets[*]} failed"; }

failed=()
for target in "${targets[@]}"; do
  binary="$(find "$BUILD_DIR/tests/fuzz" -type f -name "$target" -perm -u+x | head -1)"
  [[ -n "$binary" ]] || die "built $target but cannot find its binary"
  relative_dir="$(dirname "${binary#"$BUILD_DIR"/}")"
  seeds="$ROOT/$relative_dir/corpus"
  work="$(mktemp -d)"
  artifacts="$BUILD_DIR/artifacts/$target/"
  mkdir -p "$artifacts"
  echo "==> $target: ${SECONDS_EACH} s (seeds: ${seeds#"$ROOT"/})"
  corpora=("$work")
  [[ -d "$seeds" ]] && corpora+=("$seeds")
  if "$binary" -max_total_time="$SECONDS_EACH" -rss_limit_mb=512 -max_len=65536 \
       -artifact_prefix="$artifacts" -print_final_stats=1 "${corpora[@]}" >"$work.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done ' "$work.log" | sed 's/^/    /' || true
  else
    tail -40 "$work.log" >&2
    failed+=("$target")
  fi
  rm -rf "$work" "$work.log"
done

if (( ${#failed[@]} )); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} fuzzer(s) ran ${SECONDS_EACH} s each without a crash"
