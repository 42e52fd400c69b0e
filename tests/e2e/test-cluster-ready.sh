#!/usr/bin/env bash
# The walking skeleton, end to end: a coordinator and three real agents (1 control plane,
# 2 workers, fake kubeadm) bring examples/cluster.yaml to Ready.
. "$(dirname "$0")/common.sh"

anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker --uses 2)
anvil_start_agent cp-1 "$CP"
anvil_start_agent worker-1 "$W"
anvil_start_agent worker-2 "$W"
anvil_wait 30 "3 hosts enrolled" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 3 ]"

out=$(anvilctl apply -f "$SRC/examples/cluster.yaml" --wait --timeout 120s) || fail "apply --wait: $out"
echo "$out"
grep -q "machinedeployment/demo-md-0: 0 of 2 machines ready" <<<"$out" || fail "apply --wait showed no progress"
grep -q "all applied objects are ready" <<<"$out" || fail "apply --wait did not finish"
anvil_wait 120 "cluster demo Ready" anvil_cluster_ready demo
anvil_wait 120 "3 machines Running" anvil_machines_running 3

# 3 Machines Running, distinct anvil:// provider IDs, each the product UUID of its host.
anvilctl get machines -o json >"$WORK/machines.json"
anvilctl get hosts -o json >"$WORK/hosts.json"
/usr/bin/python3 - "$WORK" <<'PY' || fail "machines/hosts do not match"
import json, sys
w = sys.argv[1]
machines = json.load(open(w + "/machines.json"))["items"]
hosts = {h["metadata"]["name"]: h for h in json.load(open(w + "/hosts.json"))["items"]}
assert len(machines) == 3, f"{len(machines)} machines"
pids = set()
for m in machines:
    assert m["status"]["phase"] == "Running", (m["metadata"]["name"], m["status"]["phase"])
    pid = m["spec"]["providerID"]
    claimed = [h for h in hosts.values() if h["spec"].get("consumerRef", {}).get("name") == m["metadata"]["name"]]
    assert len(claimed) == 1, f"{m['metadata']['name']} claimed by {len(claimed)} hosts"
    h = claimed[0]
    uuid = open(f"{w}/agents/{h['metadata']['name']}/uuid").read().strip()
    assert pid == "anvil://" + uuid, (pid, uuid)
    assert h["status"]["facts"]["productUUID"] == uuid
    assert m["status"]["nodeRef"]["name"] == h["metadata"]["name"]
    pids.add(pid)
assert len(pids) == 3, pids
cp = [m for m in machines if "cluster.x-k8s.io/control-plane" in m["metadata"].get("labels", {})]
assert len(cp) == 1 and hosts[cp[0]["status"]["nodeRef"]["name"]]["metadata"]["labels"]["role"] == "control-plane"
print("machines OK:", sorted(pids))
PY

# The fake kubeadm ran init exactly once and join twice.
/usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" <<'PY' || fail "kubeadm invocations"
import json, sys
calls = [json.loads(l) for l in open(sys.argv[1])]
kubeadm = [c for c in calls if c["tool"] == "kubeadm"]
inits = [c for c in kubeadm if c["argv"][:1] == ["init"]]
joins = [c for c in kubeadm if c["argv"][:1] == ["join"]]
assert len(inits) == 1, f"{len(inits)} inits"
assert len(joins) == 2, f"{len(joins)} joins"
assert all(c["exit"] == 0 for c in inits + joins), [c["exit"] for c in inits + joins]
assert all("--config" in c["argv"] and "--rootfs" in c["argv"] for c in inits + joins)
print("kubeadm OK: 1 init, 2 joins")
PY

# Cluster conditions and phase.
anvilctl get cluster demo -o json >"$WORK/cluster.json"
/usr/bin/python3 - "$WORK/cluster.json" <<'PY' || fail "cluster status"
import json, sys
c = json.load(open(sys.argv[1]))
conds = {x["type"]: x["status"] for x in c["status"]["conditions"]}
assert c["status"]["phase"] == "Provisioned", c["status"]["phase"]
assert conds.get("ControlPlaneInitialized") == "True", conds
assert conds.get("Ready") == "True", conds
print("cluster OK:", conds)
PY
anvilctl describe cluster demo | grep -q "Machine/" || fail "describe shows no machines"

# Several kinds at once, and the categories.
anvilctl get md,ms >"$WORK/mdms.txt"
[ "$(grep -c '^NAME ' "$WORK/mdms.txt")" = 2 ] || fail "get md,ms: two tables expected: $(cat "$WORK/mdms.txt")"
grep -q '^machinedeployment.cluster.x-k8s.io/demo-md-0 ' "$WORK/mdms.txt" || fail "get md,ms: md row"
grep -q '^machineset.cluster.x-k8s.io/demo-md-0-' "$WORK/mdms.txt" || fail "get md,ms: ms row"
anvilctl get all -o name >"$WORK/all.txt"
for want in cluster.cluster.x-k8s.io/demo host.infrastructure.anvil.dev/cp-1 \
            kubeadmcontrolplane.controlplane.cluster.x-k8s.io/demo-control-plane; do
  grep -qx "$want" "$WORK/all.txt" || fail "get all: no $want"
done
[ "$(anvilctl get cluster-api -o json | json 'len([i for i in d["items"] if i["kind"] == "Machine"])')" = 3 ] ||
  fail "get cluster-api: 3 machines expected"
anvilctl get ms,md demo-md-0 -o name | grep -qx machinedeployment.cluster.x-k8s.io/demo-md-0 ||
  fail "get ms,md NAME"
if anvilctl get md,ms nothere 2>"$WORK/err.txt"; then fail "get md,ms of a missing name succeeded"; fi
grep -q 'NotFound' "$WORK/err.txt" || fail "get md,ms nothere: $(cat "$WORK/err.txt")"
echo "get: several kinds, all, cluster-api"

# A claimed host is not forgotten by accident: host delete is refused, naming its machine.
if anvilctl host delete worker-1 >"$WORK/hostdel.out" 2>&1; then fail "deleting a claimed host succeeded"; fi
grep -q 'host "worker-1" is claimed by Machine default/demo-md-0-.*; delete its Machine first' \
  "$WORK/hostdel.out" || fail "host delete refusal: $(cat "$WORK/hostdel.out")"
if anvilctl delete host worker-1 >/dev/null 2>&1; then fail "delete host of a claimed host succeeded"; fi
anvilctl get host worker-1 -o name >/dev/null || fail "the refused delete removed the host"
# --force: for a host that is gone for good.
anvilctl host delete worker-1 --force | grep -q 'deleted' || fail "host delete --force"
if anvilctl get host worker-1 -o name >/dev/null 2>&1; then fail "host delete --force kept the host"; fi
echo "claimed host: delete refused, --force deletes"
echo PASS
