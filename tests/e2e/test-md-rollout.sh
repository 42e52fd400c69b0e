#!/usr/bin/env bash
# MachineDeployment rollouts with Cluster API semantics on real agents (1 control plane host,
# 4 worker hosts for 3 replicas: one spare for the surge):
#  - RollingUpdate maxSurge 1 / maxUnavailable 0 after a bootstrap config change: every
#    machine is replaced, and the schedulable Ready workers never drop below 3 — checked at
#    every change the fake API server saw (its history) and by sampling the deployment's
#    availableReplicas throughout; `anvilctl rollout status` waits for it and `rollout
#    history` shows the revisions; revisionHistoryLimit 0 prunes the old MachineSet;
#  - OnDelete: a template change replaces nothing until the operator deletes a machine, then
#    exactly that one;
#  - spec.paused holds a rollout; spec.rolloutAfter replaces machines made before it.
. "$(dirname "$0")/common.sh"
export ANVIL_HEARTBEAT=1s
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
for i in 1 2 3 4; do anvil_start_agent worker-$i "$W"; done
anvil_wait 30 "5 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 5 ]"
sed 's/replicas: 2/replicas: 3/' "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "4 machines Running" anvil_machines_running 4
MD=demo-md-0
EP=10.200.0.10:6443
FAKE="/usr/bin/python3 $SRC/tests/fakes/fakek8s.py"

# A second bootstrap configuration for the workers: changing the reference is a new revision.
cat >"$WORK/tmpl-b.yaml" <<'YAML'
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata:
  name: demo-md-b
  namespace: default
spec:
  template:
    spec:
      joinConfiguration:
        nodeRegistration:
          criSocket: unix:///var/run/containerd/containerd.sock
          kubeletExtraArgs:
            node-labels: "node-role.anvil.dev/worker=,anvil.dev/revision=b"
YAML
anvilctl apply -f "$WORK/tmpl-b.yaml" >/dev/null

# ---- RollingUpdate, maxSurge 1, maxUnavailable 0
old=$(md_machines $MD)
t0=$(date +%s.%N)
(
  while :; do
    anvilctl get md $MD -o json 2>/dev/null | json 'd["status"].get("availableReplicas", 0)' >>"$WORK/available.txt" || true
    sleep 0.1
  done
) &
sampler=$!
md_set $MD 'd["spec"]["template"]["spec"]["bootstrap"]["configRef"]["name"]="demo-md-b"'
timeout 240 "$CTL" rollout status md $MD >"$WORK/status.txt" || fail "rollout status did not finish: $(cat "$WORK/status.txt")"
kill $sampler 2>/dev/null || true
wait $sampler 2>/dev/null || true
tail -1 "$WORK/status.txt" | grep -q 'machinedeployment "demo-md-0" successfully rolled out' ||
  fail "rollout status: $(cat "$WORK/status.txt")"
grep -q "new replicas have been updated" "$WORK/status.txt" || fail "rollout status showed no progress"
new=$(md_machines $MD)
[ "$(wc -w <<<"$new")" -eq 3 ] || fail "expected 3 machines, got: $new"
for mname in $new; do grep -qw "$mname" <<<"$old" && fail "machine $mname was not replaced"; done
# Exact: at every change of the fake cluster, at least 3 workers were Ready and schedulable.
$FAKE history $EP | /usr/bin/python3 -c '
import json, sys
t0 = float(sys.argv[1])
hist = [h for h in json.load(sys.stdin) if h["time"] >= t0]
counts = [len([n for n in h["ready"] if not n.startswith("cp-") and n not in h["cordoned"]]) for h in hist]
assert len(hist) > 3, hist
assert min(counts) >= 3, "schedulable Ready workers dropped to %d: %s" % (min(counts), counts)
assert max(counts) == 4, "the surge never happened: %s" % counts
print("schedulable Ready workers during the rollout: min %d, max %d, %d changes" % (min(counts), max(counts), len(counts)))
' "$t0" || fail "availability during the rollout"
# Sampled: the deployment never reported fewer than 3 available machines.
samples=$(wc -l <"$WORK/available.txt")
minimum=$(sort -n "$WORK/available.txt" | head -1)
[ "$samples" -ge 3 ] || fail "only $samples samples"
[ "$minimum" -ge 3 ] || fail "availableReplicas went down to $minimum"
echo "ok: rolling update, $samples samples of availableReplicas, minimum $minimum"
# Revisions.
anvilctl rollout history md $MD >"$WORK/history.txt"
cat "$WORK/history.txt"
[ "$(grep -c '^[0-9]' "$WORK/history.txt")" -eq 2 ] || fail "expected 2 revisions"
grep -E '^2 .*\*$' "$WORK/history.txt" >/dev/null || fail "revision 2 is not the current one"
# revisionHistoryLimit 0: the old MachineSet goes.
md_set $MD 'd["spec"]["revisionHistoryLimit"]=0'
anvil_wait 30 "old MachineSet pruned" bash -c "[ \$($CTL get ms -l cluster.x-k8s.io/deployment-name=$MD -o name | wc -l) -eq 1 ]"
echo "ok: revisionHistoryLimit 0 pruned the old MachineSet"

