#!/usr/bin/env bash
# Bad manifests: anvilctl exits non-zero, the message names FILE:LINE:COLUMN and the field,
# and nothing in the store changes (a multi-document apply is all or nothing).
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
rev() { anvilctl info -o json | json 'd["revision"]'; }
snapshot() {
  for k in clusters machinedeployments kubeadmcontrolplanes anvilmachinetemplates; do
    anvilctl get "$k" -A -o json | json '[ (i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in d["items"]]'
  done
}
sleep 1 # let the controllers settle so the revision is stable
anvil_wait 20 "store quiet" bash -c "a=\$($CTL info -o json | grep -o '\"revision\": [0-9]*'); sleep 1; b=\$($CTL info -o json | grep -o '\"revision\": [0-9]*'); [ \"\$a\" = \"\$b\" ]"
before_rev=$(rev)
before=$(snapshot)

check() { # check NAME EXPECTED_REGEX... ; manifest on stdin
  local f=$WORK/$1.yaml; shift
  cat >"$f"
  set +e
  out=$(anvilctl apply -f "$f" 2>&1)
  rc=$?
  set -e
  [ $rc -ne 0 ] || fail "$f: apply succeeded: $out"
  for re in "$@"; do
    grep -qE -- "$re" <<<"$out" || fail "$f: output does not match /$re/: $out"
  done
  echo "ok: $(basename "$f"): $(echo "$out" | head -1)"
}

# wrong type (and a second document that alone would be fine: must not be applied)
check wrong-type "wrong-type.yaml:9:13: MachineDeployment/md-x: spec.replicas: expected integer, got string" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata:
  name: md-x
  namespace: default
spec:
  clusterName: demo
  template: {spec: {clusterName: demo, bootstrap: {dataSecretName: x}, infrastructureRef: {kind: AnvilMachine, name: x}}}
  replicas: "two"
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: would-be-created
YAML

check unknown-kind "unknown-kind.yaml:2:7: .*kind: unknown kind \"Clustr\"" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: Clustr
metadata:
  name: x
YAML

check missing-field "missing-field.yaml:6:3: MachineSet/ms-x: spec.clusterName: required field is missing" \
  "spec.selector: required field is missing" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineSet
metadata:
  name: ms-x
spec:
  replicas: 1
YAML

check bad-yaml "bad-yaml.yaml:[34]:[0-9]+: " <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: [unclosed
YAML

check unknown-field "unknown-field.yaml:7:3: KubeadmControlPlane/kcp-x: spec.replica: unknown field" <<'YAML'
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlane
metadata:
  name: kcp-x
spec:
  version: v1.30.2
  replica: 3
  machineTemplate: {infrastructureRef: {kind: AnvilMachineTemplate, name: x}}
  kubeadmConfigSpec: {}
YAML

# An immutable field change on a live object is refused too.
check immutable "spec.clusterName: field is immutable" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata:
  name: demo-md-0
  namespace: default
spec:
  clusterName: other
  replicas: 2
  template:
    spec:
      clusterName: other
      version: v1.30.2
      bootstrap: {configRef: {apiVersion: bootstrap.cluster.x-k8s.io/v1beta1, kind: KubeadmConfigTemplate, name: demo-md-0}}
      infrastructureRef: {apiVersion: infrastructure.anvil.dev/v1alpha1, kind: AnvilMachineTemplate, name: demo-md-0}
YAML

after_rev=$(rev)
after=$(snapshot)
assert_eq "$after_rev" "$before_rev" "store revision after bad applies"
assert_eq "$after" "$before" "objects after bad applies"
anvilctl get cluster would-be-created >/dev/null 2>&1 && fail "a document of a failed apply was stored"
echo PASS
