#!/usr/bin/env bash
# What a machine may enroll as, and which key files a daemon accepts, through the real
# binaries:
#  - the agent refuses a product UUID that is not a UUID and a host name that is not a DNS-1123
#    name, naming file:line:column and the field (agent.yaml) or the flag (--product-uuid,
#    --hostname), and starts nothing;
#  - the coordinator refuses ENROLL facts with such values (a scripted peer with a token) with
#    InvalidFacts, creates no Host and spends no use of the token;
#  - agent.key, coordinator.key and data.key readable by group or others are refused at
#    start (naming the file, its mode and `chmod 600 FILE`); after the chmod they start.
. "$(dirname "$0")/common.sh"

anvil_start_coordinator
KEY=$(anvil_coordinator_key)
TOKEN=$(anvilctl token create --uses 1)

# Runs agent NAME once in the foreground (it must exit by itself): its exit code and output.
agent_once() { # agent_once NAME [flags...]
  local name=$1; shift
  rc=0
  timeout 10 "$AGENT" --config "$WORK/agents/$name/agent.yaml" "$@" >"$WORK/$name.out" 2>&1 || rc=$?
}

# An agent.yaml the helpers write, then bad values in it: the agent is stopped first.
mkdir -p "$WORK/agents/evil"
echo '"../../etc/Evil UUID"' >"$WORK/agents/evil/uuid"
anvil_start_agent evil "$TOKEN"
pid=$(anvil_agent_pid evil)
anvil_wait 10 "evil refused to start" bash -c "! kill -0 $pid"
wait "$pid" 2>/dev/null || true
line=$(grep -n "^product-uuid:" "$WORK/agents/evil/agent.yaml" | cut -d: -f1)
grep -q "$WORK/agents/evil/agent.yaml:$line:[0-9]*: product-uuid: '../../etc/Evil UUID' is not a UUID" \
  "$WORK/agents/evil/agent.log" || fail "bad product-uuid in agent.yaml: $(cat "$WORK/agents/evil/agent.log")"
grep -q "Invalid configuration, refusing to start" "$WORK/agents/evil/agent.log" || fail "evil started"

echo "00000000-0000-4000-8000-0000000000e1" >"$WORK/agents/evil/uuid"
sed -i "s/^product-uuid: .*/product-uuid: $(cat "$WORK/agents/evil/uuid")/; s/^hostname: .*/hostname: 'Bad Name!'/" \
  "$WORK/agents/evil/agent.yaml"
agent_once evil
[ "$rc" -eq 1 ] || fail "bad hostname: exit $rc"
line=$(grep -n "^hostname:" "$WORK/agents/evil/agent.yaml" | cut -d: -f1)
grep -q "agent.yaml:$line:[0-9]*: hostname: 'Bad Name!' is not a valid DNS-1123 subdomain" "$WORK/evil.out" ||
  fail "bad hostname in agent.yaml: $(cat "$WORK/evil.out")"

# Flags: named by the flag, exit 2 (usage).
sed -i "s/^hostname: .*/hostname: evil/" "$WORK/agents/evil/agent.yaml"
agent_once evil --product-uuid '../../etc/Evil UUID'
[ "$rc" -eq 2 ] || fail "--product-uuid: exit $rc"
grep -q "^anvil-agent: --product-uuid: '../../etc/Evil UUID' is not a UUID" "$WORK/evil.out" ||
  fail "--product-uuid: $(cat "$WORK/evil.out")"
agent_once evil --hostname 'Bad Name!'
[ "$rc" -eq 2 ] || fail "--hostname: exit $rc"
grep -q "^anvil-agent: --hostname: 'Bad Name!' is not a valid DNS-1123 subdomain" "$WORK/evil.out" ||
  fail "--hostname: $(cat "$WORK/evil.out")"
[ -z "$(anvilctl get hosts -o name)" ] || fail "a host enrolled: $(anvilctl get hosts -o name)"
echo "agent: bad product UUID and host name refused (file:line:column:field, or the flag)"

