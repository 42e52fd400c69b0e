#!/usr/bin/env bash
# run-fuzzer.sh FUZZER CORPUS_DIR SECONDS [libFuzzer args...]
# Fuzzes for SECONDS starting from a scratch copy of the seed corpus (the checked-in corpus
# only changes by hand: a crash found becomes a fix plus a file there). A crash leaves its
# input in ${FUZZ_ARTIFACTS:-/tmp}/anvil-fuzz-<target>/ and fails. ANVIL_FUZZ_SEED fixes
# libFuzzer's seed (scripts/test.sh does, so a CI run can be replayed); unset, each run
# explores from a new random seed (scripts/fuzz.sh on its own).
set -euo pipefail
fuzzer=$1 corpus=$2 secs=$3
shift 3
name=$(basename "$fuzzer")
art=${FUZZ_ARTIFACTS:-/tmp}/anvil-fuzz-$name
work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$art"
cp -r "$corpus"/. "$work"/
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$art/" ${ANVIL_FUZZ_SEED:+-seed="$ANVIL_FUZZ_SEED"} \
  "$@" "$work"
