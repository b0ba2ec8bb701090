#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# update-patches.sh [TREE]
#
# Regenerates patches/ from the commits on top of the tag kvmnc-base in the
# QEMU git tree TREE (default: the one fetch-build.sh leaves in
# ${KVMNC_QEMU_CACHE:-/var/cache/kvmnc-qemu}/work/src, where the series is
# applied with git am, so: edit, commit or rebase there, then run this).
# The cover letter keeps the subject and text it has in patches/; then
# every patch is checked with the tree's own scripts/checkpatch.pl.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# KVMNC_QEMU_SERIES as for fetch-build.sh: 7.2 (patches/, work/) or 10.2
# (patches-10.2/, work-10.2/).
case ${KVMNC_QEMU_SERIES:-7.2} in
7.2) PATCHDIR=$HERE/patches WORKDIR=work ;;
10.2) PATCHDIR=$HERE/patches-10.2 WORKDIR=work-10.2 ;;
*) echo "$0: KVMNC_QEMU_SERIES=${KVMNC_QEMU_SERIES}: want 7.2 or 10.2" >&2; exit 2 ;;
esac
TREE=${1:-${KVMNC_QEMU_CACHE:-/var/cache/kvmnc-qemu}/$WORKDIR/src}
OUT=$PATCHDIR
COVER=$OUT/0000-cover-letter.patch

git -C "$TREE" rev-parse -q --verify kvmnc-base >/dev/null ||
	{ echo "$0: $TREE has no tag kvmnc-base" >&2; exit 1; }
[ -r "$COVER" ] || { echo "$0: $COVER is missing" >&2; exit 1; }

# Subject (after "[PATCH 0/N] ") and text (up to the shortlog) of the
# current cover letter.
subject=$(sed -n 's/^Subject: \[PATCH [0-9]*\/[0-9]*\] //p' "$COVER")
blurb=$(awk '/^$/ && !body { body = 1; next } body && /^libkvmnc developers \([0-9]+\):$/ { exit } body' "$COVER")
[ -n "$subject" ] && [ -n "$blurb" ] || { echo "$0: cannot read the cover letter's text" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$TREE" format-patch -q --cover-letter --no-signature -o "$tmp" kvmnc-base..HEAD
SUBJECT=$subject BLURB=$blurb python3 - "$tmp/0000-cover-letter.patch" <<'PY'
import os, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("*** SUBJECT HERE ***", os.environ["SUBJECT"], 1)
s = s.replace("*** BLURB HERE ***", os.environ["BLURB"].rstrip("\n"), 1)
open(p, "w").write(s)
PY
rm -f "$OUT"/[0-9][0-9][0-9][0-9]-*.patch
cp "$tmp"/*.patch "$OUT/"
ls "$OUT"
"$HERE/checkpatch.sh" "$TREE"
