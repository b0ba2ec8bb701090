#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# checkpatch.sh [QEMU_TREE]
#
# QEMU's own scripts/checkpatch.pl on every patch of the series except the
# cover letter; fails if any reports an error or a warning.  QEMU_TREE
# defaults to the tree fetch-build.sh extracted.
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
CP=$TREE/scripts/checkpatch.pl
[ -x "$CP" ] || { echo "$0: no $CP (run fetch-build.sh first, or name a QEMU tree)" >&2; exit 2; }

bad=0 n=0
for p in "$PATCHDIR"/[0-9][0-9][0-9][0-9]-*.patch; do
	case $(basename "$p") in 0000-*) continue ;; esac
	n=$((n + 1))
	# checkpatch.pl exits 0 on warnings; judge its summary line instead.
	out=$("$CP" "$p" 2>&1) || true
	summary=$(grep '^total: ' <<<"$out" || echo "total: no summary")
	echo "$(basename "$p"): $summary"
	if [[ $summary != "total: 0 errors, 0 warnings,"* ]]; then
		sed -n '/^\(ERROR\|WARNING\)/,/^$/p' <<<"$out"
		bad=$((bad + 1))
	fi
done
[ $n -gt 0 ] || { echo "$0: no patches in $PATCHDIR" >&2; exit 2; }
[ $bad -eq 0 ] || { echo "$bad of $n patches are not checkpatch clean" >&2; exit 1; }
echo "all $n patches are checkpatch clean"
