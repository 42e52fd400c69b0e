#!/usr/bin/env bash
# Anvil's benchmarks (docs/performance.md): builds a release tree in build-bench/ (-O2, no
# sanitizers, no test hooks, frame pointers kept for perf) and runs bench/bench.py: at each
# size, the bare ZeroMQ floor and a real coordinator with simulated agents (enrollment, steady
# state at 10 s heartbeats, a desired change to every host, a restart, a MachineDeployment),
# then the store benchmark and the real agent's footprint. Prints a table, writes the figures
# as JSON to bench/results/<UTC time>[-quick].json and compares them with bench/baseline.json.
#
#   bench/run.sh                 sizes 100, 1,000 and 10,000 (~10 minutes on 2 cores)
#   bench/run.sh --quick         100 hosts, short windows (~40 s after the build)
#   bench/run.sh --check         exit 1 when a figure is worse than the baseline by more than
#                                --ratio (default 3x); without it a regression is only printed
#   bench/run.sh --write-baseline   store this run's figures in bench/baseline.json (its mode's
#                                section: quick or full); commit it with the change that moved them
#   bench/run.sh --sizes 1000 --skip md,agent --perf fanout   (bench/bench.py --help)
#
# Exit status 2 is a correctness failure whatever the timings: a simulated agent that did not
# enroll, a change some host never acknowledged, a MachineDeployment not delivered.
#
# Measure on a quiet machine (`uptime`): the load generators share its cores with the
# coordinator (bench.py reports the coordinator's own CPU time from /proc, not the load).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ANVIL_BENCH_BUILD:-$SRC/build-bench}
WORK=${ANVIL_BENCH_WORK:-${TMPDIR:-/tmp}/anvil-bench}
mkdir -p "$SRC/bench/results"

suffix=
for a in "$@"; do
  if [ "$a" = --quick ]; then suffix=-quick; fi
done

echo "bench: building in $BUILD" >&2
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG -fno-omit-frame-pointer" \
  -DANVIL_BUILD_TESTS=OFF -DANVIL_TEST_HOOKS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target anvil-coordinator anvilctl anvil-agent \
  anvil-loadgen anvil-zmqfloor anvil-storebench >/dev/null

out=$SRC/bench/results/$(date -u +%Y%m%dT%H%M%SZ)$suffix.json
exec /usr/bin/python3 "$SRC/bench/bench.py" --build "$BUILD" --work "$WORK" \
  --baseline "$SRC/bench/baseline.json" --out "$out" "$@"
