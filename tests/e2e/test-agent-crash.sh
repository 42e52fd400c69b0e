#!/usr/bin/env bash
# An agent killed at chosen points of a delivery (abort() from the ANVIL_TEST_CRASH hook, as
# hard as SIGKILL) and started again converges to the right generation, and kubeadm init runs
# exactly once:
#   desired-Provision:after  the new generation is on disk, not yet acknowledged
#   check-version:before     the machine's version check is marked running, not started
#   kubeadm-init:before      the step is marked running, kubeadm not started
#   kubeadm-init:after       kubeadm init ran, the step not yet marked done
. "$(dirname "$0")/common.sh"
ROOT_WORK=$E2E_WORK

scenario() { # scenario CRASH_POINT EXPECTED_LOG_LINE
  local point=$1 expect=$2
  anvil_stop_all
  anvil_env_init "$ROOT_WORK/$point" "$BUILD"
  anvil_start_coordinator
  local token
  token=$(anvilctl token create --labels role=control-plane)
  export ANVIL_TEST_CRASH=$point
  anvil_start_agent cp-1 "$token"
  unset ANVIL_TEST_CRASH
  anvil_wait 30 "cp-1 enrolled" bash -c "$CTL get hosts -o name | grep -q cp-1"
  sed 's/replicas: 2/replicas: 0/' "$SRC/examples/cluster.yaml" | anvilctl apply -f - >/dev/null
  anvil_wait 60 "the agent to crash at $point" grep -q "Test hook: crashing" "$WORK/agents/cp-1/agent.log"
  anvil_restart_agent cp-1
  anvil_wait 60 "cluster Ready after the crash at $point" anvil_cluster_ready demo
  anvil_wait 30 "1 machine Running" anvil_machines_running 1
  /usr/bin/python3 - "$FAKE_K8S_STATE/invocations.jsonl" <<'PY' || fail "$point: kubeadm init count"
import json, sys
inits = [c for c in map(json.loads, open(sys.argv[1])) if c["tool"] == "kubeadm" and c["argv"][:1] == ["init"]]
assert len(inits) == 1, f"{len(inits)} kubeadm init runs"
PY
  anvil_wait 20 "generation acknowledged" bash -c "$CTL get host cp-1 -o json | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(0 if h[\"status\"].get(\"observedGeneration\") == h[\"metadata\"][\"generation\"] and h[\"status\"][\"phase\"] == \"Provisioned\" else 1)'"
  [ -z "$expect" ] || grep -q "$expect" "$WORK/agents/cp-1/agent.log" || fail "$point: no '$expect' in the agent log"
  check_logs || fail "$point: sanitizer report"
  echo "$point: converged, kubeadm init ran once"
}

scenario desired-Provision:after "Step 1/5 check-version started"
scenario check-version:before "Step 1/5 check-version resumed after a restart"
scenario kubeadm-init:before "Step 4/5 kubeadm-init resumed after a restart"
scenario kubeadm-init:after "kubeadm init was interrupted but its files are all there"
echo PASS
