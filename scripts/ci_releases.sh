# The OTP releases CI builds and tests: sourced by scripts/setup.sh (which builds them) and
# scripts/test.sh (which runs their tests). One list, so the two cannot disagree.
#
# CI (`bash .ci/run`, scripts/test.sh): OTP 25.2.3 patched (Debian 12's release, the demo's:
# the default build, whose prefix the CMake build names) and OTP 29 (the current release),
# stock and patched. The stock 29 is tracer mode's node (TracerReleaseTest/OTP29*) and gives
# the patched 29 its libraries; the patched 29 runs the capture and probe tests of
# scripts/release_matrix.sh's 29 rows (JIT pairing in both frame layouts, emu paired in the
# BEAM and in BPF, ProbeCountBpfTest, UsdtPatchTest), as the default ctest run does on 25.
# --all-releases adds 27, stock and patched.
#
# The 60-minute budget of a fresh machine's `.ci/run`, from figures measured here (each OTP
# build's .orion-build in /var/cache/orion records build_seconds and build_cpu_seconds; the
# wall times were taken while other builds shared the machine's 2 cores, so the budget uses
# CPU seconds over 2 cores plus the single-threaded configures: docs/probes.md, "What CI builds"):
#   OTP builds: patched 25 588 CPU s (about 6 min), stock 29 full 1,115 CPU s (10 to 13 min),
#     patched 29's two emulators 731 CPU s (about 7 min): 23 to 26 minutes
#   a fresh run with the OTP prefixes cached: 1,317 s, 22 minutes (set-up 512 s)
#   the patched 29's second ctest run: 249 s measured (78 tests), about 4 minutes
#   total: 49 to 52 minutes, within the hour. Over budget, the second run's rows are what to trim
#   (scripts/release_matrix.sh; its JIT rows need only the patched 29's beam.jit).
CI_STOCK_RELEASES=(29)
CI_PATCHED_RELEASES=(29) # besides 25, always built
ALL_STOCK_RELEASES=(27 29)
ALL_PATCHED_RELEASES=(27 29)
