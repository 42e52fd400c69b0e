#!/usr/bin/env bash
# Enrollment and inventory through the real binaries:
#  - anvilctl info prints the endpoint and public key; token create --agent-args prints the
#    flags; token list shows ids, never secrets;
#  - unknown, deleted, expired and used-up tokens are refused, and the agent logs the reason;
#  - a token's labels become the Host's labels; anvilctl label host works;
#  - the Host inventory has every fact (from a fake /sys and /proc tree), get hosts shows
#    name, phase, claimed-by, IP, CPU, memory, last seen; a changed fact is reported;
#  - a coordinator restart keeps enrolled hosts and their keys;
#  - a machine that comes back with a new key (diskless reboot) and a fresh token is
#    re-keyed — not while its old key is connected, not while it is claimed — its labels
#    become the new token's and the old key is refused from then on;
#  - no token secret appears in any log or output.
. "$(dirname "$0")/common.sh"

export ANVIL_GRACE=5s # a stopped agent's host is unreachable after 5 s (heartbeats every 2 s)
anvil_start_coordinator
KEY=$(anvil_coordinator_key)
[ "$KEY" = "$(cat "$WORK/coordinator/coordinator.key.pub")" ] || fail "info: wrong public key"
anvilctl info >"$WORK/info.txt"
grep -q "^Coordinator: *tcp://127.0.0.1:$ANVIL_PORT$" "$WORK/info.txt" || fail "info: endpoint"
grep -qF "Public key:      $KEY" "$WORK/info.txt" || fail "info: public key"

# token create --agent-args: the token, then the agent's command line.
anvilctl token create --labels role=worker,rack=r1 --description "rack 1" --agent-args \
  >"$WORK/token.txt"
TOKEN=$(sed -n 1p "$WORK/token.txt")
[[ "$TOKEN" =~ ^[a-z0-9]{6}\.[a-z0-9]{32}$ ]] || fail "token format: $TOKEN"
[ "$(sed -n 2p "$WORK/token.txt")" = "anvil-agent --coordinator tcp://127.0.0.1:$ANVIL_PORT --coordinator-key '$KEY' --token $TOKEN" ] ||
  fail "--agent-args: $(sed -n 2p "$WORK/token.txt")"
anvilctl token list >"$WORK/tokens.txt"
grep -q "^${TOKEN%%.*} .*role=worker.*rack 1" "$WORK/tokens.txt" || fail "token list: $(cat "$WORK/tokens.txt")"
grep -q "${TOKEN#*.}" "$WORK/tokens.txt" && fail "token list shows the secret"

# A fake hardware tree for w-1's facts.
FR=$WORK/facts-root
mkdir -p "$FR/sys/class/dmi/id" "$FR/proc/sys/kernel" "$FR/sys/block/sda/queue" \
  "$FR/sys/block/nvme0n1/queue" "$FR/sys/block/loop0" "$FR/etc"
echo 7B5QRK2 >"$FR/sys/class/dmi/id/product_serial"
echo "Dell Inc." >"$FR/sys/class/dmi/id/sys_vendor"
echo "PowerEdge R640" >"$FR/sys/class/dmi/id/product_name"
printf 'processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz\n' >"$FR/proc/cpuinfo"
printf 'MemTotal:       65536000 kB\nMemFree:        1000 kB\n' >"$FR/proc/meminfo"
echo "6.1.0-18-amd64" >"$FR/proc/sys/kernel/osrelease"
echo 937703088 >"$FR/sys/block/sda/size"; echo 1 >"$FR/sys/block/sda/queue/rotational"
echo 1875385008 >"$FR/sys/block/nvme0n1/size"; echo 0 >"$FR/sys/block/nvme0n1/queue/rotational"
echo 100 >"$FR/sys/block/loop0/size"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n' >"$FR/etc/os-release"

ANVIL_AGENT_EXTRA_YAML="facts-root: $FR
facts-interval: 1s" anvil_start_agent w-1 "$TOKEN"
anvil_wait 30 "w-1 enrolled" bash -c "$CTL get hosts -o name | grep -q w-1"

