#!/usr/bin/env bash
# A machine's disk is the truth about it; an agent that stops says so; a revoked one says
# nothing but ENROLL. Real coordinator and agents (fake kubeadm/kubectl), a one-worker cluster:
#  - `host delete --force` of a provisioned host: its agent enrolls again (its token has uses
#    left) saying it still holds a machine's installation, and the new Host is created
#    needing a reset (kubeadm reset runs) instead of Available as if it were clean;
#  - an agent stopped with SIGTERM says BYE: its host is disconnected at once (the grace is
#    30 s here), and the machine, rebooted diskless with a new key, re-keys at once instead of
#    being refused HostConnected for the grace;
#  - a revoked, provisioned agent that keeps running with its token sends nothing but ENROLL
#    on its enrollment connection; its Machine is not Ready (NodeHealthy False, HostRevoked)
#    and `describe machine` says its host is revoked.
. "$(dirname "$0")/common.sh"

export ANVIL_AGENT_YAML="node-check-interval: 1s"
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
S=$(anvilctl token create --labels role=spare)
anvil_start_agent cp-1 "$CP"
anvil_start_agent w-1 "$W"
anvil_start_agent s-1 "$S"
anvil_wait 30 "3 hosts" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 3 ]"
sed 's/replicas: 2/replicas: 1/' "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "2 machines Running" anvil_machines_running 2
assert_eq "$(host_phase w-1)" "Provisioned" "w-1 before the delete"

# 1. Forgotten while provisioned: back needing a reset.
resets=$(fake_calls reset)
anvilctl host delete w-1 --force >/dev/null || fail "host delete --force"
anvil_wait 30 "w-1 enrolled again" grep -q \
  "Host w-1 enrolled from .* It still holds a machine's installation: it is reset before it is handed out." \
  "$WORK/coordinator.log"
grep -q "Enrolling with the coordinator (product UUID .*; this host needs a reset first)" \
  "$WORK/agents/w-1/agent.log" || fail "the agent does not say it needs a reset"
more_resets() { [ "$(fake_calls reset)" -gt "$resets" ]; }
anvil_wait 30 "kubeadm reset on w-1" more_resets
anvil_wait 30 "w-1 reset and idle" grep -q "Host reset: back to idle." "$WORK/agents/w-1/agent.log"
echo "w-1: force-deleted while provisioned, came back needing a reset, was reset"

# 2. A clean stop says goodbye: disconnected at once, and a diskless reboot re-keys at once.
connected() { [ "$(anvilctl get host "$1" -o json | json 'd["status"].get("connected")')" = "$2" ]; }
OLD_FP=$(anvilctl get host s-1 -o json | json 'd["status"]["fingerprint"]')
kill "$(anvil_agent_pid s-1)"
wait "$(anvil_agent_pid s-1)" 2>/dev/null || true
anvil_wait 5 "s-1 disconnected right after its agent stopped (not after the 30 s grace)" connected s-1 False
grep -q "Agent of s-1 is stopping (Stopping): marking it disconnected." "$WORK/coordinator.log" ||
  fail "the coordinator does not log the goodbye"
rm -rf "$WORK/agents/s-1/state" # a diskless machine: a new key at the next boot
anvil_restart_agent s-1
anvil_wait 10 "s-1 re-keyed at once" bash -c \
  "$CTL get host s-1 -o json | grep -q '\"previousFingerprint\": \"$OLD_FP\"'"
grep -q "HostConnected" "$WORK/agents/s-1/agent.log" && fail "s-1 was refused as still connected"
anvil_wait 10 "s-1 connected with its new key" connected s-1 True
echo "s-1: BYE on SIGTERM, disconnected at once; re-keyed at once after a diskless reboot"

# 3. Revoked while provisioned, the agent keeps running with its token.
CPM=$(anvilctl get machines -l cluster.x-k8s.io/control-plane -o json | json 'd["items"][0]["metadata"]["name"]')
anvilctl host revoke cp-1 >/dev/null
anvil_wait 20 "cp-1 refused" grep -q "Enrollment refused: KeyRevoked" "$WORK/agents/cp-1/agent.log"
# Restarted (its first node check reports the node), it enrolls again and is refused again:
# the report must not go out on the enrollment connection.
n=$(grep -c "Node .* is Ready" "$WORK/agents/cp-1/agent.log" || true)
anvil_restart_agent cp-1
node_checked() { [ "$(grep -c "Node .* is Ready" "$WORK/agents/cp-1/agent.log" || true)" -gt "$n" ]; }
anvil_wait 20 "cp-1 checked its node after the restart" node_checked
sleep 1
grep -q "may only send ENROLL" "$WORK/coordinator.log" &&
  fail "the revoked agent sent more than ENROLL: $(grep 'may only send ENROLL' "$WORK/coordinator.log" | head -2)"
ready_reason() { anvilctl get machine "$CPM" -o json | json '[c.get("reason", "") for c in d["status"]["conditions"] if c["type"] == "Ready"][0]'; }
not_ready_revoked() { [ "$(ready_reason)" = HostRevoked ]; }
anvil_wait 10 "machine $CPM not Ready: HostRevoked" not_ready_revoked ||
  fail "machine $CPM on a revoked host: Ready reason '$(ready_reason)'"
anvilctl describe machine "$CPM" >"$WORK/describe.txt"
grep -q "^Warning: *host cp-1 is Revoked: its agent is cut off" "$WORK/describe.txt" ||
  fail "describe machine does not say the host is revoked: $(cat "$WORK/describe.txt")"
echo "cp-1: revoked; its agent sends only ENROLL; describe machine says so"
echo PASS
