#!/usr/bin/env bash
# A standalone Machine (no MachineSet, no control plane owns it), applied with its
# KubeadmConfig and AnvilMachine in one file, as Cluster API users write one:
#  - the Machine makes itself the controller of both (ownerReference, controller: true), as
#    Cluster API's Machine controller does, and they act for it;
#  - it waits, saying why, for its Cluster and then for the control plane to be initialised;
#  - it provisions on a free matching host and runs;
#  - deleting it resets the host and returns it to the pool, and its KubeadmConfig,
#    AnvilMachine and Secrets go with it.
. "$(dirname "$0")/common.sh"
export ANVIL_HEARTBEAT=1s
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent worker-1 "$W"   # the control plane host comes later
anvil_wait 30 "1 host" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 1 ]"

cat >"$WORK/solo.yaml" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: Machine
metadata:
  name: solo
  namespace: default
spec:
  clusterName: demo
  version: v1.30.2
  bootstrap:
    configRef:
      apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
      kind: KubeadmConfig
      name: solo
  infrastructureRef:
    apiVersion: infrastructure.anvil.dev/v1alpha1
    kind: AnvilMachine
    name: solo
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfig
metadata:
  name: solo
  namespace: default
spec:
  joinConfiguration:
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "anvil.dev/solo="
---
apiVersion: infrastructure.anvil.dev/v1alpha1
kind: AnvilMachine
metadata:
  name: solo
  namespace: default
spec:
  hostSelector:
    matchLabels:
      role: worker
YAML
anvilctl apply -f "$WORK/solo.yaml" >/dev/null

controller_of() { # controller_of KIND NAME: "Kind/name" of its controller owner reference
  anvilctl get "$1" "$2" -o json |
    json '" ".join(r["kind"] + "/" + r["name"] for r in d["metadata"].get("ownerReferences", []) if r.get("controller"))'
}
reason() { # reason KIND NAME CONDITION
  anvilctl get "$1" "$2" -o json |
    json "next((c.get('reason','') for c in d['status'].get('conditions', []) if c['type'] == '$3'), '')"
}
reason_is() { [ "$(reason "$1" "$2" "$3")" = "$4" ]; }
controlled() { [ "$(controller_of "$1" "$2")" = "Machine/solo" ]; }
anvil_wait 20 "the KubeadmConfig controlled by its Machine" controlled kubeadmconfig solo
anvil_wait 20 "the AnvilMachine controlled by its Machine" controlled anvilmachine solo
assert_eq "$(anvilctl get kubeadmconfig solo -o json | json 'd["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"]')" demo "cluster label"
# No Cluster yet: it says so.
anvil_wait 20 "solo waiting for its Cluster" reason_is machine solo BootstrapReady WaitingForCluster
assert_eq "$(anvilctl get machine solo -o json | json 'd["status"]["phase"]')" Pending "phase without a cluster"
echo "ok: the standalone Machine controls its KubeadmConfig and AnvilMachine, and waits for its Cluster"

# The cluster, without workers; no control plane host yet: the machine waits for the
# control plane, with the reason.
sed 's/^  replicas: 2$/  replicas: 0/' "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 30 "solo waiting for the control plane" reason_is machine solo BootstrapReady WaitingForControlPlaneAvailable
msg=$(anvilctl describe machine solo)
grep -q "WaitingForControlPlaneAvailable" <<<"$msg" || fail "describe does not say why: $msg"
echo "ok: it waits for the control plane to be initialised, and says so"

anvil_start_agent cp-1 "$CP"
anvil_wait 120 "2 machines Running" anvil_machines_running 2
host=$(machine_host solo)
assert_eq "$host" worker-1 "host of the standalone machine"
node=$(anvilctl get machine solo -o json | json 'd["status"]["nodeRef"]["name"]')
/usr/bin/python3 "$SRC/tests/fakes/fakek8s.py" nodes 10.200.0.10:6443 | grep -q "\"$node\": {\"kubeletVersion\": \"v1.30.2\", \"ready\": true" ||
  fail "node $node not Ready in the fake cluster"
echo "ok: the standalone machine runs on $host"

# Deletion: the host is reset and back in the pool; nothing of the machine is left.
anvilctl delete machine solo --wait --timeout 60s >/dev/null || fail "delete machine solo"
anvil_wait 60 "$host Available" host_is "$host" Available
[ "$(fake_calls reset -f --rootfs "$WORK/agents/$host/root")" -ge 1 ] || fail "$host was not reset"
for k in kubeadmconfig anvilmachine; do
  anvilctl get $k solo >/dev/null 2>&1 && fail "$k solo left after the machine's deletion"
done
anvil_wait 20 "its Secrets gone" bash -c "! $CTL get secrets -o name | grep -q '^secret/solo'"
/usr/bin/python3 "$SRC/tests/fakes/fakek8s.py" nodes 10.200.0.10:6443 | grep -q "\"$node\"" && fail "node $node not deleted"
echo PASS
