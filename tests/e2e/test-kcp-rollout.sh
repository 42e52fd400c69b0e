#!/usr/bin/env bash
# KubeadmControlPlane rollout (spec.rolloutAfter reached) of 3 control plane machines, one at
# a time, never losing etcd quorum — checked at every change of the fake etcd's membership:
#  - with a spare host (maxSurge 1): a new member joins before an old one leaves, so etcd
#    never has fewer than 3 members;
#  - with maxSurge 0: an old member leaves first, never fewer than 2 (a majority of 3).
. "$(dirname "$0")/common.sh"
export ANVIL_HEARTBEAT=1s
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
for i in 1 2 3 4; do anvil_start_agent cp-$i "$CP"; done
anvil_wait 30 "4 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 4 ]"
sed -e 's/^  replicas: 1$/  replicas: 3/' -e 's/^  replicas: 2$/  replicas: 0/' \
  "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 180 "3 control plane machines Running" anvil_machines_running 3
KCP=demo-control-plane
EP=10.200.0.10:6443
FAKE="/usr/bin/python3 $SRC/tests/fakes/fakek8s.py"
cp_machines() {
  anvilctl get machines -l cluster.x-k8s.io/control-plane-name=$KCP -o json |
    json '" ".join(sorted(m["metadata"]["name"] for m in d["items"] if not m["metadata"].get("deletionTimestamp")))'
}
# etcd membership at every change since $1: prints "min max"
members_since() {
  $FAKE history $EP | /usr/bin/python3 -c '
import json, sys
t0 = float(sys.argv[1])
hist = json.load(sys.stdin)
before = [h for h in hist if h["time"] < t0]
seen = ([before[-1]] if before else []) + [h for h in hist if h["time"] >= t0]
n = [len(h["etcdMembers"]) for h in seen]
print(min(n), max(n), len(n))' "$1"
}

# ---- scale up first: the spare host takes the new member each time
sleep 1.1
old=$(cp_machines)
t0=$(date +%s.%N)
res_set kcp $KCP "d['spec']['rolloutAfter']='$(now_rfc3339)'"
timeout 300 "$CTL" rollout status kcp $KCP >"$WORK/status.txt" || fail "rollout: $(cat "$WORK/status.txt")"
anvil_wait 60 "3 machines Running" anvil_machines_running 3
new=$(cp_machines)
for mname in $old; do grep -qw "$mname" <<<"$new" && fail "$mname was not replaced"; done
read -r lo hi changes <<<"$(members_since "$t0")"
echo "etcd members during the surge rollout: min $lo, max $hi ($changes changes)"
[ "$lo" -ge 3 ] || fail "etcd went down to $lo members with a spare host"
[ "$hi" -eq 4 ] || fail "no member was added first (max $hi)"
[ "$(fake_calls member remove)" -ge 3 ] || fail "expected 3 etcd member removals"
assert_eq "$(anvilctl get kcp $KCP -o json | json 'd["status"]["updatedReplicas"]')" 3 "updatedReplicas"
echo "ok: scale-up-first rollout"

# ---- scale down first (maxSurge 0), although the spare host is there
sleep 1.1
old=$new
t0=$(date +%s.%N)
res_set kcp $KCP "d['spec']['rolloutStrategy']={'type': 'RollingUpdate', 'rollingUpdate': {'maxSurge': 0}}; d['spec']['rolloutAfter']='$(now_rfc3339)'"
timeout 300 "$CTL" rollout status kcp $KCP >"$WORK/status2.txt" || fail "rollout: $(cat "$WORK/status2.txt")"
anvil_wait 60 "3 machines Running" anvil_machines_running 3
new=$(cp_machines)
for mname in $old; do grep -qw "$mname" <<<"$new" && fail "$mname was not replaced"; done
read -r lo hi changes <<<"$(members_since "$t0")"
echo "etcd members during the scale-down-first rollout: min $lo, max $hi ($changes changes)"
[ "$lo" -eq 2 ] || fail "expected a member to leave first: min $lo"
[ "$hi" -eq 3 ] || fail "a member was added beyond 3 with maxSurge 0 (max $hi)"
# maxSurge 0 with fewer than 3 replicas is refused: it would remove the only member first.
res_set kcp $KCP "d['spec']['replicas']=1" 2>"$WORK/err.txt" && fail "maxSurge 0 with 1 replica was accepted"
grep -q "needs to be at least 3" "$WORK/err.txt" || fail "refusal: $(cat "$WORK/err.txt")"
echo PASS
