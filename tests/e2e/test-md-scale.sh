#!/usr/bin/env bash
# MachineDeployment scaling with Cluster API semantics on 8 real agents: scale 2 -> 5 -> 2
# with each delete policy and with the delete-machine annotation, asserting which machines
# went; drain and node deletion observed through the fake kubectl; released hosts Available
# and reused by the next scale-up; a coordinator SIGKILL in the middle of a scale-down
# converges to the same end state.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
for i in 1 2 3 4 5 6 7; do anvil_start_agent worker-$i "$W"; done
anvil_wait 30 "8 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 8 ]"
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
anvil_wait 120 "3 machines Running" anvil_machines_running 3
MD=demo-md-0

scale_to() { anvilctl scale md $MD --replicas "$1" >/dev/null; anvil_wait 120 "$(( $1 + 1 )) machines Running" anvil_machines_running $(( $1 + 1 )); }

# --- Newest: the three machines added last are the ones that go.
sleep 1.1 # creation timestamps have second resolution
old=$(md_machines $MD)
scale_to 5
new=$(comm -13 <(tr ' ' '\n' <<<"$old") <(tr ' ' '\n' <<<"$(md_machines $MD)") | xargs)
md_set $MD 'd["spec"]["strategy"]["rollingUpdate"]["deletePolicy"]="Newest"; d["spec"]["replicas"]=2'
anvil_wait 120 "scale down to 2 (Newest)" anvil_machines_running 3
assert_eq "$(md_machines $MD)" "$old" "Newest kept the two oldest machines"
echo "ok: Newest removed: $new"
# drained and deleted nodes, through a control plane host's kubectl
for mname in $new; do :; done
drains=$(fake_calls drain); deletes=$(fake_calls delete node)
[ "$drains" -ge 3 ] || fail "expected >= 3 drains, saw $drains"
[ "$deletes" -ge 3 ] || fail "expected >= 3 node deletions, saw $deletes"
anvil_wait 30 "5 hosts Available again" bash -c "[ \$($CTL get hosts -o json | grep -c '\"phase\": \"Available\"') -eq 5 ]"

# --- Oldest: scale up (reusing the released hosts), then the oldest go.
sleep 1.1
before=$(md_machines $MD)
scale_to 5
[ "$(anvilctl get hosts -o json | grep -c '"phase": "Available"')" -eq 2 ] || fail "released hosts were not reused"
md_set $MD 'd["spec"]["strategy"]["rollingUpdate"]["deletePolicy"]="Oldest"; d["spec"]["replicas"]=2'
anvil_wait 120 "scale down to 2 (Oldest)" anvil_machines_running 3
for mname in $before; do
  grep -qw "$mname" <<<"$(md_machines $MD)" && fail "Oldest kept old machine $mname"
done
echo "ok: Oldest removed $before"

# --- The delete-machine annotation wins over the policy.
scale_to 4
victim=$(md_machines $MD | awk '{print $2}')
anvilctl annotate machine "$victim" cluster.x-k8s.io/delete-machine=yes >/dev/null
md_set $MD 'd["spec"]["strategy"]["rollingUpdate"]["deletePolicy"]="Newest"; d["spec"]["replicas"]=3'
anvil_wait 120 "scale down to 3" anvil_machines_running 4
grep -qw "$victim" <<<"$(md_machines $MD)" && fail "annotated machine $victim survived"
echo "ok: annotated $victim went first"

# --- Random, with a coordinator SIGKILL in the middle of the scale-down.
md_set $MD 'd["spec"]["strategy"]["rollingUpdate"]["deletePolicy"]="Random"; d["spec"]["replicas"]=1'
sleep 0.3
anvil_crash_coordinator
anvil_start_coordinator
anvil_wait 120 "scale down to 1 after a coordinator crash" anvil_machines_running 2
anvil_wait 60 "6 hosts Available" bash -c "[ \$($CTL get hosts -o json | grep -c '\"phase\": \"Available\"') -eq 6 ]"
# Nothing double-claimed: every claimed host is claimed by a live machine, once.
anvilctl get hosts -o json | /usr/bin/python3 -c '
import json,sys
c=[h["spec"]["consumerRef"]["name"] for h in json.load(sys.stdin)["items"] if h["spec"].get("consumerRef")]
assert len(c)==len(set(c))==2, c' || fail "claims after the crash"
echo PASS
