#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# checkpatch.sh SRC_TREE
#
# Runs SRC_TREE/scripts/checkpatch.pl --strict on every patch of the series
# in this directory (0001-*.patch onwards; the cover letter is exempt) and
# exits non-zero if any patch has an error, a warning or a check, naming
# the offending patches.  SRC_TREE is any Linux source tree whose
# checkpatch.pl to use, normally the Debian linux-source-6.12 base.
#
# checkpatch's SPDX license check runs scripts/spdxcheck.py, which needs the
# Python modules "ply" and "git" (Debian: python3-ply, python3-git); without
# them that one check is skipped with a Python traceback on stderr, and the
# rest of checkpatch still runs.
set -euo pipefail

usage() {
	echo "usage: $0 SRC_TREE" >&2
	exit 2
}

[ $# -eq 1 ] || usage
SRC=$(cd "$1" && pwd) || usage
CHECKPATCH=$SRC/scripts/checkpatch.pl
[ -x "$CHECKPATCH" ] || {
	echo "$0: $CHECKPATCH not found or not executable" >&2
	exit 2
}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Prefer the distribution's python3 (which has python3-ply) over a
# user-installed one that shadows it.
PATH=/usr/bin:$PATH

shopt -s nullglob
patches=()
for p in "$HERE"/[0-9][0-9][0-9][0-9]-*.patch; do
	case $(basename "$p") in 0000-*) continue ;; esac
	patches+=("$p")
done
[ ${#patches[@]} -gt 0 ] || {
	echo "$0: no patches in $HERE" >&2
	exit 2
}

failed=()
for p in "${patches[@]}"; do
	name=$(basename "$p")
	# --strict reports CHECKs too; a clean patch prints nothing with -q.
	if out=$(cd "$SRC" && "$CHECKPATCH" --strict --quiet --no-summary \
		--show-types "$p" 2>/dev/null) && [ -z "$out" ]; then
		echo "PASS  $name"
	else
		echo "FAIL  $name"
		printf '%s\n' "$out" | sed 's/^/      /'
		failed+=("$name")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "checkpatch --strict: ${#failed[@]} of ${#patches[@]} patches not clean: ${failed[*]}" >&2
	exit 1
fi
echo "checkpatch --strict: all ${#patches[@]} patches clean"
