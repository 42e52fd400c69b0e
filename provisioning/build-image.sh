#!/usr/bin/env bash
# Builds Anvil's PXE image: a diskless Debian 12 with systemd, containerd and anvil-agent
# (enabled), booted by iPXE and run from RAM.
#
#   provisioning/build-image.sh --out DIR --deb anvil-agent_VERSION_amd64.deb [options]
#
# Writes to DIR:
#   vmlinuz                  the Debian kernel (linux-image-FLAVOUR)
#   initrd.img               initramfs-tools with boot=anvil (provisioning/image/initramfs/)
#   rootfs.squashfs          the root file system, fetched by the initramfs over HTTP
#   rootfs.squashfs.sha256   its checksum, checked by the initramfs
#   image.txt                what went in (versions, options)
# Serve DIR over HTTP (provisioning/pxe-config.sh writes the iPXE script and dnsmasq
# configuration that boot it); docs/provisioning.md is the whole procedure.
#
# Options:
#   --out DIR             where the image goes (required)
#   --deb FILE            a .deb to install (repeatable; anvil-agent's is required)
#   --kube-debs DIR       every *.deb in DIR is installed too: kubeadm, kubelet, kubectl,
#                         kubernetes-cni, cri-tools as downloaded from the Kubernetes package
#                         repository (the build does not fetch them; their own dependencies
#                         such as conntrack, socat, iptables come from the Debian mirror)
#   --packages "A B"      more Debian packages for the image (e.g. openssh-server)
#   --overlay DIR         copied over the root file system last (e.g. root/.ssh/authorized_keys,
#                         etc/anvil/agent.yaml)
#   --kernel FLAVOUR      linux-image-FLAVOUR: amd64 (default: real hardware's drivers) or
#                         cloud-amd64 (virtual machines only; smaller)
#   --mirror URL          Debian mirror (default: the one in this host's apt sources, else
#                         http://deb.debian.org/debian); --security-mirror URL likewise
#   --cache DIR           keeps the base system and downloaded packages between builds
#                         (default /var/cache/anvil-image)
#   --fast                quicker, larger compression (zstd level 3 instead of 15)
#   --force               rebuild even if DIR holds an image of the same inputs
#
# Needs root, debootstrap, squashfs-tools and network access to the Debian mirror. The base
# system (debootstrap, kernel, initramfs; one to two minutes) is cached and rebuilt only when
# its recipe changes; the image itself (packages, configuration, squashfs) takes seconds.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ARGS=("$@")
OUT=
CACHE=${ANVIL_IMAGE_CACHE:-/var/cache/anvil-image}
DEBS=()
KUBE_DEBS=
PACKAGES=
OVERLAY=
KERNEL=amd64
MIRROR=
SECURITY_MIRROR=
LEVEL=15
FORCE=0
SUITE=bookworm

die() {
  echo "build-image: $*" >&2
  exit 1
}
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case $1 in
  --out) OUT=$2; shift 2 ;;
  --deb) DEBS+=("$(realpath "$2")"); shift 2 ;;
  --kube-debs) KUBE_DEBS=$(realpath "$2"); shift 2 ;;
  --packages) PACKAGES=$2; shift 2 ;;
  --overlay) OVERLAY=$(realpath "$2"); shift 2 ;;
  --kernel) KERNEL=$2; shift 2 ;;
  --mirror) MIRROR=$2; shift 2 ;;
  --security-mirror) SECURITY_MIRROR=$2; shift 2 ;;
  --cache) CACHE=$2; shift 2 ;;
  --fast) LEVEL=3; shift ;;
  --force) FORCE=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
  esac
done

[ -n "$OUT" ] || die "--out DIR is required (try --help)"
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
for tool in debootstrap mksquashfs unshare chroot sha256sum; do
  command -v $tool >/dev/null || die "$tool is missing: apt-get install debootstrap squashfs-tools"
done
agent_deb=
for d in "${DEBS[@]}"; do
  [ -f "$d" ] || die "--deb $d: no such file"
  case ${d##*/} in anvil-agent_*.deb) agent_deb=$d ;; esac
done
[ -n "$agent_deb" ] || die "--deb anvil-agent_*.deb is required (scripts/package.sh builds it)"
if [ -n "$KUBE_DEBS" ]; then
  compgen -G "$KUBE_DEBS/*.deb" >/dev/null || die "--kube-debs $KUBE_DEBS: no .deb files in it"
fi
[ -z "$OVERLAY" ] || [ -d "$OVERLAY" ] || die "--overlay $OVERLAY: not a directory"
case $KERNEL in amd64 | cloud-amd64 | rt-amd64) ;; *) die "--kernel: amd64 or cloud-amd64, not '$KERNEL'" ;; esac

if [ -z "$MIRROR" ]; then
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\/\{0,1\}\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
MIRROR=${MIRROR%/}
SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}

