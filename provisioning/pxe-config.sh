#!/usr/bin/env bash
# Writes the PXE boot configuration for the image of provisioning/build-image.sh: the dnsmasq
# configuration (full DHCP or proxy DHCP, with TFTP), iPXE's binaries in the TFTP root, and the
# iPXE script beside the image.
#
#   provisioning/pxe-config.sh --interface IF --http-url URL --http-root DIR \
#       (--dhcp-range START,END[,LEASE] | --proxy SUBNET) \
#       --kernel-args "$(anvilctl token create --pxe | tail -1)" [options]
#
#   --interface IF        the interface dnsmasq serves (the provisioning network)
#   --http-url URL        where DIR is served over HTTP, e.g. http://10.0.0.1:8080/anvil
#   --http-root DIR       the image directory (build-image.sh --out); boot.ipxe is written here
#   --dhcp-range R        full DHCP: dnsmasq hands out addresses from R (dnsmasq's dhcp-range,
#                         e.g. 10.0.0.100,10.0.0.199,1h)
#   --proxy SUBNET        proxy DHCP beside the network's DHCP server, e.g. 10.0.0.0
#   --server-ip IP        this server's address on that network (default: the host of
#                         --http-url, when it is an IPv4 address)
#   --kernel-args ARGS    anvil.coordinator=… anvil.coordinator_key=… anvil.token=…, as
#                         printed by `anvilctl token create --pxe`
#   --extra-args ARGS     more kernel arguments (default: console=tty0 console=ttyS0,115200n8)
#   --state-disk DEV      anvil_state=DEV: keep the agent's key and progress on that disk
#                         (e.g. /dev/disk/by-id/…; made ext4 if blank), not in RAM
#   --ipv6-ra             also send IPv6 router advertisements for the interface's IPv6
#                         prefix (it needs one); on a network without any, iPXE waits ~13 s
#                         for IPv6 before it boots
#   --dnsmasq-conf FILE   where the dnsmasq configuration goes (default
#                         /etc/dnsmasq.d/anvil.conf)
#   --tftp-root DIR       where undionly.kpxe and ipxe.efi go (default /srv/anvil/tftp)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

die() {
  echo "pxe-config: $*" >&2
  exit 1
}

IFACE='' HTTP_URL='' HTTP_ROOT='' RANGE='' PROXY='' KARGS='' STATE='' RA='' SERVER_IP=''
EXTRA="console=tty0 console=ttyS0,115200n8"
CONF=/etc/dnsmasq.d/anvil.conf
TFTP=/srv/anvil/tftp
while [ $# -gt 0 ]; do
  case $1 in
  --interface) IFACE=$2; shift 2 ;;
  --http-url) HTTP_URL=${2%/}; shift 2 ;;
  --http-root) HTTP_ROOT=$2; shift 2 ;;
  --dhcp-range) RANGE=$2; shift 2 ;;
  --proxy) PROXY=$2; shift 2 ;;
  --server-ip) SERVER_IP=$2; shift 2 ;;
  --kernel-args) KARGS=$2; shift 2 ;;
  --extra-args) EXTRA=$2; shift 2 ;;
  --state-disk) STATE=$2; shift 2 ;;
  --ipv6-ra) RA=1; shift ;;
  --dnsmasq-conf) CONF=$2; shift 2 ;;
  --tftp-root) TFTP=$2; shift 2 ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
  esac
done

[ -n "$IFACE" ] || die "--interface is required"
[ -n "$HTTP_URL" ] || die "--http-url is required"
case $HTTP_URL in http://*) ;; *) die "--http-url must be http:// (the initramfs has no TLS)" ;; esac
[ -d "$HTTP_ROOT" ] || die "--http-root $HTTP_ROOT: not a directory"
for f in vmlinuz initrd.img rootfs.squashfs rootfs.squashfs.sha256; do
  [ -f "$HTTP_ROOT/$f" ] || die "--http-root $HTTP_ROOT has no $f: run provisioning/build-image.sh --out $HTTP_ROOT"
done
if [ -n "$RANGE" ] && [ -n "$PROXY" ]; then die "--dhcp-range and --proxy exclude each other"; fi
[ -n "$RANGE" ] || [ -n "$PROXY" ] || die "one of --dhcp-range (full DHCP) or --proxy (proxy DHCP) is required"

# The agent's arguments: well-formed (the agent refuses to start on any it does not know,
# so a typo here would stop every server that boots), and writable in an iPXE script.
for k in anvil.coordinator anvil.token; do
  [[ " $KARGS " == *" $k="* ]] || die "--kernel-args lacks $k= (use: anvilctl token create --pxe)"
