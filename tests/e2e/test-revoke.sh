#!/usr/bin/env bash
# Revocation and deletion through the real binaries:
#  - `anvilctl host revoke` cuts the host's open connections within seconds: the connection
#    in use gets REVOKED and is closed, a second (silent) connection with a copy of the key is
#    closed as soon as it speaks, new connections with the key are refused at the handshake;
#  - a real agent logs why, tries to enroll again and is refused (KeyRevoked); the Host
#    shows Revoked;
#  - the revoked key is remembered (`anvilctl host revoked`), also after `anvilctl host
#    delete` and a coordinator restart: the agent, which still has its key and an unlimited
#    token, is refused (KeyRevoked) instead of coming back as a fresh Available host;
#  - with a new key but a token that predates the revocation it is refused
#    (TokenPredatesRevocation); with a new key and a new token it enrolls and converges;
#  - STATUS= does not count a revoked host as awaiting an ack.
. "$(dirname "$0")/common.sh"

anvil_start_coordinator
KEY=$(anvil_coordinator_key)
MANY=$(anvilctl token create --ttl 24h) # unlimited uses, stays on the machine
anvil_start_agent a-1 "$MANY"
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
                  "facts": {"productUUID": "00000000-0000-4000-8000-0000000000aa", "hostname": "p-1"}})
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
anvil_wait 20 "a-1's enrollment refused" grep -q "Enrollment refused: KeyRevoked: this agent key (SHA256:[0-9a-f]*) was revoked (host a-1)" \
  "$WORK/agents/a-1/agent.log"
assert_eq "$(anvilctl get host a-1 -o json | json 'd["status"]["phase"]')" "Revoked" "phase"
anvilctl get hosts | grep -Eq "^a-1 +Revoked " || fail "get hosts does not show Revoked"
echo "a-1: cut off, logs why, re-enrollment refused, phase Revoked"

# The revoked key is listed, with its host and machine.
A1_UUID=$(cat "$WORK/agents/a-1/uuid")
A1_FP=$(anvilctl get host a-1 -o json | json 'd["status"]["fingerprint"]')
anvilctl host revoked >"$WORK/revoked.txt"
head -1 "$WORK/revoked.txt" | grep -Eq "^FINGERPRINT +HOST +PRODUCT-UUID +REVOKED$" || fail "host revoked header"
grep -Eq "^$A1_FP +a-1 +$A1_UUID +20[0-9-]+T" "$WORK/revoked.txt" || fail "host revoked: $(cat "$WORK/revoked.txt")"
assert_eq "$(anvilctl host revoked -o json | json 'sorted(k["host"] for k in d)')" "['a-1', 'p-1']" "host revoked -o json"
anvilctl host revoked -o json | grep -q '"key"' && fail "host revoked shows whole keys"

# STATUS= (and the pending-acks gauge it shares) does not wait for revoked hosts: p-1 got a
# DESIRED it never acknowledged, and it will never be sent anything again.
cat >"$WORK/pending.py" <<PY
import re, urllib.request
t = urllib.request.urlopen("http://127.0.0.1:$ANVIL_METRICS_PORT/metrics").read().decode()
print(re.search(r"^anvil_fanout_pending_acks (\\d+)", t, re.M).group(1))
PY
anvil_wait 5 "no revoked host awaited" bash -c "[ \"\$(/usr/bin/python3 $WORK/pending.py)\" = 0 ]" ||
  fail "revoked hosts are counted as awaiting an ack: $(/usr/bin/python3 "$WORK/pending.py")"

# Deleted: the key stays refused. The agent still has its key and its unlimited token; before
# the fix it came back as a fresh Available host.
# Each check counts the lines logged after the step (earlier refusals are in the logs too).
count() { grep -c "$1" "$2" || true; }
more_than() { [ "$(count "$2" "$3")" -gt "$1" ]; }
A1_LOG=$WORK/agents/a-1/agent.log
n_agent=$(count "Enrollment refused: KeyRevoked" "$A1_LOG")
n_zap=$(count "with key $A1_FP: the key was revoked" "$WORK/coordinator.log")
anvilctl host delete a-1 >/dev/null || fail "host delete"
anvil_restart_agent a-1
anvil_wait 20 "a-1's revoked key refused after the delete" more_than "$n_agent" \
  "Enrollment refused: KeyRevoked: this agent key ($A1_FP) was revoked (host a-1)" "$A1_LOG"
more_than "$n_zap" "Refused a connection from .* with key $A1_FP: the key was revoked" "$WORK/coordinator.log" ||
  fail "ZAP does not refuse the deleted host's revoked key"
anvilctl get host a-1 >/dev/null 2>&1 && fail "a-1 came back with its revoked key"

# Durable: a coordinator restart does not forget it.
anvil_crash_coordinator
anvil_start_coordinator
n_agent=$(count "Enrollment refused: KeyRevoked" "$A1_LOG")
anvil_restart_agent a-1
anvil_wait 20 "a-1 refused after a coordinator restart" more_than "$n_agent" "Enrollment refused: KeyRevoked" "$A1_LOG"
anvilctl get host a-1 >/dev/null 2>&1 && fail "a-1 came back after a coordinator restart"
echo "a-1: deleted, its revoked key still refused (also after a coordinator restart)"

# A new key, but the old token: refused, the token predates the revocation.
rm "$WORK/agents/a-1/state/agent.key" "$WORK/agents/a-1/state/agent.key.pub"
anvil_restart_agent a-1
anvil_wait 20 "a-1's old token refused" grep -q \
  "Enrollment refused: TokenPredatesRevocation: a key of this machine (product UUID $A1_UUID) was revoked at" \
  "$WORK/agents/a-1/agent.log"
anvilctl get host a-1 >/dev/null 2>&1 && fail "a-1 came back with a token from before its revocation"
# A new key and a new token: enrolled again.
NEW=$(anvilctl token create --uses 1)
sed -i "s/^token: .*/token: \"$NEW\"/" "$WORK/agents/a-1/agent.yaml"
anvil_restart_agent a-1
anvil_wait 30 "a-1 enrolled again" bash -c "$CTL get host a-1 -o json | grep -q '\"phase\": \"Available\"'"
anvil_wait 30 "a-1 converged" bash -c "$CTL get host a-1 -o json | python3 -c 'import json,sys; h=json.load(sys.stdin); sys.exit(0 if h[\"status\"].get(\"observedGeneration\") == h[\"metadata\"][\"generation\"] and h[\"status\"][\"connected\"] else 1)'"
[ "$(anvilctl get host a-1 -o json | json 'd["status"]["fingerprint"]')" != "$A1_FP" ] || fail "a-1 kept its revoked key"
echo "a-1: refused with a token older than the revocation; enrolled again with a new key and token"

# Revoked and still running with its token, the agent sent nothing but ENROLL on its
# enrollment connections.
grep -q "an enrollment connection may only send ENROLL" "$WORK/coordinator.log" &&
  fail "the agent sent more than ENROLL on an enrollment connection: $(grep 'may only send ENROLL' "$WORK/coordinator.log" | head -3)"
echo PASS
