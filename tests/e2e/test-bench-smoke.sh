#!/usr/bin/env bash
# The benchmark's quick mode as a correctness check, with the binaries under test (no speed is
# asserted; bench/run.sh --check compares timings, on a quiet machine): 100 simulated agents
# enroll with real CURVE and every one of them connects; two desired changes reach and are
# acknowledged by all 100; a coordinator restart brings all 100 back; a MachineDeployment of
# 50 gets all its bootstrap data delivered; the store benchmark runs; the real agent enrolls,
# idles and provisions. bench.py exits 2 on any of these failing.
. "$(dirname "$0")/common.sh"

out=$WORK/bench.json
if ! /usr/bin/python3 "$SRC/bench/bench.py" --quick --build "$BUILD" --work "$WORK/bench" \
  --window 2 --agent-idle 2 --out "$out" >"$WORK/bench.log" 2>&1; then
  cat "$WORK/bench.log" >&2
  fail "bench.py --quick failed"
fi

/usr/bin/python3 - "$out" <<'PY' || fail "bench figures"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["problems"] == [], d["problems"]
a = d["sizes"]["100"]["anvil"]
lg = a["loadgen"]
assert lg["enrolled"] == 100 and lg["refused"] == 0, lg
assert a["fanout"]["n"] == 100, a["fanout"]
assert all(r["n"] == 100 for r in a["fanout"]["runs"]), a["fanout"]["runs"]
assert a["restart"]["reconnects"]["n"] >= 100, a["restart"]
assert a["md"]["complete"] and a["md"]["delivered"] == 50, a["md"]
assert d["sizes"]["100"]["floor"]["fanout"]["n"] == 100, d["sizes"]["100"]["floor"]
for phase in ("raw", "create", "status"):
    assert d["store"]["1000"][phase]["writes"] == 10000, d["store"]
ag = d["agent"]
assert ag["idle"]["RssAnon"] > 0 and ag["provision"]["samples"] > 0, ag
print("bench smoke OK")
PY

# Sanitizer reports from any process the benchmark started.
bad=$(grep -rl -E "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$WORK/bench" || true)
[ -z "$bad" ] || fail "sanitizer reports in: $bad"
echo "PASS"
