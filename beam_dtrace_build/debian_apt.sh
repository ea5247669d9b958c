# Sourced by build.sh (erlang 27/29) and tests/bench/beam/build_valgrind.sh: apt with a
# configuration of its own, for source packages of Debian releases newer than the machine's.
# Its sources, lists and caches live under $CACHE_DIR/apt, so the machine's apt (bookworm)
# sees none of it. The caller defines CACHE_DIR, step and die, and holds $CACHE_DIR/.apt.lock
# around update_release_apt_lists and its downloads.

# Debian's source suites for the releases Debian 12 has no binaries for (newest suites last;
# each revision is tried, newest first, until one downloads).
readonly DEBIAN_SOURCE_SUITES=("debian trixie" "debian trixie-updates" "debian-security trixie-security"
                               "debian forky" "debian sid" "debian experimental")
readonly APT_DIR="$CACHE_DIR/apt"

release_apt() {
  local tool="$1"; shift
  "$tool" -o Dir::Etc::SourceList="$APT_DIR/sources.list" -o Dir::Etc::SourceParts="$APT_DIR/sources.list.d" \
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" \
    -o APT::Sandbox::User=root "$@"
}

update_release_apt_lists() {
  mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  local suite
  for suite in "${DEBIAN_SOURCE_SUITES[@]}"; do
    read -r archive name <<<"$suite"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/$archive $name main"
  done > "$APT_DIR/sources.list"
  step "reading Debian's source lists (${DEBIAN_SOURCE_SUITES[*]#* }) into $APT_DIR"
  release_apt apt-get update -qq > "$APT_DIR/update.log" 2>&1 ||
    { tail -5 "$APT_DIR/update.log" >&2; die "apt-get update with $APT_DIR/sources.list failed (log: $APT_DIR/update.log)"; }
}
