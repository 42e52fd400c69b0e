#!/usr/bin/env bash
# The Debian packages, installed with apt on a Debian 12 booted under systemd (systemd-nspawn):
# lintian reports no errors; the coordinator's user exists and its unit is enabled and
# running as that user; the agent's unit is enabled but waits for a configuration, then enrolls
# once given one; a reinstall restarts the coordinator with its store; removing the agent keeps
# its configuration, purging removes it.
# The container's root file system is cached in $ANVIL_TEST_CACHE (debootstrap, ~1 minute the
# first time) and never changed (--volatile=overlay); packages come from the Debian mirror.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/pxe-lib.sh"

for tool in systemd-nspawn debootstrap nsenter flock; do
  command -v $tool >/dev/null || fail "$tool is missing: run scripts/install-deps.sh"
done
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, systemd-nspawn)"

ROOT=$ANVIL_TEST_CACHE/nspawn-bookworm
MACHINE=anvil-pkg-$$
NSPAWN_PID=

pkg_finish() {
  local rc=$?
  if [ -n "$NSPAWN_PID" ]; then
    kill "$NSPAWN_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$NSPAWN_PID" 2>/dev/null || true
    wait "$NSPAWN_PID" 2>/dev/null || true
  fi
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/apt-*.log "$WORK"/journal.log; do
      [ -f "$f" ] || continue
      echo "---- $f (tail) ----" >&2
      tail -30 "$f" >&2
    done
  fi
  (exit $rc)
  e2e_finish
}
trap pkg_finish EXIT

# ---- the packages, and lintian's verdict ----
anvil_test_packages "$WORK/debs" --lintian >"$WORK/package.log" 2>&1 ||
  { cat "$WORK/package.log" >&2; fail "scripts/package.sh --lintian failed"; }
grep -q "lintian reports no errors" "$WORK/package.log" || fail "lintian did not run"
echo "lintian: no errors"

