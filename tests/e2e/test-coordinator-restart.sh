#!/usr/bin/env bash
# A coordinator killed with SIGKILL and restarted keeps every applied object, and the agents
# reconnect and the cluster still comes up.
. "$(dirname "$0")/common.sh"
anvil_start_coordinator
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
dump() {
  for k in clusters anvilclusters kubeadmcontrolplanes machinedeployments kubeadmconfigtemplates anvilmachinetemplates; do
    anvilctl get "$k" -A -o json | json '[(i["kind"], i["metadata"]["name"], i["metadata"]["uid"], i["spec"]) for i in d["items"]]'
  done
}
before=$(dump)
anvil_crash_coordinator
# The killed coordinator left its socket file: anvilctl says so at once (not after --timeout).
[ -S "$ANVIL_SERVER" ] || fail "test setup: the killed coordinator's socket is gone"
t0=$(date +%s)
if anvilctl get machines >/dev/null 2>"$WORK/stale.err"; then fail "anvilctl succeeded without a coordinator"; fi
grep -q "nothing listens on $ANVIL_SERVER" "$WORK/stale.err" || fail "stale socket: $(cat "$WORK/stale.err")"
[ $(($(date +%s) - t0)) -lt 10 ] || fail "anvilctl waited for a coordinator that is gone"
anvil_start_coordinator
after=$(dump)
assert_eq "$after" "$before" "objects after SIGKILL + restart"
echo "objects survived the SIGKILL"

# And the system still works: agents enroll and the cluster becomes Ready.
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
anvil_start_agent cp-1 "$CP"
anvil_start_agent worker-1 "$W"
anvil_start_agent worker-2 "$W"
anvil_wait 120 "cluster Ready after restart" anvil_cluster_ready demo
anvil_wait 120 "3 machines Running" anvil_machines_running 3
# Kill it again mid-life; enrolled hosts and their keys survive.
hosts_before=$(anvilctl get hosts -o json | json 'sorted((h["metadata"]["name"], h["status"]["agentKey"]) for h in d["items"])')
anvil_crash_coordinator
anvil_start_coordinator
hosts_after=$(anvilctl get hosts -o json | json 'sorted((h["metadata"]["name"], h["status"]["agentKey"]) for h in d["items"])')
assert_eq "$hosts_after" "$hosts_before" "hosts after restart"
anvil_wait 60 "agents reconnected" bash -c "$CTL info -o json | grep -q '\"connected\": 3'"
echo PASS
