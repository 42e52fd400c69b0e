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
# A watch started before the crash resumes once the coordinator is back (kubectl's reflector
# does the same), instead of waiting out its call for an answer lost with the old process.
"$CTL" get md demo-md-0 -w --watch-only -o json >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCH=$!
sleep 0.5
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
anvilctl label md demo-md-0 tick=after-restart >/dev/null
anvil_wait 10 "the watch shows a change made after the restart" grep -q '"tick": "after-restart"' "$WORK/watch.out"
kill -0 "$WATCH" 2>/dev/null || fail "the watch ended: $(cat "$WORK/watch.err")"
kill "$WATCH"; wait "$WATCH" 2>/dev/null || true
echo "a watch resumed across the restart"

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

# A coordinator that does not come back ends a watch after --timeout, saying so.
"$CTL" --timeout 2s get hosts -w >/dev/null 2>"$WORK/watch2.err" &
WATCH=$!
sleep 0.5
anvil_crash_coordinator
watch_done() { ! kill -0 "$WATCH" 2>/dev/null; }
anvil_wait 15 "the watch ended after --timeout" watch_done
if wait "$WATCH"; then fail "a watch that lost its coordinator exited 0"; fi
grep -q "the watch ended: the coordinator at .* went away and did not come back within 2s" "$WORK/watch2.err" ||
  fail "watch end message: $(cat "$WORK/watch2.err")"
anvil_start_coordinator
echo PASS
