#!/usr/bin/env bash
# Makes (once) the minimal Debian rootfs the nspawn tests boot a real systemd in, and prints
# the path of an unpacked copy on stdout.
#
#   tests/nspawn/rootfs.sh            build the tarball if missing, unpack it if needed
#
# The tarball is the cache: debootstrap (--variant=minbase, systemd as init, dbus, and the
# runtime libraries the daemons and the kubeadm fakes need) takes about a minute and needs
# the Debian mirror; unpacking takes seconds. Both live OUTSIDE the source tree:
#   ANVIL_NSPAWN_CACHE   directory (default /var/cache/anvil-test)
#   rootfs-<hash>.tar.gz the tarball; <hash> covers the suite, the package list and
#                        TWEAKS (bump it when build_tarball changes), so a change makes a new one
#   rootfs-<hash>/       the unpacked tree the tests use read-only (--volatile=overlay)
# Concurrent callers (ctest -j) serialise on a lock file; a half-made tarball or tree is never
# used (both appear by rename only when complete).
set -euo pipefail

SUITE=bookworm
TWEAKS=1
PACKAGES=(
  systemd systemd-sysv dbus
  # /bin/kill for ExecReload=: both packages depend on it (this install is offline)
  procps
  # what anvil-coordinator, anvil-agent and anvilctl link against
  libzmq5 libmsgpackc2 libyaml-0-2 libsodium23 libsystemd0 libsqlite3-0 libssl3 libjson-c5
  libmicrohttpd12 libuuid1
  # the kubeadm/kubectl fakes (tests/fakes)
  python3 python3-yaml openssl
)

CACHE=${ANVIL_NSPAWN_CACHE:-/var/cache/anvil-test}
HASH=$(printf '%s\n' "$SUITE" "$TWEAKS" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
TARBALL=$CACHE/rootfs-$HASH.tar.gz
TREE=$CACHE/rootfs-$HASH

# The mirror apt on this machine uses (the only network there is), else Debian's default.
mirror() {
  local m
  m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources \
        2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1 == "deb" && $3 == "'$SUITE'" {print $2; exit}' \
                       /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

build_tarball() {
  local tmp start=$SECONDS
  tmp=$(mktemp -d "$CACHE/.debootstrap.XXXXXX")
  echo "rootfs: debootstrap $SUITE into $tmp (first run only, ~1 min)" >&2
  if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        "$SUITE" "$tmp/root" "$(mirror)" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2
    rm -rf "$tmp"
    echo "rootfs: debootstrap failed (log above)" >&2
    return 1
  fi
  local r=$tmp/root
  # Boot quickly and quietly in a container: no getty on the console, nothing waits for a
  # network that the container does not manage, and the journal is kept in memory.
  ln -sf /dev/null "$r/etc/systemd/system/console-getty.service"
  ln -sf /dev/null "$r/etc/systemd/system/systemd-networkd-wait-online.service"
  mkdir -p "$r/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' \
    >"$r/etc/systemd/journald.conf.d/anvil-test.conf"
  # Each container gets its own machine ID at boot (nspawn sets one when the file is empty)
  # and keeps the host name nspawn gives it (debootstrap copied this machine's).
  : >"$r/etc/machine-id"
  rm -f "$r/etc/hostname"
  rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/lib/apt/lists/"*
  tar -C "$r" --numeric-owner -czf "$tmp/rootfs.tar.gz" .
  mv "$tmp/rootfs.tar.gz" "$TARBALL"
  rm -rf "$tmp"
  echo "rootfs: $TARBALL ($(du -h "$TARBALL" | cut -f1)) made in $((SECONDS - start))s" >&2
}

unpack() {
  local tmp
  tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  tar -C "$tmp" --numeric-owner -xzf "$TARBALL"
  mv "$tmp" "$TREE"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
[ -f "$TARBALL" ] || build_tarball
[ -d "$TREE" ] || unpack
# Trees of older package lists are left to be reclaimed: remove all but the current one.
for old in "$CACHE"/rootfs-*; do
  [ "$old" = "$TARBALL" ] || [ "$old" = "$TREE" ] || rm -rf "$old"
done
echo "$TREE"