# Everything below runs in a mount namespace of its own: whatever it mounts (the chroot's
# /proc, /sys, /dev, the overlay) disappears when it exits, however it exits.
if [ -z "${ANVIL_IMAGE_IN_NS:-}" ]; then
  ANVIL_IMAGE_IN_NS=1 exec unshare --mount --propagation private -- "$0" "${ARGS[@]}"
fi

mkdir -p "$CACHE" "$OUT"
CACHE=$(realpath "$CACHE")
OUT=$(realpath "$OUT")
exec 9>"$CACHE/.lock"
flock 9 # one build per cache at a time

# What the base system is made of; its hash names the cached base.
BASE_PACKAGES=systemd,systemd-sysv,systemd-resolved,systemd-timesyncd,dbus,udev,kmod,iproute2,
BASE_PACKAGES+=ca-certificates,containerd,initramfs-tools,busybox,zstd,e2fsprogs,util-linux
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

# chroot_run ROOT CMD...: runs CMD inside ROOT with /proc, /sys and /dev mounted.
chroot_run() {
  local root=$1
  shift
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/sys" || mount --rbind /sys "$root/sys"
  mountpoint -q "$root/dev" || mount --rbind /dev "$root/dev"
  chroot "$root" "$@"
}

chroot_unmount() {
  local root=$1 m
  for m in dev sys proc; do
    if mountpoint -q "$root/$m"; then umount -R "$root/$m"; fi
  done
}

# The host's resolver, for apt inside the chroot; the image's own link comes back after.
resolv_in() {
  local root=$1
  if [ -L "$root/etc/resolv.conf" ]; then
    readlink "$root/etc/resolv.conf" >"$root/.anvil-resolv-link"
  fi
  rm -f "$root/etc/resolv.conf"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
}
resolv_out() {
  local root=$1
  rm -f "$root/etc/resolv.conf"
  if [ -f "$root/.anvil-resolv-link" ]; then
    ln -s "$(cat "$root/.anvil-resolv-link")" "$root/etc/resolv.conf"
    rm -f "$root/.anvil-resolv-link"
  fi
}

# build_base DIR: Debian 12 with systemd, containerd, the kernel and the initramfs.
build_base() {
  local root=$1
  mkdir -p "$CACHE/debootstrap-debs"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" \
    --cache-dir="$CACHE/debootstrap-debs" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$root/etc/apt/sources.list"
  # No daemons start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  # A server image: no documentation, manual pages or translations (copyright files stay).
  cat >"$root/etc/dpkg/dpkg.cfg.d/anvil-image" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  rm -rf "$root/usr/share/man" "$root/usr/share/info"
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  # The initramfs that boots the image (boot=anvil), in place before the kernel is installed.
  install -m 0644 "$HERE/image/initramfs/anvil.conf" "$root/etc/initramfs-tools/conf.d/anvil.conf"
  install -m 0755 "$HERE/image/initramfs/hooks/anvil" "$root/etc/initramfs-tools/hooks/anvil"
  install -m 0644 "$HERE/image/initramfs/scripts/anvil" "$root/etc/initramfs-tools/scripts/anvil"
  resolv_in "$root"
  chroot_run "$root" apt-get update -q >>"$root.log" 2>&1
  chroot_run "$root" apt-get -y -q upgrade >>"$root.log" 2>&1
  chroot_run "$root" apt-get install -y -q --no-install-recommends "linux-image-$KERNEL" \
    >>"$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "installing the kernel failed"; }
  chroot_run "$root" apt-get clean
  resolv_out "$root"
  chroot_unmount "$root"
  rm -rf "$root/var/lib/apt/lists/"*_*
  ls "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* >/dev/null || die "no kernel in the base"
}

base_key=$( {
  echo "$SUITE $MIRROR $SECURITY_MIRROR $KERNEL $BASE_PACKAGES"
  declare -f build_base resolv_in resolv_out
  cat "$HERE/image/initramfs/anvil.conf" "$HERE/image/initramfs/hooks/anvil" \
    "$HERE/image/initramfs/scripts/anvil"
} | sha256sum | cut -c1-16)
BASE=$CACHE/base-$base_key
if [ ! -d "$BASE" ]; then
  echo "build-image: building the base system ($SUITE, linux-image-$KERNEL) in $BASE"
  rm -rf "$BASE.tmp" "$BASE.tmp.log"
  start=$SECONDS
  build_base "$BASE.tmp"
  # Older bases are of no further use.
  find "$CACHE" -maxdepth 1 -name 'base-*' ! -name "base-$base_key*" -exec rm -rf {} +
  mv "$BASE.tmp" "$BASE"
  mv "$BASE.tmp.log" "$BASE.log"
  echo "build-image: base system built in $((SECONDS - start))s"
fi

