#!/usr/bin/env bash
# A host partitioned (its agent stopped) while its machine is deleted: the machine goes away
# after nodeDeletionTimeout, the host is not handed out again until it returns and has
# reset; then it is reused. The same for an agent that died (connection closed) right before
# its machine's deletion. Finally deleting the cluster resets every host and leaves no
# object behind — its templates included (the Cluster owns them, as in Cluster API), except
# those a second cluster still uses, which go with that one.
. "$(dirname "$0")/common.sh"
ANVIL_GRACE=4s
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
for i in 1 2 3; do anvil_start_agent worker-$i "$W"; done
anvil_wait 30 "4 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 4 ]"
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
md_set demo-md-0 'd["spec"]["template"]["spec"]["nodeDeletionTimeout"]="3s"'
anvil_wait 120 "3 machines Running" anvil_machines_running 3

victim=$(md_machines demo-md-0 | awk '{print $1}')
vhost=$(machine_host "$victim")
kill -STOP "$(anvil_agent_pid "$vhost")"   # a partition: the process is there, silent
anvil_wait 30 "$vhost Unreachable" host_is "$vhost" Unreachable
anvilctl annotate machine "$victim" cluster.x-k8s.io/delete-machine=yes >/dev/null
anvilctl scale md demo-md-0 --replicas 1 >/dev/null
anvil_wait 60 "the victim machine gone" machine_gone "$victim"
spec=$(anvilctl get host "$vhost" -o json | json 'd["spec"]')
grep -q "'resetRequired': True" <<<"$spec" || fail "$vhost released without resetRequired: $spec"
# While it is away and unreset, it is not handed out: a scale-up takes the spare host.
anvilctl scale md demo-md-0 --replicas 2 >/dev/null
anvil_wait 60 "3 machines Running again" anvil_machines_running 3
anvilctl get host "$vhost" -o json | json 'd["spec"].get("consumerRef")' | grep -q None || fail "$vhost was claimed before its reset"
resets_before=$(fake_calls reset -f)

kill -CONT "$(anvil_agent_pid "$vhost")"
anvil_wait 60 "$vhost reset and Available" host_is "$vhost" Available
[ "$(fake_calls reset -f)" -gt "$resets_before" ] || fail "$vhost came back without a kubeadm reset"
anvilctl scale md demo-md-0 --replicas 3 >/dev/null
anvil_wait 60 "4 machines Running, reusing $vhost" anvil_machines_running 4
anvilctl get host "$vhost" -o json | json 'd["spec"]["consumerRef"]["name"]' >/dev/null || fail "$vhost not reused"
echo "ok: partitioned host reset on return, then reused"

# An agent that dies (its TCP connection closed) just before its machine is deleted: the reset
# the coordinator sends finds no route; the host is still marked Unreachable after the grace
# and the machine goes after nodeDeletionTimeout, as for a silent one.
victim=$(md_machines demo-md-0 | awk 'NR == 1 {print $1}')
vhost=$(machine_host "$victim")
kill -KILL "$(anvil_agent_pid "$vhost")"
anvilctl delete machine "$victim" >/dev/null
anvil_wait 30 "$vhost Unreachable after its agent died" host_is "$vhost" Unreachable
anvil_wait 60 "the dead host's machine gone" machine_gone "$victim"
anvilctl get host "$vhost" -o json | json 'd["spec"].get("resetRequired")' | grep -q True ||
  fail "$vhost released without resetRequired"
resets_before=$(fake_calls reset -f)
back_before=$(grep -c "Host $vhost reset after it came back; back in the pool." "$WORK/coordinator.log" || true)
anvil_restart_agent "$vhost"
# (Back in the pool, it may be claimed at once by the deleted machine's replacement.)
anvil_wait 60 "$vhost reset after its agent restarted" bash -c \
  "[ \$(grep -c 'Host $vhost reset after it came back; back in the pool.' '$WORK/coordinator.log') -gt $back_before ]"
