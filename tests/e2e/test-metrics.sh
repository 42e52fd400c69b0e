#!/usr/bin/env bash
# Prometheus metrics: the coordinator's endpoint and an agent's (--metrics-listen), scraped
# and parsed strictly (tests/e2e/promparse.py) after a control plane and a worker provision,
# with what they must say then: hosts and machines by phase, connected agents, acks, an
# enrollment refused by ZAP, reconcile and store histograms; the agent's plan state, its
# steps' durations, heartbeats, connections; every family documented in docs/observability.md
# with its type. Also: 404 and 405, and a bad --metrics-listen.
. "$(dirname "$0")/common.sh"

AGENT_METRICS_PORT=$(anvil_free_port)
anvil_start_coordinator
CP=$(anvilctl token create --labels role=control-plane)
W=$(anvilctl token create --labels role=worker)
ANVIL_AGENT_YAML="metrics-listen: 127.0.0.1:$AGENT_METRICS_PORT" anvil_start_agent cp-1 "$CP"
anvil_start_agent worker-1 "$W"
# A token the coordinator never issued: refused during the handshake (ZAP).
anvil_start_agent stranger "abcdef.0123456789abcdefghijklmnopqrstuv"
anvil_wait 30 "2 hosts enrolled" bash -c "[ \$($CTL get hosts -o name | wc -l) -eq 2 ]"
anvil_wait 20 "the stranger refused" grep -q "Enrollment refused: TokenUnknown" \
  "$WORK/agents/stranger/agent.log"
kill "$(anvil_agent_pid stranger)"

sed 's/replicas: 2/replicas: 1/' "$SRC/examples/cluster.yaml" >"$WORK/cluster.yaml"
anvilctl apply -f "$WORK/cluster.yaml" >/dev/null
anvil_wait 120 "2 machines Running" anvil_machines_running 2
sleep 3 # a heartbeat (every 2 s here) after the last step

scrape() { # scrape PORT FILE: the body, and the headers in FILE.headers
  curl -sf -D "$2.headers" "http://127.0.0.1:$1/metrics" -o "$2"
}
scrape "$ANVIL_METRICS_PORT" "$WORK/coordinator.prom" || fail "cannot scrape the coordinator"
scrape "$AGENT_METRICS_PORT" "$WORK/agent.prom" || fail "cannot scrape the agent"
grep -qi "^content-type: text/plain; version=0.0.4" "$WORK/coordinator.prom.headers" ||
  fail "coordinator: wrong Content-Type"
grep -qi "^content-type: text/plain; version=0.0.4" "$WORK/agent.prom.headers" ||
  fail "agent: wrong Content-Type"

/usr/bin/python3 - "$WORK" "$SRC/tests/e2e" "$SRC/docs/observability.md" <<'PY' || fail "metrics"
import re, sys, time
sys.path.insert(0, sys.argv[2])
from promparse import parse, value

work = sys.argv[1]
c, ctypes = parse(open(work + "/coordinator.prom").read())
a, atypes = parse(open(work + "/agent.prom").read())

def eq(s, want, metric, **labels):
    got = value(s, metric, **labels)
    assert got == want, f"{metric}{labels} = {got}, want {want}"

def ge(s, want, metric, **labels):
    got = value(s, metric, **labels)
    assert got is not None and got >= want, f"{metric}{labels} = {got}, want >= {want}"

# The coordinator.
eq(c, 2, "anvil_hosts", phase="Provisioned")
eq(c, 0, "anvil_hosts", phase="Available")
eq(c, 2, "anvil_agents_connected")
eq(c, 2, "anvil_machines", namespace="default", cluster="demo", phase="Running")
eq(c, 0, "anvil_machines", namespace="default", cluster="demo", phase="Provisioning")
ge(c, 0, "anvil_machines_oldest_in_phase_seconds", namespace="default", cluster="demo",
   phase="Running")
eq(c, 1, "anvil_machinedeployment_replicas", namespace="default", name="demo-md-0", state="ready")
eq(c, 1, "anvil_kubeadmcontrolplane_replicas", namespace="default", name="demo-control-plane",
   state="desired")
eq(c, 0, "anvil_fanout_pending_acks")
ge(c, 2, "anvil_fanout_ack_latency_seconds_count")
ge(c, 1, "anvil_enroll_failures_total", reason="UnknownKey")
eq(c, 0, "anvil_enroll_failures_total", reason="BadProof")
ge(c, 2, "anvil_agent_messages_total", type="HELLO")
ge(c, 1, "anvil_reconcile_duration_seconds_count", controller="machine")
ge(c, 1, "anvil_reconcile_duration_seconds_count", controller="anvilmachine")
ge(c, 1, "anvil_store_commit_duration_seconds_count")
ge(c, 1, "process_open_fds")
assert ctypes["anvil_fanout_ack_latency_seconds"] == "histogram"
assert ctypes["anvil_hosts"] == "gauge"

# The agent of the control plane host.
eq(a, 1, "anvil_agent_enrolled")
eq(a, 1, "anvil_agent_connected")
eq(a, 1, "anvil_agent_plan_state", state="Provisioned")
eq(a, 0, "anvil_agent_plan_state", state="Failed")
ge(a, 1, "anvil_agent_generation")
ge(a, 2, "anvil_agent_connections_total")  # the enrollment connection, then the host's
ge(a, 1, "anvil_agent_reconnects_total")
ge(a, 1, "anvil_agent_heartbeats_sent_total")
ge(a, 1, "anvil_agent_messages_received_total")
assert abs(value(a, "anvil_agent_last_contact_timestamp_seconds") - time.time()) < 60
for step in ("write-files", "kubeadm-init", "wait-node"):
    eq(a, 1, "anvil_agent_step_duration_seconds_count", step=step, result="succeeded")
    eq(a, 0, "anvil_agent_step_duration_seconds_count", step=step, result="failed")
assert atypes["anvil_agent_step_duration_seconds"] == "histogram"

# docs/observability.md lists every family with its type, and nothing that is not served.
documented = {}
for line in open(sys.argv[3]):
    m = re.match(r"\| `([a-z_]+)`(?:, `([a-z_]+)`)? \| (\w+) \|", line)
    if m:
        for name in filter(None, m.group(1, 2)):
            documented[name] = m.group(3)
served = dict(atypes, **ctypes)
for name, kind in served.items():
    assert documented.get(name) == kind, f"docs/observability.md: {name} ({kind}) " + (
        f"documented as {documented[name]}" if name in documented else "missing")
stale = set(documented) - set(served)
assert not stale, f"docs/observability.md documents metrics nobody serves: {sorted(stale)}"
print(f"metrics OK: coordinator {len(c)} series, agent {len(a)} series, "
      f"{len(documented)} families documented")
PY

# Only GET /metrics.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ANVIL_METRICS_PORT/nothing")
assert_eq "$code" 404 "GET /nothing"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$AGENT_METRICS_PORT/metrics")
assert_eq "$code" 405 "POST /metrics"

# A bad address is refused at startup, naming it.
if "$AGENT" --config "$WORK/agents/worker-1/agent.yaml" --metrics-listen nonsense \
  >"$WORK/bad-listen.log" 2>&1; then
  fail "the agent started with --metrics-listen nonsense"
fi
grep -q "refusing to start: --metrics-listen: must be IPv4ADDR:PORT (e.g. 127.0.0.1:9450), or \"\" to disable, not 'nonsense'" "$WORK/bad-listen.log" ||
  fail "no error naming the bad metrics-listen: $(cat "$WORK/bad-listen.log")"
echo "PASS"