# build_image ROOT: the packages and configuration on top of the base.
build_image() {
  local root=$1 debs=() f
  mkdir -p "$root/tmp/anvil-debs" "$CACHE/apt-archives/partial"
  for f in "${DEBS[@]}"; do
    cp "$f" "$root/tmp/anvil-debs/"
  done
  if [ -n "$KUBE_DEBS" ]; then cp "$KUBE_DEBS"/*.deb "$root/tmp/anvil-debs/"; fi
  for f in "$root"/tmp/anvil-debs/*.deb; do debs+=("/tmp/anvil-debs/${f##*/}"); done
  # Downloaded packages are kept in the cache for the next build.
  mount --bind "$CACHE/apt-archives" "$root/var/cache/apt/archives"
  resolv_in "$root"
  chroot_run "$root" apt-get update -q >"$WORK/image.log" 2>&1 ||
    { tail -20 "$WORK/image.log" >&2; die "apt-get update failed"; }
  # shellcheck disable=SC2086
  chroot_run "$root" apt-get install -y -q --no-install-recommends "${debs[@]}" $PACKAGES \
    >>"$WORK/image.log" 2>&1 || { tail -20 "$WORK/image.log" >&2; die "installing packages failed"; }
  umount "$root/var/cache/apt/archives"
  resolv_out "$root"

  cp -a "$HERE/image/rootfs/." "$root/"
  # kubelet and kubeadm expect containerd to use systemd's cgroup driver.
  chroot_run "$root" containerd config default >"$root/etc/containerd/config.toml"
  sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' "$root/etc/containerd/config.toml"
  chroot_run "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
  [ -L "$root/etc/systemd/system/multi-user.target.wants/anvil-agent.service" ] ||
    die "the anvil-agent package did not enable anvil-agent.service"
  if [ -n "$OVERLAY" ]; then cp -a "$OVERLAY/." "$root/"; fi

  # Every boot is a first boot: a machine ID of its own (systemd makes one), the host name
  # from the initramfs, nothing left of the build.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root/etc/hostname" "$root/usr/sbin/policy-rc.d"
  rm -rf "$root/tmp/anvil-debs" "$root/var/lib/apt/lists/"*_* "$root/var/cache/apt/"*.bin
  find "$root/var/log" -type f -delete
  chroot_unmount "$root"
}

# The image's inputs; an image in OUT built from the same ones is kept as it is.
image_key=$( {
  echo "$base_key $PACKAGES $LEVEL"
  sha256sum "${DEBS[@]}" | cut -d' ' -f1
  if [ -n "$KUBE_DEBS" ]; then sha256sum "$KUBE_DEBS"/*.deb | cut -d' ' -f1; fi
  (cd "$HERE/image/rootfs" && find . -type f | sort | xargs sha256sum)
  if [ -n "$OVERLAY" ]; then (cd "$OVERLAY" && find . | sort && find . -type f | sort | xargs -r sha256sum); fi
  declare -f build_image
} | sha256sum | cut -c1-16)
if [ "$FORCE" = 0 ] && [ "$(cat "$OUT/.image-key" 2>/dev/null)" = "$image_key" ] &&
  [ -f "$OUT/rootfs.squashfs" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ]; then
  echo "build-image: $OUT is up to date"
  exit 0
fi

WORK=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'umount -R "$WORK/root" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/upper" "$WORK/work" "$WORK/root"
# The base stays untouched: the image is an overlay on it.
mount -t overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/work" overlay "$WORK/root"
start=$SECONDS
build_image "$WORK/root"

kver=$(basename "$(ls "$BASE"/boot/vmlinuz-* | sort -V | tail -1)" | sed 's/^vmlinuz-//')
rm -f "$OUT/.image-key"
cp "$BASE/boot/vmlinuz-$kver" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
cp "$BASE/boot/initrd.img-$kver" "$OUT/initrd.img.tmp" && mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
# (squashfs keeps security.* and user.* attributes; it cannot store POSIX ACLs and says so.)
mksquashfs "$WORK/root" "$OUT/rootfs.squashfs.tmp" -noappend -quiet -no-progress \
  -comp zstd -Xcompression-level "$LEVEL" -wildcards -e 'boot/*' 2>&1 >/dev/null |
  { grep -v '^Unrecognised xattr prefix system\.posix_acl' || true; } >&2
mv "$OUT/rootfs.squashfs.tmp" "$OUT/rootfs.squashfs"
(cd "$OUT" && sha256sum rootfs.squashfs >rootfs.squashfs.sha256)
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "debian: $SUITE from $MIRROR"
  echo "kernel: $kver"
  chroot "$WORK/root" dpkg-query -W -f='${db:Status-Status} ${Package}: ${Version}\n' \
    anvil-agent containerd kubeadm kubelet kubectl 2>/dev/null | sed -n 's/^installed //p' || true
  echo "rootfs.squashfs: $(du -m "$OUT/rootfs.squashfs" | cut -f1) MB, zstd level $LEVEL"
} >"$OUT/image.txt"
echo "$image_key" >"$OUT/.image-key"
echo "build-image: image built in $((SECONDS - start))s: $OUT"
sed 's/^/  /' "$OUT/image.txt"
