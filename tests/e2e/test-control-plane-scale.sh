#!/usr/bin/env bash
# KubeadmControlPlane 1 -> 3 -> 1: control plane machines join one at a time, and on the way
# down each departing member is removed from etcd (through another control plane host)
# before its host is reset, so etcd never loses quorum. Hosts come back Available.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
for i in 1 2 3; do anvil_start_agent cp-$i "$CP"; done
anvil_start_agent worker-1 "$W"
anvil_start_agent worker-2 "$W"
anvil_wait 30 "5 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 5 ]"
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
anvil_wait 120 "3 machines Running" anvil_machines_running 3

etcd_members() {
  /usr/bin/python3 "$SRC/tests/fakes/fakek8s.py" dump | /usr/bin/python3 -c '
import json,sys
d=json.load(sys.stdin)
cl=list(d["clusters"].values()) if isinstance(d.get("clusters"),dict) else d["clusters"]
print(len(cl[0]["etcdMembers"]))'
}
assert_eq "$(etcd_members)" 1 "etcd members at 1 replica"

anvilctl scale kcp demo-control-plane --replicas 3
anvil_wait 180 "5 machines Running" anvil_machines_running 5
assert_eq "$(etcd_members)" 3 "etcd members at 3 replicas"
# Control plane joins never overlapped: each started after the previous finished.
/usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" <<'PY' || fail "control plane joins overlapped"
import json, sys, datetime
calls = [json.loads(l) for l in open(sys.argv[1])]
joins = []
for c in calls:
    if c["tool"] != "kubeadm" or c["argv"][:1] != ["join"]:
        continue
    cfg = open(c["rootfs"] + "/run/kubeadm/kubeadm-join-config.yaml").read()
    if "controlPlane" in cfg:
        t = datetime.datetime.fromisoformat(c["time"].replace("Z", "+00:00")).timestamp()
        joins.append((t, c["duration"]))
assert len(joins) == 2, joins
joins.sort()
assert joins[1][0] >= joins[0][0] + joins[0][1] - 1, joins
print("control plane joins:", joins)
PY

anvilctl scale kcp demo-control-plane --replicas 1
anvil_wait 180 "3 machines Running" anvil_machines_running 3
assert_eq "$(etcd_members)" 1 "etcd members back at 1 replica"
/usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" <<'PY' || fail "etcd member removal"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
removes = [c for c in calls if c["tool"] == "kubectl" and "member" in c["argv"] and "remove" in c["argv"]]
resets = [c for c in calls if c["tool"] == "kubeadm" and c["argv"][:1] == ["reset"]]
assert len(removes) == 2, f"{len(removes)} member removals"
assert len(resets) == 2, f"{len(resets)} resets"
# each removal happened before the reset of a departing host
assert all(any(r["time"] >= m["time"] for r in resets) for m in removes)
print("etcd removals:", len(removes), "resets:", len(resets))
PY
# The two departing control plane hosts are back in the pool.
anvil_wait 30 "2 Available hosts" bash -c "[ \$($CTL get hosts -o json | grep -c '\"phase\": \"Available\"') -eq 2 ]"
echo PASS
