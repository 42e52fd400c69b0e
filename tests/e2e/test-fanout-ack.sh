#!/usr/bin/env bash
# Desired changes to idle, unclaimed hosts (what a fleet-wide change is): every agent gets
# each generation and its ACK becomes the Host's status.observedGeneration — the fan-out's
# "quiet" write, whose watch event wakes no reconcile — which is in the store and survives a
# SIGKILL of the coordinator; the phase stays Available; the next change after the restart
# (DESIRED built from the store again, not from the lost process's cache) is delivered too.
# About 15 s.
. "$(dirname "$0")/common.sh"

anvil_start_coordinator
W=$(anvilctl token create --labels role=worker)
anvil_start_agent w-1 "$W"
anvil_start_agent w-2 "$W"
anvil_wait 30 "2 hosts enrolled" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 2 ]"

# pause PAUSED: one apply that changes both Hosts' spec (their generation goes up).
pause() {
  for h in w-1 w-2; do
    printf 'apiVersion: infrastructure.anvil.dev/v1alpha1\nkind: Host\nmetadata:\n  name: %s\nspec:\n  paused: %s\n---\n' "$h" "$1"
  done >"$WORK/hosts.yaml"
  anvilctl apply -f "$WORK/hosts.yaml" >/dev/null
}
# acked GEN: both Hosts are at generation GEN, have recorded its ACK, and are Available.
acked() {
  anvilctl get hosts -o json | json 'all(h["metadata"]["generation"] == '"$1"' and h["status"].get("observedGeneration") == '"$1"' and h["status"].get("phase") == "Available" for h in d["items"]) and len(d["items"]) == 2 or sys.exit(1)'
}
# agent_has NAME GEN: the agent persisted generation GEN (state.yaml).
agent_has() { grep -q "^generation: $2\$" "$WORK/agents/$1/state/state.yaml"; }

gen0=$(anvilctl get hosts -o json | json 'max(h["metadata"]["generation"] for h in d["items"])')
anvil_wait 30 "the first generation acknowledged" acked "$gen0"
for paused in true false; do
  pause "$paused"
  gen0=$((gen0 + 1))
  anvil_wait 20 "generation $gen0 acknowledged by both hosts" acked "$gen0"
  for h in w-1 w-2; do agent_has "$h" "$gen0" || fail "$h's agent does not have generation $gen0"; done
done
echo "ok: two changes delivered, each ACK recorded as observedGeneration $gen0, hosts Available"

# What was recorded is durable: a SIGKILL loses none of it.
anvil_crash_coordinator
anvil_start_coordinator
acked "$gen0" || fail "observedGeneration $gen0 lost with the coordinator: $(anvilctl get hosts -o json)"
anvil_wait 30 "agents reconnected" bash -c "$CTL info -o json | grep -q '\"connected\": 2'"
pause true
gen0=$((gen0 + 1))
anvil_wait 20 "generation $gen0 acknowledged after the restart" acked "$gen0"
for h in w-1 w-2; do agent_has "$h" "$gen0" || fail "$h's agent does not have generation $gen0"; done
echo "ok: observedGeneration survived a SIGKILL; the next change was delivered and recorded"
echo PASS