# ---- OnDelete: nothing moves until a machine is deleted, then only that one.
before=$(md_machines $MD)
md_set $MD 'd["spec"]["strategy"]={"type": "OnDelete"}; d["spec"]["template"]["spec"]["bootstrap"]["configRef"]["name"]="demo-md-0"'
anvil_wait 30 "a new MachineSet" bash -c "[ \$($CTL get ms -l cluster.x-k8s.io/deployment-name=$MD -o name | wc -l) -eq 2 ]"
sleep 3
assert_eq "$(md_machines $MD)" "$before" "OnDelete replaced machines by itself"
assert_eq "$(anvilctl get md $MD -o json | json 'd["status"]["updatedReplicas"]')" 0 "updatedReplicas before any deletion"
victim=$(awk '{print $1}' <<<"$before")
anvilctl delete machine "$victim" >/dev/null
anvil_wait 120 "the deleted machine replaced" bash -c "
  ! $CTL get machine $victim >/dev/null 2>&1 &&
  [ \"\$($CTL get md $MD -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"].get(\"updatedReplicas\", 0))')\" = 1 ]"
anvil_wait 60 "4 machines Running" anvil_machines_running 4
after=$(md_machines $MD)
for mname in $before; do
  [ "$mname" = "$victim" ] && continue
  grep -qw "$mname" <<<"$after" || fail "OnDelete replaced $mname, which nobody deleted"
done
timeout 3 "$CTL" rollout status md $MD >"$WORK/status2.txt" || true
grep -q "1 out of 3 new replicas have been updated" "$WORK/status2.txt" || fail "rollout status: $(cat "$WORK/status2.txt")"
echo "ok: OnDelete replaced only $victim"
for mname in $before; do
  [ "$mname" = "$victim" ] || anvilctl delete machine "$mname" >/dev/null
done
timeout 180 "$CTL" rollout status md $MD >/dev/null || fail "OnDelete rollout did not finish"
anvil_wait 60 "4 machines Running" anvil_machines_running 4
for mname in $before; do grep -qw "$mname" <<<"$(md_machines $MD)" && fail "$mname still there"; done
echo "ok: OnDelete finished"

# ---- paused, then rolloutAfter: nothing moves while paused; unpaused, the machines made
# before rolloutAfter are replaced although the template did not change.
before=$(md_machines $MD)
sets() { anvilctl get ms -l cluster.x-k8s.io/deployment-name=$MD -o name | wc -l; }
n_sets=$(sets)
sleep 1.1
md_set $MD "d['spec']['paused']=True; d['spec']['strategy']={'type': 'RollingUpdate'}; d['spec']['rolloutAfter']='$(now_rfc3339)'"
sleep 3
assert_eq "$(sets)" "$n_sets" "MachineSets while paused"
assert_eq "$(md_machines $MD)" "$before" "machines while paused"
timeout 3 "$CTL" rollout status md $MD 2>"$WORK/paused.txt" && fail "rollout status succeeded while paused"
grep -q "is paused" "$WORK/paused.txt" || fail "rollout status while paused: $(cat "$WORK/paused.txt")"
md_set $MD "d['spec']['paused']=False"
timeout 180 "$CTL" rollout status md $MD >/dev/null || fail "the rolloutAfter rollout did not finish"
anvil_wait 60 "4 machines Running" anvil_machines_running 4
for mname in $before; do grep -qw "$mname" <<<"$(md_machines $MD)" && fail "rolloutAfter kept $mname"; done
echo "ok: paused held the rollout; rolloutAfter replaced every machine"
echo PASS
