#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and the demo of Anvil need.
# Safe to run again: apt-get install skips what is installed. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  # libraries (see README: libzmq, msgpack-c, libyaml, libsodium, libsystemd, SQLite,
  # OpenSSL libcrypto, json-c, libmicrohttpd, libuuid, cmocka)
  libzmq3-dev libmsgpack-dev libyaml-dev libsodium-dev libsystemd-dev libsqlite3-dev
  libssl-dev libjson-c-dev libmicrohttpd-dev uuid-dev libcmocka-dev
  # the kubeadm/kubectl fakes and test tooling; sudo for visudo, which checks the sudo rules
  # of KubeadmConfig users (useradd/usermod/groupadd come with passwd, always installed)
  python3 python3-yaml python3-zmq python3-msgpack openssl iproute2 procps curl sqlite3 sudo
  # tests under a real systemd (nspawn) and the PXE boot test (qemu, dnsmasq, iPXE)
  systemd-container debootstrap dnsmasq-base qemu-system-x86 ipxe-qemu dpkg-dev
  # packages (scripts/package.sh --lintian) and the PXE image (provisioning/): iPXE's
  # undionly.kpxe and ipxe.efi for TFTP, mksquashfs
  lintian ipxe squashfs-tools
)

missing() {
  local p out=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}

todo=$(missing)
if [ -z "$todo" ]; then
  echo "install-deps: all packages are installed."
  exit 0
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: $todo)" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing: $todo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $todo
