#!/usr/bin/env bash
# Bad input an operator types: coordinator.yaml / agent.yaml with semantic mistakes, bad
# daemon flags, and anvilctl arguments. Each must be refused with the exact message naming
# FILE:LINE:COLUMN: field (or the flag, or the argument), and change nothing: no state
# directory or key pair made, no token created. Then SIGHUP reloads: a changed
# restart-only setting is named in a warning, the log level is printed by name, and an
# invalid file is reported on one line.
. "$(dirname "$0")/common.sh"

# expect_out RC WANT CMD...: CMD exits with RC and its stderr holds the line WANT exactly.
expect_out() {
  local want_rc=$1 want=$2 rc out
  shift 2
  set +e
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  set -e
  [ "$rc" = "$want_rc" ] || fail "$*: exit $rc, expected $want_rc; stderr: $out"
  grep -qxF -- "$want" <<<"$out" || fail "$*: expected the line
  $want
got:
$out"
}

C=$WORK/c
mkdir -p "$C"

# bad_file coordinator|agent YAML WANT...: the daemon refuses the file (YAML as printf %b
# takes it) with exit status 1 and each WANT line on stderr, FILE standing for its path.
ncase=0
bad_file() {
  local who=$1 yaml=$2 f w
  shift 2
  ncase=$((ncase + 1))
  f=$C/case-$ncase.yaml
  printf '%b' "$yaml" >"$f"
  for w in "$@"; do
    if [ "$who" = coordinator ]; then
      expect_out 1 "${w//FILE/$f}" "$COORD" -c "$f" -d "$C/state" -s "$C/a.sock"
    else
      expect_out 1 "${w//FILE/$f}" "$AGENT" -c "$f" --cmdline /dev/null --state-dir "$C/astate"
    fi
  done
}

# ---- coordinator.yaml: every problem as FILE:LINE:COLUMN: field, nothing created ----
bad_file coordinator 'log-level: info\nlisten: 127.0.0.1:7443\n' \
  "FILE:2:9: listen: must be tcp://HOST:PORT, not '127.0.0.1:7443'"
bad_file coordinator 'listen: ipc:///tmp/x\n' \
  "FILE:1:9: listen: must be tcp://HOST:PORT (agents connect over TCP with CURVE), not 'ipc:///tmp/x'"
bad_file coordinator 'advertise: tcp://0.0.0.0:7443\n' \
  "FILE:1:12: advertise: a wildcard address cannot be advertised: give the name or address agents reach this coordinator at, not 'tcp://0.0.0.0:7443'"
bad_file coordinator 'advertise: foo\n' "FILE:1:12: advertise: must be tcp://HOST:PORT, not 'foo'"
bad_file coordinator 'metrics-listen: nonsense\n' \
  "FILE:1:17: metrics-listen: must be IPv4ADDR:PORT (e.g. 127.0.0.1:9450), or \"\" to disable, not 'nonsense'"
bad_file coordinator 'heartbeat-grace: 0s\nresync-period: 0s\n' \
  'FILE:1:18: heartbeat-grace: must be between 1s and 24h, not "0s"' \
  'FILE:2:16: resync-period: must be between 1s and 24h, not "0s"'
bad_file coordinator 'heartbeat-grace: 30\n' \
  'FILE:1:18: heartbeat-grace: expected a duration such as "10s" or "1m", got integer'
# Flags are named as flags (usage errors: exit 2).
expect_out 2 "anvil-coordinator: --listen: must be tcp://HOST:PORT, not '127.0.0.1:7443'" \
  "$COORD" -c /dev/null --listen 127.0.0.1:7443 -d "$C/state" -s "$C/a.sock"
expect_out 2 "anvil-coordinator: --metrics-listen: must be IPv4ADDR:PORT (e.g. 127.0.0.1:9450), or \"\" to disable, not 'nonsense'" \
  "$COORD" -c /dev/null --metrics-listen nonsense -d "$C/state" -s "$C/a.sock"
expect_out 2 "anvil-coordinator: --heartbeat-grace: must be a duration between 1s and 24h, not '0s'" \
  "$COORD" -c /dev/null --heartbeat-grace 0s -d "$C/state" -s "$C/a.sock"
[ ! -e "$C/state" ] || fail "a refused coordinator configuration created $C/state: $(ls -A "$C/state")"

# ---- agent.yaml ----
bad_file agent 'coordinator: 127.0.0.1:7443\n' \
  "FILE:1:14: coordinator: must be tcp://HOST:PORT, not '127.0.0.1:7443'"
bad_file agent 'environment:\n  - NOEQUALS\n  - "=x"\n' \
  "FILE:2:5: environment[0]: must be KEY=VALUE with KEY made of letters, digits and _, not 'NOEQUALS'" \
  "FILE:3:5: environment[1]: must be KEY=VALUE with KEY made of letters, digits and _, not '=x'"