# Refusals, each with the reason the agent logs.
anvil_start_agent unknown zzzzzz.00000000000000000000000000000000
EXP=$(anvilctl token create --ttl 1s)
ONE=$(anvilctl token create --uses 1)
GONE=$(anvilctl token create)
anvilctl token delete "${GONE%%.*}" | grep -q "deleted" || fail "token delete"
anvil_start_agent one-a "$ONE"
anvil_wait 30 "one-a enrolled" bash -c "$CTL get hosts -o name | grep -q one-a"
anvil_start_agent one-b "$ONE"
anvil_start_agent gone "$GONE"
sleep 1.5 # past the expiry of EXP
anvil_start_agent expired "$EXP"
refused() { grep -q "Enrollment refused: $2" "$WORK/agents/$1/agent.log"; }
anvil_wait 20 "unknown token refused" refused unknown "TokenUnknown"
anvil_wait 20 "deleted token refused" refused gone "TokenUnknown"
anvil_wait 20 "expired token refused" refused expired "TokenExpired: enrollment token ${EXP%%.*} has expired"
anvil_wait 20 "used-up token refused" refused one-b "TokenExhausted: enrollment token ${ONE%%.*} has no uses left"
hosts=$(anvilctl get hosts -o name | sort | tr '\n' ' ')
assert_eq "$hosts" "host.infrastructure.anvil.dev/one-a host.infrastructure.anvil.dev/w-1 " "hosts after the refusals"
grep -q "Refused the enrollment of key SHA256:[0-9a-f]* from 127.0.0.1: TokenExpired" "$WORK/coordinator.log" ||
  fail "coordinator does not log the refusal"
anvilctl token list | grep "^${ONE%%.*} " | grep -q " 0 " || fail "the one-use token shows uses left"
echo "refusals: unknown, deleted, expired and used-up tokens, each logged by the agent"

# Inventory: every fact, from the fake tree, and the table.
anvil_wait 20 "w-1 health reported" bash -c "$CTL get host w-1 -o json | grep -q healthy"
anvilctl get host w-1 -o json >"$WORK/w-1.json"
UUID=$(cat "$WORK/agents/w-1/uuid") /usr/bin/python3 - "$WORK/w-1.json" <<'PY' || fail "w-1 inventory"
import json, os, sys
h = json.load(open(sys.argv[1]))
f = h["status"]["facts"]
assert f["productUUID"] == os.environ["UUID"], f
assert (f["serial"], f["vendor"], f["model"]) == ("7B5QRK2", "Dell Inc.", "PowerEdge R640"), f
assert f["cpu"]["model"].startswith("Intel(R) Xeon(R) Gold 6130") and f["cpu"]["count"] >= 1, f["cpu"]
assert f["memoryBytes"] == 65536000 * 1024, f["memoryBytes"]
disks = {d["name"]: d for d in f["disks"]}
assert set(disks) == {"sda", "nvme0n1"}, disks
assert disks["sda"]["sizeBytes"] == 937703088 * 512 and disks["sda"]["rotational"] is True
assert disks["nvme0n1"]["rotational"] is False
assert f["kernel"] == "6.1.0-18-amd64" and f["os"] == "Debian GNU/Linux 12 (bookworm)", f
assert f["agentVersion"], f
assert f["interfaces"] and all("name" in i and "addresses" in i for i in f["interfaces"]), f["interfaces"]
assert h["metadata"]["labels"] == {"role": "worker", "rack": "r1"}, h["metadata"]["labels"]
assert h["status"]["health"]["healthy"] is True, h["status"]["health"]
assert h["status"]["enrolledWith"] and h["status"]["fingerprint"].startswith("SHA256:"), h["status"]
print("inventory OK")
PY
anvilctl get hosts >"$WORK/hosts.txt"
head -1 "$WORK/hosts.txt" | grep -Eq "^NAME +PHASE +CLAIMED-BY +IP +CPU +MEMORY +LAST-SEEN$" ||
  fail "get hosts header: $(head -1 "$WORK/hosts.txt")"
grep -Eq "^w-1 +Available +[0-9.]* *[0-9]+ +62Gi +[0-9]+s$" "$WORK/hosts.txt" ||
  fail "get hosts row: $(grep w-1 "$WORK/hosts.txt")"
IP=$(json '[a for i in d["status"]["facts"]["interfaces"] for a in i["addresses"] if "." in a][:1]' <"$WORK/w-1.json")
[ "$IP" = "[]" ] || grep -q "^w-1 .* ${IP:2:-2} " "$WORK/hosts.txt" || fail "IP column: $IP"

# A changed fact is reported (facts-interval is 1s here).
printf 'MemTotal:       131072000 kB\n' >"$FR/proc/meminfo"
anvil_wait 20 "new memory size reported" bash -c \
  "$CTL get host w-1 -o json | grep -q '\"memoryBytes\": $((131072000 * 1024))'"
