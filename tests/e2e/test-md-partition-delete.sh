#!/usr/bin/env bash
# A host partitioned (its agent stopped) while its machine is deleted: the machine goes away
# after nodeDeletionTimeout, the host is not handed out again until it returns and has
# reset; then it is reused. The same for an agent that died (connection closed) right before
# its machine's deletion. Finally deleting the cluster resets every host and leaves no
# object behind.
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

# Cluster deletion: ordered teardown, every host Available, nothing left.
out=$(anvilctl delete cluster demo --wait --timeout 120s) || fail "delete --wait: $out"
grep -q "deleting: waiting for worker machines" <<<"$out" || fail "delete --wait showed no progress: $out"
anvil_wait 120 "every host Available" n_hosts_in_phase 4 Available
anvil_wait 60 "cluster gone" bash -c "! $CTL get cluster demo >/dev/null 2>&1"
for k in machines machinesets machinedeployments kubeadmcontrolplanes kubeadmconfigs anvilmachines anvilclusters secrets; do
  n=$(anvilctl get "$k" -A -o json | json 'len(d["items"])')
  assert_eq "$n" 0 "$k left after cluster deletion"
done
echo PASS