# ---- a Debian 12 root file system with systemd (cached) ----
mkdir -p "$ANVIL_TEST_CACHE"
(
  flock 9
  if [ ! -d "$ROOT" ]; then
    rm -rf "$ROOT.tmp"
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\/\{0,1\}\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT.tmp" \
      "${mirror:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    if cp /etc/apt/sources.list.d/*.sources "$ROOT.tmp/etc/apt/sources.list.d/" 2>/dev/null; then
      rm -f "$ROOT.tmp/etc/apt/sources.list"
    fi
    chroot "$ROOT.tmp" apt-get update -q >/dev/null
    mv "$ROOT.tmp" "$ROOT"
  fi
) 9>"$ANVIL_TEST_CACHE/nspawn-bookworm.lock" || fail "debootstrap of the container failed"

# ---- boot it ----
systemd-nspawn -D "$ROOT" --volatile=overlay --boot --register=no --keep-unit \
  --console=read-only -M "$MACHINE" --bind-ro="$WORK/debs:/debs" >"$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!
leader() { pgrep -P "$NSPAWN_PID" | head -1; }
has_leader() { [ -n "$(leader)" ]; }
anvil_wait 30 "the container's systemd" has_leader
LEADER=$(leader)
# (Without this test's ANVIL_SERVER: anvilctl inside uses the package's default socket.)
in_ct() { nsenter -t "$LEADER" -a env -u ANVIL_SERVER "$@"; }
booted() { in_ct systemctl is-system-running 2>/dev/null | grep -Eq '^(running|degraded)$'; }
anvil_wait 60 "the container booted" booted
journal() { in_ct journalctl --no-pager -n 200 >"$WORK/journal.log" 2>&1 || true; }

# The coordinator listens on a free loopback port (the container shares this host's network);
# a drop-in is the administrator's own file, not the package's.
PORT=$(anvil_free_port)
in_ct sh -c "mkdir -p /etc/systemd/system/anvil-coordinator.service.d && cat >/etc/systemd/system/anvil-coordinator.service.d/test.conf" <<EOF
[Service]
ExecStart=
ExecStart=/usr/sbin/anvil-coordinator --config /etc/anvil/coordinator.yaml --listen tcp://127.0.0.1:$PORT --metrics-listen ""
EOF

# ---- install (without the agent's recommended containerd: not needed here, and big) ----
in_ct env DEBIAN_FRONTEND=noninteractive sh -c \
  'apt-get install -y -q --no-install-recommends /debs/anvil-coordinator_*.deb /debs/anvilctl_*.deb /debs/anvil-agent_*.deb' \
  >"$WORK/apt-install.log" 2>&1 || { journal; fail "apt-get install of the packages failed"; }
echo "apt-get install: ok"
grep -q "anvil-agent: set coordinator" "$WORK/apt-install.log" ||
  fail "the agent's postinst did not say how to configure it"

assert_eq "$(in_ct getent passwd anvil | cut -d: -f6,7)" "/var/lib/anvil:/usr/sbin/nologin" "user anvil"
assert_eq "$(in_ct systemctl is-enabled anvil-coordinator.service)" enabled "coordinator unit"
assert_eq "$(in_ct systemctl is-enabled anvil-agent.service)" enabled "agent unit"
coordinator_up() { in_ct anvilctl info >/dev/null 2>&1; }
anvil_wait 30 "the coordinator answers anvilctl" coordinator_up || { journal; fail "coordinator not up"; }
assert_eq "$(in_ct systemctl is-active anvil-coordinator.service)" active "coordinator state"
assert_eq "$(in_ct stat -c %U /var/lib/anvil/store.db)" anvil "owner of the coordinator's store"
assert_eq "$(in_ct stat -c %U:%G /run/anvil)" anvil:anvil "owner of /run/anvil"
assert_eq "$(in_ct systemctl is-active anvil-agent.service)" inactive "unconfigured agent"
assert_eq "$(in_ct dpkg-query -W -f='${Conffiles}' anvil-agent | awk '{print $1}')" \
  /etc/anvil/agent.yaml "conffiles of anvil-agent"
assert_eq "$(in_ct stat -c %a /etc/anvil/agent.yaml)" 600 "mode of /etc/anvil/agent.yaml"
# ExecReload= runs /bin/kill, which a minbase system (and the PXE image) only has if asked.
for d in anvil-agent anvil-coordinator; do
  in_ct dpkg-query -W -f='${Depends}' "$d" | grep -qw procps || fail "$d does not depend on procps"
done
in_ct systemctl reload anvil-coordinator.service || { journal; fail "systemctl reload anvil-coordinator"; }
assert_eq "$(in_ct systemctl is-active anvil-coordinator.service)" active "coordinator after reload"
# What the units' Documentation= and the catalogs' Support= name is installed; Debian's
# systemd compiled both catalogs through its dpkg trigger (no update-catalog of ours).
for d in anvil-agent anvil-coordinator; do
  in_ct test -f /usr/share/doc/$d/troubleshooting.md || fail "$d ships no troubleshooting.md"
  in_ct test -f /usr/share/man/man8/$d.8.gz || fail "$d ships no man page"
done
in_ct journalctl --list-catalog >"$WORK/catalog.txt"
for id in 6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c63 6a1f0c3e2b8d4f7a9c5e1b3d7f2a4c68; do
  grep -q "^$id anvil: " "$WORK/catalog.txt" || fail "catalog entry $id not compiled after install"
done
echo "installed: user, units, conffiles as expected"

# ---- the agent, configured, enrolls ----
TOKEN=$(in_ct anvilctl token create)
KEY=$(in_ct anvilctl info -o json | json 'd["publicKey"]')
# (A container cannot read the DMI product UUID: the setting for hosts with broken DMI data.)
in_ct sh -c 'cat >/etc/anvil/agent.yaml' <<EOF
coordinator: tcp://127.0.0.1:$PORT
coordinator-key: "$KEY"
token: "$TOKEN"
product-uuid: 4c4c4544-0002-4000-8000-0000000de6b1
EOF
in_ct systemctl start anvil-agent.service || { journal; fail "systemctl start anvil-agent failed"; }
one_host() { [ "$(in_ct anvilctl get hosts -o json | json 'len(d["items"])')" = 1 ]; }
anvil_wait 30 "the agent enrolled" one_host || { journal; fail "no Host"; }
echo "agent enrolled under systemd"

# ---- reinstall: the coordinator restarts and keeps its store ----
PID_BEFORE=$(in_ct systemctl show -p MainPID --value anvil-coordinator.service)
in_ct env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get install -y -q --reinstall /debs/anvil-coordinator_*.deb' \
  >"$WORK/apt-reinstall.log" 2>&1 || fail "reinstalling anvil-coordinator failed"
anvil_wait 30 "the coordinator back" coordinator_up
PID_AFTER=$(in_ct systemctl show -p MainPID --value anvil-coordinator.service)
[ "$PID_AFTER" != "$PID_BEFORE" ] || fail "the coordinator was not restarted on reinstall"
one_host || fail "the Host is gone after the coordinator's reinstall"
echo "reinstall: coordinator restarted with its store"

# ---- remove keeps the configuration, purge removes it ----
in_ct env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q anvil-agent >"$WORK/apt-remove.log" 2>&1 ||
  fail "apt-get remove anvil-agent failed"
assert_eq "$(in_ct dpkg-query -W -f='${db:Status-Abbrev}' anvil-agent)" "rc " "state after remove"
in_ct test -f /etc/anvil/agent.yaml || fail "remove deleted /etc/anvil/agent.yaml"
assert_eq "$(in_ct systemctl is-active anvil-agent.service)" inactive "agent after remove"
in_ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q anvil-agent >"$WORK/apt-purge.log" 2>&1 ||
  fail "apt-get purge anvil-agent failed"
if in_ct test -e /etc/anvil/agent.yaml; then fail "purge left /etc/anvil/agent.yaml"; fi
in_ct test -f /var/lib/anvil-agent/agent.key || fail "purge deleted the host's key"
if in_ct test -e /etc/systemd/system/multi-user.target.wants/anvil-agent.service; then
  fail "purge left the agent's enablement link"
fi
echo "remove and purge: ok"
echo PASS
