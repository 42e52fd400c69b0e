#!/usr/bin/env bash
# provisioning/pxe-config.sh as an operator runs it, without booting anything (the qemu boot
# is e2e-pxe): it checks --kernel-args as the agent will (a parameter the agent refuses stops
# every server that boots), writes a dnsmasq configuration that dnsmasq itself accepts, and
# never makes the provisioning server an IPv6 default router.
. "$(dirname "$0")/common.sh"

[ -f /usr/lib/ipxe/undionly.kpxe ] || fail "/usr/lib/ipxe/undionly.kpxe missing (scripts/install-deps.sh installs ipxe)"
HTTP=$WORK/http
mkdir -p "$HTTP"
for f in vmlinuz initrd.img rootfs.squashfs rootfs.squashfs.sha256; do : >"$HTTP/$f"; done
KEY='rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
GOOD="anvil.coordinator=tcp://10.0.0.1:7443 anvil.coordinator_key=$KEY anvil.token=abcdef.0123456789abcdef"
# cfg MODE-ARGS... -- runs pxe-config.sh; stdout+stderr in $WORK/out
cfg() {
  "$SRC/provisioning/pxe-config.sh" --interface eth0 --http-url http://10.0.0.1:8080/anvil \
    --http-root "$HTTP" --dnsmasq-conf "$WORK/dnsmasq.conf" --tftp-root "$WORK/tftp" "$@" \
    >"$WORK/out" 2>&1
}
refused() { # refused NEEDLE KERNEL-ARGS
  rm -f "$WORK/dnsmasq.conf"
  if cfg --dhcp-range 10.0.0.100,10.0.0.199 --kernel-args "$2"; then
    fail "pxe-config.sh accepted --kernel-args '$2'"
  fi
  grep -qF -- "$1" "$WORK/out" || fail "refusal of '$2' does not say '$1': $(cat "$WORK/out")"
  [ ! -e "$WORK/dnsmasq.conf" ] || fail "a refused run wrote a configuration"
}

# Good arguments, full DHCP and proxy DHCP: dnsmasq --test accepts what was written, the
# script carries the arguments verbatim (a Z85 key holds * ? [ ] which must not glob).
cfg --dhcp-range 10.0.0.100,10.0.0.199 --ipv6-ra --kernel-args "$GOOD" ||
  fail "full DHCP: $(cat "$WORK/out")"
dnsmasq --test -C "$WORK/dnsmasq.conf" >/dev/null 2>&1 || fail "dnsmasq --test refuses the full-DHCP configuration"
grep -qF "$GOOD" "$HTTP/boot.ipxe" || fail "boot.ipxe lacks the kernel arguments verbatim"
grep -qx "ra-param=eth0,0,0" "$WORK/dnsmasq.conf" || fail "router advertisements without router lifetime 0"
cfg --proxy 10.0.0.0 --ipv6-ra --kernel-args "$GOOD" || fail "proxy DHCP: $(cat "$WORK/out")"
dnsmasq --test -C "$WORK/dnsmasq.conf" >/dev/null 2>&1 || fail "dnsmasq --test refuses the proxy-DHCP configuration"
grep -qx "ra-param=eth0,0,0" "$WORK/dnsmasq.conf" || fail "proxy mode: router lifetime is not 0"
echo "good arguments: ok"

# The documented way around a key iPXE would mangle: leave the key out, with a warning.
cfg --dhcp-range 10.0.0.100,10.0.0.199 --kernel-args "anvil.coordinator=tcp://10.0.0.1:7443 anvil.token=abc" ||
  fail "without anvil.coordinator_key: $(cat "$WORK/out")"
grep -q "must carry coordinator-key" "$WORK/out" || fail "no warning that the image must carry the key"
echo "no key, with a warning: ok"

refused "lacks anvil.token=" "anvil.coordinator=tcp://10.0.0.1:7443 anvil.coordinator_key=$KEY"
refused "must be tcp://HOST:PORT" "anvil.coordinator=10.0.0.1:7443 anvil.token=abc"
refused "40-character Z85" "anvil.coordinator=tcp://10.0.0.1:7443 anvil.coordinator_key=short anvil.token=abc"
refused "unknown parameter 'anvil.bogus'" "$GOOD anvil.bogus=1"
refused "loopback" "anvil.coordinator=tcp://127.0.0.1:7443 anvil.token=abc"
refused "wildcard" "anvil.coordinator=tcp://0.0.0.0:7443 anvil.token=abc"
refused "iPXE would expand" "anvil.coordinator=tcp://10.0.0.1:7443 anvil.coordinator_key=aaaa\${bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}c anvil.token=abc"
echo "bad arguments refused, nothing written: ok"
echo "PASS"