[ "$(fake_calls reset -f)" -gt "$resets_before" ] || fail "$vhost came back without a kubeadm reset"
anvil_wait 60 "4 machines Running again" anvil_machines_running 4
echo "ok: a dead agent's machine deleted; its host reset when the agent came back"

# A second cluster whose (empty) MachineDeployment uses demo's worker templates too.
cat >"$WORK/other.yaml" <<'YAML'
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata:
  name: other
  namespace: default
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata:
  name: other-md-0
  namespace: default
spec:
  clusterName: other
  replicas: 0
  selector:
    matchLabels: {}
  template:
    spec:
      clusterName: other
      version: v1.30.2
      bootstrap:
        configRef:
          apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
          kind: KubeadmConfigTemplate
          name: demo-md-0
      infrastructureRef:
        apiVersion: infrastructure.anvil.dev/v1alpha1
        kind: AnvilMachineTemplate
        name: demo-md-0
YAML
anvilctl apply -f "$WORK/other.yaml" >/dev/null
owners() { # owners KIND NAME: its owner references, "Kind/name" sorted
  anvilctl get "$1" "$2" -o json |
    json '" ".join(sorted(r["kind"] + "/" + r["name"] + ("(controller)" if r.get("controller") else "") for r in d["metadata"].get("ownerReferences", [])))'
}
owners_are() { [ "$(owners "$1" "$2")" = "$3" ]; }
anvil_wait 30 "the shared templates owned by both clusters" owners_are kubeadmconfigtemplate demo-md-0 "Cluster/demo Cluster/other"
assert_eq "$(owners anvilmachinetemplate demo-md-0)" "Cluster/demo Cluster/other" "owners of the shared AnvilMachineTemplate"
assert_eq "$(owners anvilmachinetemplate demo-control-plane)" "Cluster/demo" "owners of the control plane's template"

# Cluster deletion: ordered teardown, every host Available, nothing left.
out=$(anvilctl delete cluster demo --wait --timeout 120s) || fail "delete --wait: $out"
grep -q "deleting: waiting for worker machines" <<<"$out" || fail "delete --wait showed no progress: $out"
anvil_wait 120 "every host Available" n_hosts_in_phase 4 Available
anvil_wait 60 "cluster gone" bash -c "! $CTL get cluster demo >/dev/null 2>&1"
anvil_wait 30 "the control plane's template gone" bash -c "! $CTL get anvilmachinetemplate demo-control-plane >/dev/null 2>&1"
for k in machines kubeadmcontrolplanes kubeadmconfigs anvilmachines anvilclusters; do
  n=$(anvilctl get "$k" -A -o json | json 'len(d["items"])')
  assert_eq "$n" 0 "$k left after cluster deletion"
done
for k in machinesets machinedeployments; do
  n=$(anvilctl get "$k" -A -o json | json 'len([o for o in d["items"] if o["spec"]["clusterName"] == "demo"])')
  assert_eq "$n" 0 "$k of demo left after cluster deletion"
done
# Its templates go with it, but the ones the other cluster uses stay, owned by it alone.
anvil_wait 30 "the shared templates owned by the other cluster only" owners_are kubeadmconfigtemplate demo-md-0 "Cluster/other"
assert_eq "$(owners anvilmachinetemplate demo-md-0)" "Cluster/other" "owners of the shared AnvilMachineTemplate"
echo "ok: demo deleted; the templates it shared with cluster other stay"

anvilctl delete cluster other --wait --timeout 60s >/dev/null || fail "delete cluster other"
anvil_wait 30 "the shared templates gone with the last cluster" bash -c \
  "[ \$($CTL get kubeadmconfigtemplates,anvilmachinetemplates -A -o name | wc -l) -eq 0 ]"
for k in machines machinesets machinedeployments kubeadmcontrolplanes kubeadmconfigs anvilmachines anvilclusters \
         kubeadmconfigtemplates anvilmachinetemplates secrets clusters; do
  n=$(anvilctl get "$k" -A -o json | json 'len(d["items"])')
  assert_eq "$n" 0 "$k left after cluster deletion"
done
echo PASS