grep -q "Hardware facts changed; reporting them." "$WORK/agents/w-1/agent.log" || fail "agent log"
echo "facts: a change is reported"

# Labels.
anvilctl label host w-1 zone=a | grep -q "/w-1 labeled" || fail "label host"
[ "$(anvilctl get hosts -l zone=a -o name)" = "host.infrastructure.anvil.dev/w-1" ] || fail "selector on the new label"

# A coordinator restart keeps enrolled hosts and their keys; agents come back.
keys() { anvilctl get hosts -o json | json 'sorted((h["metadata"]["name"], h["status"]["agentKey"]) for h in d["items"])'; }
before=$(keys)
anvil_crash_coordinator
anvil_start_coordinator
assert_eq "$(keys)" "$before" "hosts and keys after a coordinator SIGKILL"
assert_eq "$(anvil_coordinator_key)" "$KEY" "coordinator key after restart"
anvil_wait 30 "both hosts connected again" bash -c "$CTL info -o json | grep -q '\"connected\": 2'"
echo "restart: hosts, keys and connections back"

# Re-enrollment with a new key: a second agent with w-1's product UUID and a fresh token.
host_json() { anvilctl get host w-1 -o json; }
OLD_KEY=$(host_json | json 'd["status"]["agentKey"]')
OLD_FP=$(host_json | json 'd["status"]["fingerprint"]')
RE=$(anvilctl token create --labels role=rebooted --uses 2)
mkdir -p "$WORK/agents/w-1b"
cp "$WORK/agents/w-1/uuid" "$WORK/agents/w-1b/uuid"
anvil_start_agent w-1b "$RE"
anvil_wait 20 "w-1b refused while w-1 is connected" \
  grep -q "Enrollment refused: HostConnected" "$WORK/agents/w-1b/agent.log"
assert_eq "$(host_json | json 'd["status"]["agentKey"]')" "$OLD_KEY" "key while the old agent is live"
# The old agent goes away (a reboot that lost its state): once w-1 is unreachable, the new key
# takes the Host over at its next retry.
kill "$(anvil_agent_pid w-1)"
anvil_wait 90 "w-1 re-keyed" bash -c "$CTL get host w-1 -o json | grep -q '\"previousFingerprint\": \"$OLD_FP\"'"
NEW_KEY=$(host_json | json 'd["status"]["agentKey"]')
[ "$NEW_KEY" != "$OLD_KEY" ] || fail "the key did not change"
assert_eq "$(host_json | json 'd["status"]["enrolledWith"]')" "${RE%%.*}" "token of the re-enrollment"
assert_eq "$(host_json | json 'sorted(d["metadata"]["labels"].items())')" "[('role', 'rebooted')]" \
  "labels after re-keying (the token's, not zone=a or the old token's)"
anvil_wait 20 "w-1 connected with its new key" bash -c \
  "$CTL get host w-1 -o json | grep -q '\"connected\": true'"
grep -q "Host w-1 enrolled again from .* with a new key" "$WORK/coordinator.log" ||
  fail "the coordinator does not log the re-keying"
anvilctl token list | grep "^${RE%%.*} " | grep -q " 1 " || fail "the re-enrollment did not spend a use"
# The old key is unknown now: the old agent, restarted with its state, is refused.
anvil_restart_agent w-1
anvil_wait 20 "the old key refused" grep -q "refused this host's key" "$WORK/agents/w-1/agent.log"
assert_eq "$(host_json | json 'd["status"]["agentKey"]')" "$NEW_KEY" "key after the old agent's return"
kill "$(anvil_agent_pid w-1)"
echo "re-enrollment: refused while connected; re-keyed with the token's labels; old key refused"

# No token secret anywhere: logs, state files, outputs.
for t in "$TOKEN" "$EXP" "$ONE" "$GONE" "$RE"; do
  secret=${t#*.}
  if grep -rqF "$secret" "$WORK/coordinator.log" "$WORK"/agents/*/agent.log "$WORK"/agents/*/state \
      "$WORK/coordinator/store.db" "$WORK/tokens.txt" "$WORK/hosts.txt" "$WORK/w-1.json"; then
    fail "the secret of token ${t%%.*} leaked: $(grep -rlF "$secret" "$WORK" | grep -v agent.yaml)"
  fi
done
echo "no token secret in logs, state or store"
echo PASS