# The coordinator: a peer that sends such facts with a valid token gets InvalidFacts, and
# nothing changes (no Host, the token's one use left).
ANVIL_EP="tcp://127.0.0.1:$ANVIL_PORT" ANVIL_KEY="$KEY" PEER_TOKEN="$TOKEN" WORK="$WORK" \
PYTHONPATH="$SRC/tests/e2e" ANVIL_BUILD_DIR="$BUILD" /usr/bin/python3 - <<'PY' || fail "scripted peer"
import os
import peer as P
ep, key, work = os.environ["ANVIL_EP"], os.environ["ANVIL_KEY"], os.environ["WORK"]
tpub, tsec = P.enroll_keypair(os.environ["PEER_TOKEN"])
t = P.Peer(ep, key, tpub, tsec)
assert t.handshake()
kf = work + "/p.key"
pub, sec = P.new_keyfile(kf)
good_uuid = "00000000-0000-4000-8000-0000000000f1"
cases = [
    ({"productUUID": "../../etc/evil uuid", "hostname": "p-1"}, "productUUID \"../../etc/evil uuid\" is not"),
    ({"productUUID": good_uuid.upper(), "hostname": "p-1"}, "is not a lowercase UUID"),
    ({"productUUID": good_uuid, "hostname": "bad name!"}, "hostname \"bad name!\" is not a valid DNS-1123"),
    ({"productUUID": good_uuid, "hostname": "../../etc"}, "hostname \"../../etc\" is not"),
]
for facts, want in cases:
    t.send("ENROLL", {"agentKey": pub, "proof": P.proof(kf, key, tpub), "facts": facts})
    r = t.recv_type("REFUSED")
    assert r and r["reason"] == "InvalidFacts" and want in r["message"], (facts, r)
print("coordinator: InvalidFacts for", len(cases), "bad ENROLLs")
# The token's only use is still there: the same peer enrolls with good facts.
t.send("ENROLL", {"agentKey": pub, "proof": P.proof(kf, key, tpub),
                  "facts": {"productUUID": good_uuid, "hostname": "p-1"}})
assert (t.recv_type("ENROLLED") or {}).get("host") == "p-1"
t.close()
PY
assert_eq "$(anvilctl get hosts -o name)" "host.infrastructure.anvil.dev/p-1" "hosts after the refusals"
grep -q "Refused the enrollment of key SHA256:[0-9a-f]* from 127.0.0.1: InvalidFacts: productUUID" \
  "$WORK/coordinator.log" || fail "the coordinator does not log InvalidFacts"
echo "coordinator: invalid facts refused, nothing created, no token use spent"

# Key files readable by others: refused at start, named with their mode and the fix.
ok=$(anvilctl token create)
anvil_start_agent k-1 "$ok"
anvil_wait 20 "k-1 enrolled" bash -c "$CTL get hosts -o name | grep -q k-1"
for f in "$WORK/agents/k-1/state/agent.key" "$WORK/coordinator/coordinator.key" "$WORK/coordinator/data.key"; do
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f is created with mode $(stat -c %a "$f")"
done
kill "$(anvil_agent_pid k-1)"; wait "$(anvil_agent_pid k-1)" 2>/dev/null || true
chmod 644 "$WORK/agents/k-1/state/agent.key"
agent_once k-1
[ "$rc" -eq 1 ] || fail "agent with a 0644 key: exit $rc"
grep -qF "Key file $WORK/agents/k-1/state/agent.key has mode 0644: group or others may read it. Refusing to use an unprotected private key; fix with: chmod 600 $WORK/agents/k-1/state/agent.key" \
  "$WORK/k-1.out" || fail "agent key mode: $(cat "$WORK/k-1.out")"
chmod 600 "$WORK/agents/k-1/state/agent.key"
anvil_restart_agent k-1
anvil_wait 20 "k-1 back with its key" bash -c "$CTL get host k-1 -o json | grep -q '\"connected\": true'"

anvil_stop_all
for f in coordinator.key data.key; do
  chmod 640 "$WORK/coordinator/$f"
  if anvil_start_coordinator 2>/dev/null; then fail "the coordinator started with $f mode 0640"; fi
  grep -qF "Key file $WORK/coordinator/$f has mode 0640: group or others may read it. Refusing to use an unprotected private key; fix with: chmod 600 $WORK/coordinator/$f" \
    "$WORK/coordinator.log" || fail "coordinator $f mode: $(tail -3 "$WORK/coordinator.log")"
  chmod 600 "$WORK/coordinator/$f"
done
anvil_start_coordinator
assert_eq "$(anvil_coordinator_key)" "$KEY" "coordinator key after the chmod"
echo "key files: 0644/0640 refused with the fix named; 0600 used"
echo PASS
