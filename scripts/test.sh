#!/usr/bin/env bash
# Builds Anvil with AddressSanitizer + UndefinedBehaviorSanitizer and runs every test with
# ctest (unit tests, the fakes' own tests, fuzz corpus replays, end-to-end tests with real
# processes), then, on a full run, builds the libFuzzer targets with clang and fuzzes each
# for ANVIL_CI_FUZZ_SECONDS (default 8; 0 skips) and runs the benchmark's quick mode against
# its baseline (ANVIL_CI_BENCH=0 skips). Exits non-zero on any failure. `.ci/run`
# runs exactly this.
#   scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R e2e -V
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$SRC/scripts/lib.sh"
if anvil_need_deps; then
  echo "test: installing dependencies"
  "$SRC/scripts/install-deps.sh"
fi
BUILD=${ANVIL_TEST_BUILD:-$SRC/build-asan}
echo "test: building with ASan+UBSan in $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DANVIL_SANITIZE=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "test: running the suite"
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" --timeout 900 "$@"
if [ $# -eq 0 ] && [ "${ANVIL_CI_FUZZ_SECONDS:-8}" != 0 ]; then
  # A fixed seed (ANVIL_FUZZ_SEED=random to explore) makes a failure here replayable;
  # longer exploratory runs are scripts/fuzz.sh on its own.
  seed=${ANVIL_FUZZ_SEED:-20261126}
  [ "$seed" = random ] && seed=
  echo "test: fuzzing every decoder for ${ANVIL_CI_FUZZ_SECONDS:-8}s each${seed:+ (seed $seed)}"
  ANVIL_FUZZ_SEED=$seed bash "$SRC/scripts/fuzz.sh" "${ANVIL_CI_FUZZ_SECONDS:-8}"
fi
if [ $# -eq 0 ] && [ "${ANVIL_CI_BENCH:-1}" != 0 ]; then
  # The benchmark's quick mode against the committed baseline (bench/baseline.json), with a
  # generous ratio: CI machines differ from the one that wrote it; this catches a change that
  # makes something several times slower or bigger, not noise. ANVIL_CI_BENCH=0 skips it.
  echo "test: benchmark, quick mode, against bench/baseline.json (ratio ${ANVIL_CI_BENCH_RATIO:-5})"
  ANVIL_BENCH_WORK=${TMPDIR:-/tmp}/anvil-bench-ci bash "$SRC/bench/run.sh" --quick --check \
    --ratio "${ANVIL_CI_BENCH_RATIO:-5}"
fi
