#!/bin/sh
# Solo5 for the e2e suite: built from the vendored snapshot, never copied into the repo.
#
#   e2e/solo5/setup.sh        builds once (again only when the tarball changes) and
#                             prints the build folder on its last line of stdout
#
# The snapshot is solo5-469c1a8.tar.gz in the vendor folder, $BAKEPLAN_VENDOR, else
# ../shared/vendor beside the repository (as for the rumprun suite).  Builds go to
# $BAKEPLAN_E2E_BUILD (default: ~/.cache/bakeplan-e2e, outside the repository).
# libseccomp-dev, which both tenders link, is installed with apt-get when it is missing
# and this runs as root.
set -eu

REPO=$(cd "$(dirname "$0")/../.." && pwd)
TARBALL=${BAKEPLAN_VENDOR:-$REPO/../shared/vendor}/solo5-469c1a8.tar.gz
BUILDS=${BAKEPLAN_E2E_BUILD:-${XDG_CACHE_HOME:-$HOME/.cache}/bakeplan-e2e}
# The snapshot is `git archive` of v0.12.1-7 (469c1a8): with no .git to describe, its
# build takes the version from include/version.h.distrib, as in a release tarball.
VERSION=v0.12.1-7-g469c1a8
DEST=$BUILDS/solo5-469c1a8

say() { echo "e2e/solo5/setup.sh: $*" >&2; }

[ -r "$TARBALL" ] || { say "no Solo5 snapshot at $TARBALL (set BAKEPLAN_VENDOR)"; exit 2; }
for tool in cc make pkg-config sha256sum tar; do
    command -v "$tool" >/dev/null || { say "$tool is missing (apt-get install build-essential pkg-config)"; exit 2; }
done
if ! pkg-config --exists libseccomp; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing libseccomp-dev"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends libseccomp-dev >&2 ||
            { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends libseccomp-dev >&2; }
    else
        say "libseccomp-dev is missing (Solo5's tenders link it); install it as root"
        exit 2
    fi
fi

sum=$(sha256sum "$TARBALL" | cut -d' ' -f1)
built() { [ -f "$DEST/.bakeplan-built" ] && [ "$(cat "$DEST/.bakeplan-built")" = "$sum" ]; }
if built; then
    echo "$DEST"
    exit 0
fi

mkdir -p "$BUILDS"
# One build at a time; a run that waited finds the other's build done.
if command -v flock >/dev/null; then
    exec 9>"$BUILDS/solo5.lock"
    flock 9
    if built; then
        echo "$DEST"
        exit 0
    fi
fi
# Built where it stays: its toolchain links to its own folders by absolute path.  The
# stamp is written last, so a build cut short starts again from the tarball.
rm -rf "$DEST"
mkdir -p "$DEST"
tar -C "$DEST" --strip-components=1 -xzf "$TARBALL"
printf '%s\n' \
    "/* Written by bakeplan's e2e/solo5/setup.sh: the snapshot has no .git to describe. */" \
    "#ifndef __VERSION_H__" "#define __VERSION_H__" \
    "#define SOLO5_VERSION \"$VERSION\"" "#endif" >"$DEST/include/version.h.distrib"
say "building Solo5 $VERSION in $DEST"
(cd "$DEST" && ./configure.sh >&2 && make -j"$(nproc 2>/dev/null || echo 2)" >&2)
echo "$sum" >"$DEST/.bakeplan-built"
echo "$DEST"
