#!/usr/bin/env bash
# Delivery converges whatever the coordinator does:
#   desired-sent:Provision   the coordinator dies right after handing the Provision
#                            generation to libzmq (it may or may not have left)
#   ack-received:Provision   it dies when the ACK of that generation arrives, before
#                            recording it: after the restart it sends the generation again
#   ANVIL_TEST_DUPLICATE_DESIRED=1  every DESIRED is sent twice (replays of one generation)
# Each time the cluster becomes Ready, every Host's acknowledged generation is its current
# one, and the fake kubeadm's invocations show one init (and one join per worker).
. "$(dirname "$0")/common.sh"
ROOT_WORK=$E2E_WORK

converged() { # converged INITS JOINS
  /usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" "$1" "$2" <<'PY' || return 1
import json, sys
calls = [c for c in map(json.loads, open(sys.argv[1])) if c["tool"] == "kubeadm"]
inits = [c for c in calls if c["argv"][:1] == ["init"]]
joins = [c for c in calls if c["argv"][:1] == ["join"]]
assert (len(inits), len(joins)) == (int(sys.argv[2]), int(sys.argv[3])), (len(inits), len(joins))
PY
  anvilctl get hosts -o json | /usr/bin/python3 -c '
import json, sys
for h in json.load(sys.stdin)["items"]:
    st = h["status"]
    assert st.get("observedGeneration") == h["metadata"]["generation"], (h["metadata"]["name"], st.get("observedGeneration"), h["metadata"]["generation"])
    assert st["phase"] == "Provisioned", (h["metadata"]["name"], st["phase"])'
}

crash_scenario() { # crash_scenario CRASH_POINT
  local point=$1
  anvil_stop_all
  anvil_env_init "$ROOT_WORK/$point" "$BUILD"
  export ANVIL_TEST_CRASH=$point
  anvil_start_coordinator
  unset ANVIL_TEST_CRASH
  local token
  token=$(anvilctl token create --labels role=control-plane)
  anvil_start_agent cp-1 "$token"
  anvil_wait 30 "cp-1 enrolled" bash -c "$CTL get hosts -o name | grep -q cp-1"
  sed 's/replicas: 2/replicas: 0/' "$SRC/examples/cluster.yaml" | anvilctl apply -f - >/dev/null
  anvil_wait 60 "the coordinator to crash at $point" grep -q "Test hook: crashing at $point" "$WORK/coordinator.log"
  anvil_crash_coordinator
  anvil_start_coordinator
  anvil_wait 60 "cluster Ready after the crash at $point" anvil_cluster_ready demo
  anvil_wait 30 "converged after the crash at $point" converged 1 0
  check_logs || fail "$point: sanitizer report"
  echo "$point: converged, kubeadm init ran once"
}

crash_scenario desired-sent:Provision
crash_scenario ack-received:Provision
grep -q "Agent of cp-1 connected: has generation 3, wants 3" "$WORK/coordinator.log" ||
  fail "ack-received: the agent did not report the generation it had kept"

# Every DESIRED twice: the agent applies each generation once and acknowledges the replay.
anvil_stop_all
anvil_env_init "$ROOT_WORK/duplicate" "$BUILD"
export ANVIL_TEST_DUPLICATE_DESIRED=1
anvil_start_coordinator
unset ANVIL_TEST_DUPLICATE_DESIRED
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker --uses 2)
anvil_start_agent cp-1 "$CP" --log-level debug
anvil_start_agent worker-1 "$W" --log-level debug
anvil_start_agent worker-2 "$W" --log-level debug
anvil_wait 30 "3 hosts enrolled" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 3 ]"
anvilctl apply -f "$SRC/examples/cluster.yaml" >/dev/null
anvil_wait 120 "cluster Ready with duplicated deliveries" anvil_cluster_ready demo
anvil_wait 60 "converged with duplicated deliveries" converged 1 2
n=$(cat "$WORK"/agents/*/agent.log | grep -c "Ignoring generation [0-9]*: already at")
[ "$n" -ge 3 ] || fail "only $n duplicate deliveries were seen and ignored"
echo "duplicated deliveries: $n replays ignored, kubeadm init once, join twice"
echo PASS
