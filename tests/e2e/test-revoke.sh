#!/usr/bin/env bash
# Revocation and deletion through the real binaries:
#  - `anvilctl host revoke` cuts the host's open connections within seconds: the connection
#    in use gets REVOKED and is closed, a second (silent) connection with a copy of the key is
#    closed as soon as it speaks, new connections with the key are refused at the handshake;
#  - a real agent logs why, tries to enroll again and is refused (HostRevoked); the Host
#    shows Revoked;
#  - after `anvilctl host delete`, the host needs a new token (its used-up one is refused),
#    and with one it enrolls again and converges.
. "$(dirname "$0")/common.sh"

anvil_start_coordinator
KEY=$(anvil_coordinator_key)
ONE=$(anvilctl token create --uses 1)
anvil_start_agent a-1 "$ONE"
anvil_wait 30 "a-1 connected" bash -c "$CTL get host a-1 -o json | grep -q '\"connected\": true'"
PEER_TOKEN=$(anvilctl token create --uses 1)

# Scripted peer: two connections with the same enrolled key, then revocation.
ANVIL_EP="tcp://127.0.0.1:$ANVIL_PORT" ANVIL_KEY="$KEY" PEER_TOKEN="$PEER_TOKEN" WORK="$WORK" \
CTL="$CTL" PYTHONPATH="$SRC/tests/e2e" ANVIL_BUILD_DIR="$BUILD" \
/usr/bin/python3 - <<'PY' || fail "scripted peer revocation"
import os, subprocess, time, zmq
import peer as P

ep, key, work = os.environ["ANVIL_EP"], os.environ["ANVIL_KEY"], os.environ["WORK"]
tpub, tsec = P.enroll_keypair(os.environ["PEER_TOKEN"])
t = P.Peer(ep, key, tpub, tsec)
assert t.handshake()
kf = work + "/p.key"
pub, sec = P.new_keyfile(kf)
t.send("ENROLL", {"agentKey": pub, "proof": P.proof(kf, key, tpub),
                  "facts": {"productUUID": "peer-uuid-p", "hostname": "p-1"}})
assert (t.recv_type("ENROLLED") or {}).get("host") == "p-1"
t.close()

p = P.Peer(ep, key, pub, sec)            # the connection in use
assert p.handshake()
p.send("HELLO", {"generation": 0, "state": "Idle"})
assert p.recv_type("DESIRED"), "no desired state"
copy = P.Peer(ep, key, pub, sec)         # a copy of the key, connected, silent
assert copy.handshake()

start = time.time()
subprocess.run([os.environ["CTL"], "host", "revoke", "p-1"], check=True, capture_output=True)
revoked = p.recv_type("REVOKED", 10)
assert revoked and "revoked" in revoked["reason"], revoked
assert p.wait_event(zmq.EVENT_DISCONNECTED, 10), f"the connection in use stayed open: {p.events}"
print(f"connection in use: REVOKED and closed {time.time() - start:.1f}s after the revoke")

copy.send("HEARTBEAT", {"seq": 1, "generation": 1})
assert copy.recv_type("REVOKED", 10), "the copy was not told"
assert copy.wait_event(zmq.EVENT_DISCONNECTED, 10), f"the copy stayed open: {copy.events}"
print("second connection with the key: closed as soon as it spoke")

again = P.Peer(ep, key, pub, sec)
assert again.handshake() is False and zmq.EVENT_HANDSHAKE_FAILED_AUTH in again.events, again.events
print("new connections with the key: refused at the handshake")
for s in (p, copy, again):
    s.close()
PY

# The real agent: revoked while connected.
anvilctl host revoke a-1 | grep -q "host/a-1 revoked" || fail "host revoke"
anvil_wait 10 "a-1 told and cut off" grep -q "The coordinator cut this host off: revoked by the operator." \
  "$WORK/agents/a-1/agent.log"
anvil_wait 10 "a-1 refused at the handshake" grep -q "The coordinator refused this host's key: the host was revoked or deleted" \
  "$WORK/agents/a-1/agent.log"
anvil_wait 20 "a-1's enrollment refused" grep -q "Enrollment refused: HostRevoked: this agent key (SHA256:[0-9a-f]*) is host a-1's, which is revoked" \
  "$WORK/agents/a-1/agent.log"
assert_eq "$(anvilctl get host a-1 -o json | json 'd["status"]["phase"]')" "Revoked" "phase"
anvilctl get hosts | grep -Eq "^a-1 +Revoked " || fail "get hosts does not show Revoked"
echo "a-1: cut off, logs why, re-enrollment refused, phase Revoked"

# Deleted: the old (used-up) token does not bring it back, a new one does.
anvilctl host delete a-1 >/dev/null || fail "host delete"
anvil_restart_agent a-1
anvil_wait 20 "a-1 refused with its used-up token" grep -q "Enrollment refused: TokenExhausted" \
  "$WORK/agents/a-1/agent.log"
anvilctl get host a-1 >/dev/null 2>&1 && fail "a-1 came back with a used-up token"
NEW=$(anvilctl token create --uses 1)
sed -i "s/^token: .*/token: \"$NEW\"/" "$WORK/agents/a-1/agent.yaml"
anvil_restart_agent a-1
anvil_wait 30 "a-1 enrolled again" bash -c "$CTL get host a-1 -o json | grep -q '\"phase\": \"Available\"'"
anvil_wait 30 "a-1 converged" bash -c "$CTL get host a-1 -o json | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(0 if h[\"status\"].get(\"observedGeneration\") == h[\"metadata\"][\"generation\"] and h[\"status\"][\"connected\"] else 1)'"
echo "a-1: deleted, refused with the old token, enrolled again with a new one"
echo PASS
