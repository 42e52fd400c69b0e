#!/usr/bin/env bash
# Builds the Debian 12 packages anvil-agent, anvil-coordinator and anvilctl from the CMake
# tree into build/debs/:
#
#   scripts/package.sh [--out DIR] [--build-dir DIR] [--version VERSION] [--lintian]
#
# How: a release build (Debian's hardening flags from dpkg-buildflags, no test hooks), then
# `cmake --install --component PKG` into a staging root per package — the CMake install rules
# (packaging/CMakeLists.txt and the binaries' own) decide what goes where — and this script adds
# what Debian wants around it: stripped binaries, Depends from dpkg-shlibdeps, gzipped man
# pages, copyright and changelog, conffiles for /etc/anvil/*, md5sums, and the maintainer
# scripts in packaging/debian/ (system user, deb-systemd-helper), then `dpkg-deb --build`.
#
# Why dpkg-deb rather than CPack: CPack would need the same additions (copyright, changelog,
# stripping, maintainer scripts, conffiles) through variables, and its defaults trip lintian;
# a Debian source package (debhelper) would rebuild everything in a copy of the tree. This
# keeps the CMake install rules as the single list of files and every Debian detail visible
# in one place. --lintian runs lintian on the result and fails on any error.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRC/build/debs
BUILD=$SRC/build/pkg
VERSION=
LINTIAN=0
while [ $# -gt 0 ]; do
  case $1 in
  --out) OUT=$2; shift 2 ;;
  --build-dir) BUILD=$2; shift 2 ;;
  --version) VERSION=$2; shift 2 ;;
  --lintian) LINTIAN=1; shift ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "package: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps dpkg-buildflags cmake; do
  command -v $tool >/dev/null || { echo "package: $tool is missing: run scripts/install-deps.sh" >&2; exit 1; }
done

[ -n "$VERSION" ] || VERSION=$(sed -n 's/^project(anvil VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
ARCH=$(dpkg --print-architecture)
MAINTAINER="Anvil Team <team@anvil.dev>"
# Reproducible: file times and the changelog date come from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

echo "package: building $VERSION in $BUILD"
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS) -ffile-prefix-map=$SRC=."
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=None -DCMAKE_INSTALL_PREFIX=/usr \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$LDFLAGS" \
  -DANVIL_BUILD_TESTS=OFF -DANVIL_TEST_HOOKS=OFF -DANVIL_SANITIZE=OFF -DANVIL_FUZZ=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/anvil-package.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/debian" "$OUT"
# dpkg-shlibdeps wants to run in a source tree that lists the binary packages.
{
  printf 'Source: anvil\n'
  printf '\nPackage: %s\nArchitecture: any\n' anvil-agent anvil-coordinator anvilctl
} >"$STAGE/debian/control"

changelog() { # the native package's changelog, one entry for this build
  local rev
  rev=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
  printf 'anvil (%s) unstable; urgency=medium\n\n  * Built from the Anvil source tree, commit %s.\n\n -- %s  %s\n' \
    "$VERSION" "$rev" "$MAINTAINER" "$(date -R -u -d "@$SOURCE_DATE_EPOCH")"
}

build_one() {
  local pkg=$1 root=$STAGE/debian/$1 f depends
  DESTDIR=$root cmake --install "$BUILD" --component "$pkg" >/dev/null
  # Binaries: stripped as dh_strip does.
  for f in "$root"/usr/bin/* "$root"/usr/sbin/*; do
    [ -f "$f" ] || continue
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
    chmod 0755 "$f"
  done
  if [ -d "$root/usr/share/man" ]; then
    find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +
  fi
  install -D -m 0644 "$SRC/packaging/debian/copyright" "$root/usr/share/doc/$pkg/copyright"
  changelog | gzip -9n >"$root/usr/share/doc/$pkg/changelog.gz"
  chmod 0644 "$root/usr/share/doc/$pkg/changelog.gz"

  # Control area (dpkg-shlibdeps finds the package root by its DEBIAN directory).
  mkdir -p "$root/DEBIAN"
  local bins=()
  mapfile -t bins < <(cd "$STAGE" && find "debian/$pkg/usr/bin" "debian/$pkg/usr/sbin" -type f 2>/dev/null)
  depends=$(cd "$STAGE" && dpkg-shlibdeps -O "${bins[@]}" | sed -n 's/^shlibs:Depends=//p')
  {
    sed "s/@DEPENDS@/$depends/" "$SRC/packaging/debian/$pkg.control" | sed -n '1p'
    echo "Source: anvil"
    echo "Version: $VERSION"
    echo "Architecture: $ARCH"
    echo "Maintainer: $MAINTAINER"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    sed "s/@DEPENDS@/$depends/" "$SRC/packaging/debian/$pkg.control" | sed '1d'
  } >"$root/DEBIAN/control"
  if [ -d "$root/etc" ]; then
    (cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
  fi
  for f in preinst postinst prerm postrm; do
    if [ -f "$SRC/packaging/debian/$pkg.$f" ]; then
      install -m 0755 "$SRC/packaging/debian/$pkg.$f" "$root/DEBIAN/$f"
    fi
  done
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
    xargs -r md5sum) >"$root/DEBIAN/md5sums"
  find "$root" -type d -exec chmod 0755 {} +
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  [ ! -f "$root/DEBIAN/conffiles" ] || chmod 0644 "$root/DEBIAN/conffiles"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  rm -f "$OUT/${pkg}_"*.deb
  dpkg-deb --root-owner-group -Zxz --build "$root" "$OUT/${pkg}_${VERSION}_${ARCH}.deb" >/dev/null
  echo "package: $OUT/${pkg}_${VERSION}_${ARCH}.deb"
}

for pkg in anvil-agent anvil-coordinator anvilctl; do
  build_one "$pkg"
done

if [ "$LINTIAN" = 1 ]; then
  command -v lintian >/dev/null || { echo "package: lintian is missing: run scripts/install-deps.sh" >&2; exit 1; }
  out=$(lintian --tag-display-limit 0 "$OUT"/*_"${VERSION}"_"$ARCH".deb 2>&1 || true)
  out=$(echo "$out" | grep -v '^running with root privileges' || true)
  [ -z "$out" ] || echo "$out"
  if echo "$out" | grep -q '^E:'; then
    echo "package: lintian reports errors" >&2
    exit 1
  fi
  echo "package: lintian reports no errors"
fi
