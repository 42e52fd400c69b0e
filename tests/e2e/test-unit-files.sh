#!/usr/bin/env bash
# The shipped systemd files, checked without booting anything (the nspawn tests run them):
# both units pass systemd-analyze verify with no output at all (an unknown key only warns),
# the coordinator's sandbox keeps its exposure score, the journal catalog compiles and has
# an entry for every MESSAGE_ID in common/log.h, and sysusers.d creates the anvil user.
. "$(dirname "$0")/common.sh"
U=$WORK/units
mkdir -p "$U"
# verify needs the ExecStart= binaries: point the copies at the built ones.
sed -e "s#^ExecStart=/usr/sbin/anvil-coordinator#ExecStart=$COORD#" \
  "$SRC/units/anvil-coordinator.service" >"$U/anvil-coordinator.service"
sed -e "s#^ExecStart=/usr/sbin/anvil-agent#ExecStart=$AGENT#" \
  "$SRC/units/anvil-agent.service" >"$U/anvil-agent.service"
grep -q "^ExecStart=$COORD$" "$U/anvil-coordinator.service" || fail "ExecStart= of the coordinator moved"
grep -q "^ExecStart=$AGENT$" "$U/anvil-agent.service" || fail "ExecStart= of the agent moved"
out=$(cd "$U" && systemd-analyze verify anvil-coordinator.service anvil-agent.service 2>&1) ||
  fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"

# docs/systemd.md reports 1.2 for the coordinator; fail if the sandbox loosens.
systemd-analyze security --offline=yes --threshold=15 "$U/anvil-coordinator.service" \
  >"$WORK/security.txt" 2>&1 || { cat "$WORK/security.txt" >&2; fail "coordinator exposure above 1.5"; }
grep "Overall exposure" "$WORK/security.txt"

# The catalog: compiled into a database under a scratch root (never the host's).
R=$WORK/root
mkdir -p "$R/usr/lib/systemd/catalog" "$R/etc"
cp "$SRC/units/anvil.catalog" "$R/usr/lib/systemd/catalog/"
journalctl --root="$R" --update-catalog
journalctl --root="$R" --list-catalog >"$WORK/catalog.txt"
for id in $(sed -n 's/^#define ANVIL_MESSAGE_[A-Z_]* *"\([0-9a-f]\{32\}\)"$/\1/p' "$SRC/common/log.h"); do
  grep -q "^$id anvil: " "$WORK/catalog.txt" || fail "no catalog entry for MESSAGE_ID $id"
done
[ "$(grep -c " anvil: " "$WORK/catalog.txt")" -eq 8 ] || fail "expected 8 catalog entries"

# sysusers.d: the coordinator's user and group.
touch "$R/etc/passwd" "$R/etc/group"
systemd-sysusers --root="$R" "$SRC/units/anvil.sysusers" >/dev/null 2>&1
grep -q "^anvil:x:[0-9]*:[0-9]*:Anvil coordinator:/var/lib/anvil:" "$R/etc/passwd" ||
  fail "sysusers did not create the anvil user"
echo PASS
