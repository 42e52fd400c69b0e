#!/usr/bin/env bash
# Golden tests of what operators read: get tables, describe, describe cluster, -o yaml and
# explain, for examples/cluster.yaml on a coordinator without agents (every object waits for
# hosts, so the state is stable). Each output must be aligned as kubectl aligns its tables
# (checked on the raw text by output.py align) and, once what changes from run to run is
# normalised (uids, times, ages, resourceVersions, random name suffixes), equal
# tests/e2e/golden/NAME.txt. UPDATE_GOLDEN=1 rewrites the golden files.
. "$(dirname "$0")/common.sh"
GOLDEN=$SRC/tests/e2e/golden
OUT=$SRC/tests/e2e/output.py
anvil_start_coordinator
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
rev() { anvilctl info -o json | json 'd["revision"]'; }
anvil_wait 40 "the store settles" bash -c \
  "a=\$($CTL info -o json | grep -o '\"revision\": [0-9]*'); sleep 1; b=\$($CTL info -o json | grep -o '\"revision\": [0-9]*'); [ \"\$a\" = \"\$b\" ]"

n=0
check() { # check NAME ANVILCTL-ARGS...
  local name=$1; shift
  anvilctl "$@" >"$WORK/$name.raw" 2>&1 || fail "$name: anvilctl $* failed: $(cat "$WORK/$name.raw")"
  /usr/bin/python3 "$OUT" align "$WORK/$name.raw" || fail "$name: columns not aligned"
  /usr/bin/python3 "$OUT" normalise <"$WORK/$name.raw" >"$WORK/$name.txt"
  if [ -n "${UPDATE_GOLDEN:-}" ]; then
    cp "$WORK/$name.txt" "$GOLDEN/$name.txt"
  else
    diff -u "$GOLDEN/$name.txt" "$WORK/$name.txt" || fail "$name: output differs from golden/$name.txt"
  fi
  n=$((n + 1))
}
check get-clusters get clusters
check get-md-wide get md -o wide
check get-machines get machines
check get-kcp get kcp
check get-amt-labels get amt --show-labels
check get-kc get kubeadmconfigs
check get-all-namespaces get anvilclusters -A
check get-md-yaml get md demo-md-0 -o yaml
check get-md-name get md -o name
check describe-md describe md demo-md-0
check describe-kcp describe kcp demo-control-plane
check describe-cluster describe cluster demo
check explain-md-strategy explain md.spec.strategy
check explain-kct explain kct --recursive
echo "PASS ($n outputs)"