done
Z85_KEY='^[]0-9a-zA-Z.:+=^!/*?&<>()[{}@%$#-]{40}$'  # ']' first, '-' last: a bracket expression
read -ra KWORDS <<<"$KARGS"   # split on blanks, never globbed (a Z85 key may hold * and ?)
for word in "${KWORDS[@]}"; do
  case $word in
  anvil.coordinator=tcp://?*:[0-9]*) ;;
  anvil.coordinator=*) die "--kernel-args: anvil.coordinator must be tcp://HOST:PORT, not '${word#*=}'" ;;
  anvil.coordinator_key=*)
    [[ "${word#*=}" =~ $Z85_KEY ]] ||
      die "--kernel-args: anvil.coordinator_key must be the 40-character Z85 public key 'anvilctl info' prints" ;;
  anvil.token=*) [ -n "${word#*=}" ] || die "--kernel-args: anvil.token is empty" ;;
  anvil.state_dir=*) ;;
  anvil.*) die "--kernel-args: unknown parameter '${word%%=*}' (the agent knows anvil.coordinator, anvil.coordinator_key, anvil.token, anvil.state_dir)" ;;
  esac
done
if [[ " $KARGS " != *" anvil.coordinator_key="* ]]; then
  echo "pxe-config: --kernel-args has no anvil.coordinator_key=: the image's /etc/anvil/agent.yaml must carry coordinator-key (build-image.sh --overlay), or the agents will not start" >&2
fi
if [[ "$KARGS" =~ tcp://(127\.|localhost[:/]|\[::1\]) ]]; then
  die "--kernel-args: anvil.coordinator is a loopback address, which a booting server cannot reach; set 'advertise:' in /etc/anvil/coordinator.yaml and create the token again"
fi
if [[ "$KARGS" == *'tcp://0.0.0.0:'* || "$KARGS" == *'tcp://*:'* ]]; then
  die "--kernel-args: anvil.coordinator is a wildcard address; set 'advertise:' in /etc/anvil/coordinator.yaml to the address hosts reach, restart the coordinator and create the token again"
fi
# iPXE expands ${name} anywhere in a line, repeatedly, and has no escape for it: a key that
# contains "${" followed by "}" cannot be written into the script.
if [[ "$KARGS" =~ \$\{.*\} ]]; then
  die "--kernel-args contains '\${…}', which iPXE would expand: put coordinator-key in the image's /etc/anvil/agent.yaml instead (build-image.sh --overlay) and leave anvil.coordinator_key= out"
fi
[[ "$KARGS$EXTRA$STATE" != *'"'* ]] || die "kernel arguments cannot contain double quotes"

STATE_ARG=
[ -z "$STATE" ] || STATE_ARG="anvil_state=$STATE"
if [ -z "$SERVER_IP" ]; then
  host=${HTTP_URL#http://}
  host=${host%%/*}
  host=${host%:*}
  if [[ "$host" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then SERVER_IP=$host; fi
fi
[ -n "$SERVER_IP" ] || die "--server-ip is required when --http-url does not name an IPv4 address"

# render TEMPLATE: replaces @NAME@ with the values above (values may hold / & and \).
render() {
  local ra=
  if [ -n "$RA" ]; then
    ra="# IPv6 router advertisements: iPXE otherwise waits ~13 s for IPv6 configuration.
# Router lifetime 0: the prefix is announced but this server is never anyone's default
# router (in proxy mode it sits on the production network).
enable-ra
ra-param=${IFACE},0,0
dhcp-range=::,constructor:${IFACE},ra-only"
  fi
  local url=$HTTP_URL
  INTERFACE=$IFACE DHCP_RANGE=$RANGE PROXY_SUBNET=$PROXY SCRIPT_URL=$url/boot.ipxe \
    TFTP_ROOT=$TFTP SERVER_IP=$SERVER_IP IPV6_RA=$ra HTTP_URL=$url STATE_ARG=$STATE_ARG \
    KERNEL_ARGS="$KARGS $EXTRA" /usr/bin/python3 -c '
import os, re, sys
text = open(sys.argv[1]).read()
sys.stdout.write(re.sub(r"@([A-Z_0-9]+)@", lambda m: os.environ[m.group(1)], text))' "$1"
}

mkdir -p "$TFTP" "$(dirname "$CONF")"
for f in undionly.kpxe ipxe.efi; do
  [ -f "/usr/lib/ipxe/$f" ] || die "/usr/lib/ipxe/$f is missing: apt-get install ipxe"
  install -m 0644 "/usr/lib/ipxe/$f" "$TFTP/$f"
done
if [ -n "$RANGE" ]; then
  render "$HERE/dnsmasq/full-dhcp.conf.in" >"$CONF.tmp"
else
  render "$HERE/dnsmasq/proxy-dhcp.conf.in" >"$CONF.tmp"
fi
mv "$CONF.tmp" "$CONF"
# The script carries the enrollment token and is served to any PXE client: the token is as
# secret as the provisioning network is closed (give it a TTL and a use count).
render "$HERE/dnsmasq/boot.ipxe.in" | sed 's/  *$//; s/  */ /g' >"$HTTP_ROOT/boot.ipxe.tmp"
chmod 0644 "$HTTP_ROOT/boot.ipxe.tmp"
mv "$HTTP_ROOT/boot.ipxe.tmp" "$HTTP_ROOT/boot.ipxe"
echo "pxe-config: wrote $CONF, $TFTP/{undionly.kpxe,ipxe.efi} and $HTTP_ROOT/boot.ipxe"
