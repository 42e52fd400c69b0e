#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz-*.c) with clang, ASan and UBSan in
# build-fuzz/ and fuzzes each for SECONDS (default 60), starting from its seed corpus in
# tests/fuzz/corpus/<target>/. A crash fails the run and leaves the input in
# /tmp/anvil-fuzz-fuzz-<target>/ (FUZZ_ARTIFACTS): fix the decoder, then add the input to the
# target's corpus so every test build replays it from then on.
#   scripts/fuzz.sh [SECONDS] [TARGET-REGEX]      e.g. scripts/fuzz.sh 300 wire
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-60}
FILTER=${2:-}
BUILD=${ANVIL_FUZZ_BUILD:-$SRC/build-fuzz}
command -v clang >/dev/null || { echo "fuzz: clang is needed (scripts/install-deps.sh)" >&2; exit 1; }
echo "fuzz: building the targets with clang in $BUILD"
CC=clang cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_FUZZ=ON \
  -DANVIL_BUILD_TESTS=OFF -DANVIL_FUZZ_SECONDS="$SECS" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
echo "fuzz: fuzzing each target for ${SECS}s"
ctest --test-dir "$BUILD" -L fuzz --output-on-failure -j"$(nproc)" ${FILTER:+-R "$FILTER"}
