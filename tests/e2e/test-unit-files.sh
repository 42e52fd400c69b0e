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
# --man=no: the man pages are checked here, not through a man(1) this machine may lack.
for d in anvil-coordinator anvil-agent; do
  page=$(sed -n "s/^Documentation=man:\($d\)(\([1-8]\)).*/\1.\2/p" "$SRC/units/$d.service")
  [ -n "$page" ] && [ -f "$SRC/docs/man/$page" ] || fail "$d.service: Documentation= names no man page in docs/man"
  doc=$(sed -n "s|^Documentation=.*file:///usr/share/doc/$d/\([^ ]*\).*|\1|p" "$SRC/units/$d.service")
  [ -n "$doc" ] && [ -f "$SRC/docs/$doc" ] || fail "$d.service: Documentation= names no file of docs/"
done
out=$(cd "$U" && systemd-analyze verify --man=no anvil-coordinator.service anvil-agent.service 2>&1) ||
  fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"

# docs/systemd.md reports 1.2 for the coordinator; fail if the sandbox loosens.
systemd-analyze security --offline=yes --threshold=15 "$U/anvil-coordinator.service" \
  >"$WORK/security.txt" 2>&1 || { cat "$WORK/security.txt" >&2; fail "coordinator exposure above 1.5"; }
grep "Overall exposure" "$WORK/security.txt"

# The catalog: compiled into a database under a scratch root (never the host's).
R=$WORK/root
mkdir -p "$R/usr/lib/systemd/catalog" "$R/etc"
cp "$SRC/units/anvil-agent.catalog" "$SRC/units/anvil-coordinator.catalog" "$R/usr/lib/systemd/catalog/"
journalctl --root="$R" --update-catalog
journalctl --root="$R" --list-catalog >"$WORK/catalog.txt"
for id in $(sed -n 's/^#define ANVIL_MESSAGE_[A-Z_]* *"\([0-9a-f]\{32\}\)"$/\1/p' "$SRC/common/log.h"); do
  grep -q "^$id anvil: " "$WORK/catalog.txt" || fail "no catalog entry for MESSAGE_ID $id"
done
n_ids=$(grep -c '^#define ANVIL_MESSAGE_[A-Z_]* *"[0-9a-f]\{32\}"$' "$SRC/common/log.h")
[ "$(grep -c " anvil: " "$WORK/catalog.txt")" -eq "$n_ids" ] ||
  fail "expected $n_ids catalog entries, one per MESSAGE_ID"
# One ID in one file: journald merges entries that share an ID (their Subject lines doubled).
dups=$(cat "$SRC"/units/*.catalog | sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' | sort | uniq -d)
[ -z "$dups" ] || fail "MESSAGE_IDs in more than one catalog entry: $dups"
# Which daemon logs each ID decides its catalog (each package ships its own).
for pair in agent:anvil-agent coordinator:anvil-coordinator; do
  dir=${pair%%:*} cat=${pair#*:}.catalog
  for name in $(grep -rho 'ANVIL_MESSAGE_[A-Z_]*' "$SRC/$dir" | sort -u); do
    id=$(sed -n "s/^#define $name *\"\([0-9a-f]\{32\}\)\"$/\1/p" "$SRC/common/log.h")
    grep -q "^-- $id\$" "$SRC/units/$cat" || fail "$name is logged by the $dir but not in $cat"
  done
done

# sysusers.d: the coordinator's user and group.
touch "$R/etc/passwd" "$R/etc/group"
systemd-sysusers --root="$R" "$SRC/units/anvil.sysusers" >/dev/null 2>&1
grep -q "^anvil:x:[0-9]*:[0-9]*:Anvil coordinator:/var/lib/anvil:" "$R/etc/passwd" ||
  fail "sysusers did not create the anvil user"
echo PASS
