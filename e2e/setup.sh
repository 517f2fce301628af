#!/usr/bin/env bash
# What `make e2e` needs on the machine before the suite runs, installed only where it is
# missing, one section per component. Run as root on a fresh machine it installs
# everything; where it cannot (not root, no vendor folder) it says why and stops with
# success, so that the suite skips those tests with their reasons, except under
# CI=true, where anything missing is a failure.
#
#   e2e/setup.sh            (from the repository top; `make e2e` runs it)
#
# BAKEPLAN_VENDOR names the folder of vendored tarballs (default: ../shared/vendor
# beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

VENDOR=${BAKEPLAN_VENDOR:-$(cd .. && pwd)/shared/vendor}
CI=${CI:-}
status=0

say() { echo "e2e/setup.sh: $*" >&2; }
# Something cannot be installed: a failure under CI, a note (and skipped tests) off it.
cannot() {
  if [ "$CI" = true ]; then
    say "FAILED: $*"
    status=1
  else
    say "skipping: $* (the tests that need it will skip)"
  fi
}
root() { [ "$(id -u)" = 0 ]; }

# --- Debian packages -----------------------------------------------------------------
# Each program the suite runs, and the package that brings it. Components add theirs.
declare -A PACKAGE=(
  [gcc]=build-essential             # the rumprun compiler wrappers call the host's gcc,
  [ld]=build-essential              # ld and ar
  [make]=build-essential
  [qemu-system-x86_64]=qemu-system-x86
  [genisoimage]=genisoimage         # ISO 9660 disk images
  [mke2fs]=e2fsprogs                # ext2 disk images
  [ip]=iproute2                     # tap devices for the guests' NICs
  [dnsmasq]=dnsmasq-base            # DHCP for a guest configured by DHCP
  [xz]=xz-utils                     # the vendored toolchains are .tar.xz
)
need=()
for tool in "${!PACKAGE[@]}"; do
  PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null || need+=("${PACKAGE[$tool]}")
done
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if root && command -v apt-get >/dev/null; then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2
  else
    cannot "missing Debian packages ${need[*]}: run as root with apt-get"
  fi
fi

# --- rumprun toolchains ----------------------------------------------------------------
# Each tarball holds opt/rumprun*/ and must go to /opt: its scripts name that folder by
# absolute path.
extract() { # extract DEST TARBALL
  local dest=$1 tarball=$VENDOR/$2
  [ -x "$dest/bin/rumprun-bake" ] && return 0
  if [ ! -r "$tarball" ]; then
    cannot "no $dest and no $tarball (set BAKEPLAN_VENDOR)"
  elif ! root; then
    cannot "$dest is missing and extracting $tarball to / needs root"
  else
    say "extracting $tarball to $dest"
    tar -C / -xJf "$tarball"
    [ -x "$dest/bin/rumprun-bake" ] || { say "FAILED: $tarball did not give $dest"; status=1; }
  fi
}
extract /opt/rumprun rumprun-master-hw-x86_64.tar.xz
extract /opt/rumprun-spec rumprun-spec-hw-x86_64.tar.xz

# --- Solo5 -----------------------------------------------------------------------------
# Solo5 469c1a8 is built from the vendored snapshot by e2e/solo5/setup.sh, into
# ~/.cache/bakeplan-e2e (outside the repository; $BAKEPLAN_E2E_BUILD elsewhere), once:
# again only when the tarball changes. Its configure.sh finds libseccomp, which both
# tenders link, with pkg-config. The tests run the same script, which returns at once
# when the build is there.
solo5_need=()
command -v pkg-config >/dev/null || solo5_need+=(pkg-config)
{ command -v pkg-config >/dev/null && pkg-config --exists libseccomp; } || solo5_need+=(libseccomp-dev)
if [ ${#solo5_need[@]} -gt 0 ]; then
  if root && command -v apt-get >/dev/null; then
    say "installing ${solo5_need[*]} for Solo5"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${solo5_need[@]}" >&2 ||
      { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${solo5_need[@]}" >&2; }
  else
    cannot "missing Debian packages ${solo5_need[*]} for Solo5: run as root with apt-get"
  fi
fi
if [ ! -r "$VENDOR/solo5-469c1a8.tar.gz" ]; then
  cannot "no $VENDOR/solo5-469c1a8.tar.gz to build Solo5 from (set BAKEPLAN_VENDOR)"
elif { command -v pkg-config >/dev/null && pkg-config --exists libseccomp; }; then
  BAKEPLAN_VENDOR=$VENDOR sh e2e/solo5/setup.sh >/dev/null ||
    cannot "building Solo5 failed (e2e/solo5/setup.sh says why above)"
fi

exit $status