bad_file agent 'heartbeat-interval: 0s\ncommand-timeout: 0s\n' \
  'FILE:1:21: heartbeat-interval: must be between 100ms and 24h, not "0s"' \
  'FILE:2:18: command-timeout: must be between 1s and 24h, not "0s"'
bad_file agent 'heartbeat-interval: 0\n' \
  'FILE:1:21: heartbeat-interval: expected a duration such as "10s" or "1m", got integer'
bad_file agent 'metrics-listen: nonsense\n' \
  "FILE:1:17: metrics-listen: must be IPv4ADDR:PORT (e.g. 127.0.0.1:9450), or \"\" to disable, not 'nonsense'"
echo "quiet anvil.coordinator=10.0.0.1:7443" >"$C/cmdline"
set +e
out=$("$AGENT" -c /dev/null --cmdline "$C/cmdline" --state-dir "$C/astate" 2>&1)
set -e
grep -qF "refusing to start: kernel command line: anvil.coordinator: must be tcp://HOST:PORT, not '10.0.0.1:7443' ($C/cmdline)" <<<"$out" ||
  fail "kernel command line value not named: $out"
set +e
out=$("$AGENT" -c /dev/null --cmdline /dev/null --coordinator 10.0.0.1:7443 --state-dir "$C/astate" 2>&1)
set -e
grep -qF "refusing to start: --coordinator: must be tcp://HOST:PORT, not '10.0.0.1:7443'" <<<"$out" ||
  fail "--coordinator not named: $out"
out=$("$AGENT" -c /dev/null --cmdline /dev/null --metrics-listen nonsense --state-dir "$C/astate" 2>&1) &&
  fail "the agent started with --metrics-listen nonsense"
grep -qF "refusing to start: --metrics-listen: must be IPv4ADDR:PORT" <<<"$out" || fail "--metrics-listen not named: $out"
[ ! -e "$C/astate" ] || fail "a refused agent configuration created $C/astate"

# ---- anvilctl arguments: refused, nothing created ----
anvil_start_coordinator
tokens() { anvilctl token list -o json | json 'len(d["items"])'; }
assert_eq "$(tokens)" 0 "tokens at start"
expect_out 1 "error: unexpected argument 'extra-arg' for 'anvilctl token create'" anvilctl token create extra-arg
expect_out 1 "error: unexpected argument 'extra' for 'anvilctl token list'" anvilctl token list extra
expect_out 1 "error: unexpected argument 'extra' for 'anvilctl info'" anvilctl info extra
expect_out 1 "error: unexpected argument 'b' for 'anvilctl token delete'" anvilctl token delete a b
expect_out 1 "error: unexpected argument 'b' for 'anvilctl host revoke'" anvilctl host revoke a b
expect_out 1 "error: unexpected argument 'x' for 'anvilctl describe'" anvilctl describe host h x
expect_out 1 "error: --labels: key 'k' is given twice" anvilctl token create --labels k=v,k=w
expect_out 1 "error: --labels: empty entry in 'k=v,' (a leading, trailing or doubled comma)" anvilctl token create --labels k=v,
expect_out 1 "error: --uses: must be a number from 0 (unlimited) to 1000000, not '18446744073709551617'" anvilctl token create --uses 18446744073709551617
expect_out 1 "error: --ttl: must be at most 8784h (366 days), or 0 for never, not '9000h'" anvilctl token create --ttl 9000h
expect_out 1 "error: --ttl: must be at least 1s, or 0 for never, not '500ms'" anvilctl token create --ttl 500ms
expect_out 1 "error: --description: control characters (newline, tab, ...) are not allowed" anvilctl token create --description $'two\nlines'
expect_out 1 "error: -o foo is not supported by 'anvilctl token list' (json, yaml, name, wide)" anvilctl token list -o foo
expect_out 1 "error: -o/--output is not supported by 'anvilctl describe'" anvilctl describe host h -o json
# getopt's own messages: the short program name, and the command's help.
expect_out 1 "anvilctl: unrecognized option '--bogus'" anvilctl token create --bogus
expect_out 1 "Run 'anvilctl token --help' for usage." anvilctl token create --bogus
expect_out 1 "Run 'anvilctl --help' for usage." anvilctl --bogus
assert_eq "$(tokens)" 0 "tokens after refused commands"

# What works: -o for token list, and the warning about an endpoint other hosts cannot use.
anvilctl token create --ttl 0 --uses 0 --labels role=worker --description "rack 7" >/dev/null
assert_eq "$(anvilctl token list -o json | json '[d["items"][0][k] for k in ("expires","usesLeft","labels","description")]')" \
  "[None, None, {'role': 'worker'}, 'rack 7']" "token list -o json"
