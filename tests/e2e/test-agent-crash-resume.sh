#!/usr/bin/env bash
# The agent killed at every step boundary (an abort() before or after each step of the
# first control plane's plan: ANVIL_TEST_CRASH, compiled into test builds), and killed with
# SIGKILL after kubeadm init finished but before the agent recorded it: each time the
# restarted agent resumes, the cluster comes up, and kubeadm init ran exactly once.
. "$(dirname "$0")/common.sh"
ROOT_WORK=$WORK

one_case() { # one_case NAME [agent env...]
  local name=$1; shift
  anvil_env_init "$ROOT_WORK/$name" "$BUILD"
  anvil_start_coordinator
  local token
  token=$(anvilctl token create --labels role=control-plane)
  sed -e 's/^  replicas: 1$/  replicas: 1/' "$SRC/examples/cluster.yaml" |
    /usr/bin/python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
for d in docs:
    if d["kind"] == "MachineDeployment": d["spec"]["replicas"] = 0
yaml.safe_dump_all(docs, sys.stdout)' >"$WORK/cluster.yaml"
  anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
  env "$@" bash -c "$(declare -f anvil_start_agent anvil_coordinator_key anvilctl); WORK=$WORK; ANVIL_PORT=$ANVIL_PORT; AGENT=$AGENT; CTL=$CTL; ANVIL_SRC=$ANVIL_SRC; FAKE_K8S_STATE=$FAKE_K8S_STATE; ANVIL_HEARTBEAT=1s; anvil_start_agent cp-1 $token"
}

wait_dead() { # wait_dead PID SECONDS
  local end=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
  ! kill -0 "$1" 2>/dev/null
}

inits() { fake_calls init --config; }

for point in write-files:before write-files:after pre-kubeadm-1:before pre-kubeadm-1:after \
             kubeadm-init:before kubeadm-init:after wait-node:before wait-node:after; do
  case=crash-${point/:/-}
  one_case "$case" ANVIL_TEST_CRASH="$point" ASAN_OPTIONS="${ASAN_OPTIONS:-}:handle_abort=0"
  pid=$(anvil_agent_pid cp-1)
  wait_dead "$pid" 30 || fail "$point: the agent did not crash"
  grep -q "Test hook: crashing ${point#*:} step ${point%%:*}" "$WORK/agents/cp-1/agent.log" || fail "$point: crash hook not reached"
  # restart without the hook: it must resume and finish
  "$AGENT" --config "$WORK/agents/cp-1/agent.yaml" >>"$WORK/agents/cp-1/agent.log" 2>&1 &
  echo $! >"$WORK/agents/cp-1/agent.pid"
  anvil_wait 60 "$point: control plane machine Running" anvil_machines_running 1
  assert_eq "$(inits)" 1 "$point: kubeadm init runs"
  grep -q "resumed after a restart\|treating it as done" "$WORK/agents/cp-1/agent.log" ||
    [ "${point#*:}" = before ] || [ "${point%%:*}" != kubeadm-init ] || fail "$point: no resume logged"
  echo "ok: $point"
  anvil_stop_all
  check_logs || fail "$point: sanitizer report"
done

# SIGKILL after kubeadm init has written everything but before the agent heard it finished:
# a kubeadm wrapper that sleeps after the real (fake) kubeadm returns.
one_case sigkill-after-init
pid=$(anvil_agent_pid cp-1); kill -9 "$pid"; wait "$pid" 2>/dev/null || true
cat >"$WORK/slow-kubeadm" <<SH
#!/bin/sh
"$SRC/tests/fakes/kubeadm" "\$@"; rc=\$?
[ "\$1" = init ] && sleep 30
exit \$rc
SH
chmod +x "$WORK/slow-kubeadm"
sed -i "s|^kubeadm: .*|kubeadm: $WORK/slow-kubeadm|" "$WORK/agents/cp-1/agent.yaml"
rm -rf "$WORK/agents/cp-1/state" "$WORK/agents/cp-1/root"/* 2>/dev/null || true
anvilctl delete host cp-1 >/dev/null || true
token=$(anvilctl token create --labels role=control-plane)
sed -i "s|^token: .*|token: \"$token\"|" "$WORK/agents/cp-1/agent.yaml"
"$AGENT" --config "$WORK/agents/cp-1/agent.yaml" >>"$WORK/agents/cp-1/agent.log" 2>&1 &
pid=$!
anvil_wait 60 "kubeadm init finished" bash -c "[ -f $WORK/agents/cp-1/root/etc/kubernetes/manifests/kube-apiserver.yaml ] && grep -q '\"init\"' $FAKE_K8S_STATE/invocations.jsonl"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
grep -q "status: running" "$WORK/agents/cp-1/state/state.yaml" || fail "the step was not left running"
"$AGENT" --config "$WORK/agents/cp-1/agent.yaml" >>"$WORK/agents/cp-1/agent.log" 2>&1 &
echo $! >"$WORK/agents/cp-1/agent.pid"
anvil_wait 60 "control plane machine Running after SIGKILL" anvil_machines_running 1
assert_eq "$(inits)" 1 "kubeadm init runs after a SIGKILL mid-step"
grep -q "treating it as done, not running it again" "$WORK/agents/cp-1/agent.log" || fail "no 'treating it as done' log"
pkill -f "$WORK/slow-kubeadm" || true
echo "ok: SIGKILL after kubeadm init"
echo PASS