anvilctl token list -o yaml | grep -qx "  description: rack 7" || fail "token list -o yaml"
anvilctl token list -o name | grep -qx "token/[a-z0-9]\{6\}" || fail "token list -o name"
warn="warning: the coordinator's agent endpoint tcp://127.0.0.1:$ANVIL_PORT is a loopback address that other hosts cannot use: set 'advertise: tcp://HOST:PORT' in /etc/anvil/coordinator.yaml and run 'systemctl restart anvil-coordinator'"
expect_out 0 "$warn" anvilctl token create --pxe
# Loopback serves agents on this machine (the demo): only a PXE-booting server cannot use it.
[ -z "$(anvilctl info 2>&1 >/dev/null)" ] || fail "anvilctl info warns about a loopback endpoint"
[ -z "$(anvilctl token create --agent-args 2>&1 >/dev/null)" ] || fail "--agent-args warns about a loopback endpoint"
anvil_stop_all

# ---- reload: restart-only settings named, level by name, bad file on one line ----
cat >"$C/reload.yaml" <<YAML
listen: tcp://127.0.0.1:$ANVIL_PORT
advertise: tcp://192.0.2.10:$ANVIL_PORT
YAML
: >"$WORK/coordinator.log"
anvil_start_coordinator -c "$C/reload.yaml"
anvilctl info 2>/dev/null | grep -qxF "Coordinator:     tcp://192.0.2.10:$ANVIL_PORT" ||
  fail "advertise not used by info"
[ -z "$(anvilctl info 2>&1 >/dev/null)" ] || fail "a routable advertise endpoint must not warn"
printf 'listen: tcp://127.0.0.1:1\nadvertise: tcp://192.0.2.10:%s\nlog-level: debug\n' "$ANVIL_PORT" >"$C/reload.yaml"
kill -HUP "$(cat "$WORK/coordinator.pid")"
anvil_wait 10 "reload logged" grep -q "Reloaded $C/reload.yaml: log level debug" "$WORK/coordinator.log" ||
  fail "reload not logged with the level's name"
grep -qF "Reload of $C/reload.yaml: listen changed and takes effect only after 'systemctl restart anvil-coordinator'." "$WORK/coordinator.log" ||
  fail "changed listen not warned about"
printf 'heartbeat-grace: 0s\nresync-period: 0s\n' >"$C/reload.yaml"
kill -HUP "$(cat "$WORK/coordinator.pid")"
anvil_wait 10 "bad reload logged" grep -q "Not reloading" "$WORK/coordinator.log" || fail "bad reload not logged"
grep -F "Not reloading" "$WORK/coordinator.log" |
  grep -qF "$C/reload.yaml is invalid, the running configuration stays: $C/reload.yaml:1:18: heartbeat-grace: must be between 1s and 24h, not \"0s\"; $C/reload.yaml:2:16: resync-period: must be between 1s and 24h, not \"0s\"" ||
  fail "the invalid file is not reported on one line: $(grep -A2 "Not reloading" "$WORK/coordinator.log")"
anvilctl info >/dev/null 2>&1 || fail "the coordinator must keep running after a bad reload"

# The agent: a changed coordinator is named, the level printed by name.
A=$WORK/agents/r
mkdir -p "$A/root"
agent_yaml() {
  cat >"$A/agent.yaml" <<YAML
coordinator: tcp://127.0.0.1:$1
coordinator-key: "$(anvilctl info -o json 2>/dev/null | json 'd["publicKey"]')"
token: "abcdef.0123456789abcdef"
state-dir: $A/state
product-uuid: 00000000-0000-4000-8000-00000000cf01
hostname: r
host-root: $A/root
cmdline: /dev/null
log-level: $2
YAML
}
agent_yaml "$ANVIL_PORT" info
"$AGENT" --config "$A/agent.yaml" >>"$A/agent.log" 2>&1 &
echo $! >"$A/agent.pid"
anvil_wait 10 "agent up" grep -q "oordinator" "$A/agent.log" || fail "agent did not start"
agent_yaml 1 debug
kill -HUP "$(cat "$A/agent.pid")"
anvil_wait 10 "agent reload logged" grep -q "Reloaded $A/agent.yaml: log level debug" "$A/agent.log" ||
  fail "agent reload not logged with the level's name: $(tail -5 "$A/agent.log")"
grep -qF "Reload of $A/agent.yaml: coordinator changed and takes effect only after 'systemctl restart anvil-agent'." "$A/agent.log" ||
  fail "changed coordinator not warned about"
printf 'environment: [NOEQUALS]\ncommand-timeout: 0s\n' >"$A/agent.yaml"
kill -HUP "$(cat "$A/agent.pid")"
anvil_wait 10 "bad agent reload logged" grep -q "Not reloading" "$A/agent.log" || fail "bad agent reload not logged"
grep -F "Not reloading" "$A/agent.log" | grep -qF "the running configuration stays: $A/agent.yaml:2:18: command-timeout: must be between 1s and 24h, not \"0s\"" ||
  fail "bad agent reload: $(grep -A2 "Not reloading" "$A/agent.log")"
kill -0 "$(cat "$A/agent.pid")" || fail "the agent must keep running after a bad reload"
echo "ok"
