#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# checkpatch.sh [SERIES_DIR] SRC_TREE
#
# Runs SRC_TREE/scripts/checkpatch.pl --strict on every patch of the series
# in SERIES_DIR (default: patches/6.12 beside this script; e.g. patches/7.2)
# (0001-*.patch onwards; the cover letter is exempt) and
# exits non-zero if any patch has an error, a check, or a warning other than
# the one accepted below, naming the offending patches.  SRC_TREE is any
# Linux source tree whose checkpatch.pl to use, normally the series' own
# base (SERIES_DIR/BASE).
#
# The one accepted report is
#   WARNING:FILE_PATH_CHANGES: added, moved or deleted file(s), does MAINTAINERS need updating?
# at most once per patch: the series adds files under directories that
# existing MAINTAINERS entries already cover (KVM, KVM x86, KVM selftests),
# so it has no MAINTAINERS hunk, and checkpatch asks the question for every
# patch that adds a file.  A patch that touches MAINTAINERS fails.
#
# checkpatch's SPDX license check runs scripts/spdxcheck.py, which needs the
# Python modules "ply" and "git" (Debian: python3-ply, python3-git); without
# them that one check is skipped with a Python traceback on stderr, and the
# rest of checkpatch still runs.
set -euo pipefail

usage() {
	echo "usage: $0 [SERIES_DIR] SRC_TREE" >&2
	exit 2
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case $# in
1) SERIES_DIR=$HERE/6.12 ;;
2) SERIES_DIR=$(cd "$1" && pwd) || usage; shift ;;
*) usage ;;
esac
SRC=$(cd "$1" && pwd) || usage
CHECKPATCH=$SRC/scripts/checkpatch.pl
[ -x "$CHECKPATCH" ] || {
	echo "$0: $CHECKPATCH not found or not executable" >&2
	exit 2
}
ACCEPTED='WARNING:FILE_PATH_CHANGES: added, moved or deleted file(s), does MAINTAINERS need updating?'

# Prefer the distribution's python3 (which has python3-ply) over a
# user-installed one that shadows it.
PATH=/usr/bin:$PATH

shopt -s nullglob
patches=()
for p in "$SERIES_DIR"/[0-9][0-9][0-9][0-9]-*.patch; do
	case $(basename "$p") in 0000-*) continue ;; esac
	patches+=("$p")
done
[ ${#patches[@]} -gt 0 ] || {
	echo "$0: no patches in $SERIES_DIR" >&2
	exit 2
}

failed=()
nr_accepted=0
for p in "${patches[@]}"; do
	name=$(basename "$p")
	# checkpatch exits non-zero on any warning, the accepted one included:
	# judge by its report instead, which must end in its summary line.
	out=$(cd "$SRC" && "$CHECKPATCH" --strict --show-types "$p" 2>/dev/null) || true
	summary=$(printf '%s\n' "$out" | grep -E '^total: [0-9]+ errors, [0-9]+ warnings, [0-9]+ checks' || true)
	reports=$(printf '%s\n' "$out" | grep -cE '^(ERROR|WARNING|CHECK):' || true)
	accepted=$(printf '%s\n' "$out" | grep -cxF "$ACCEPTED" || true)
	read -r errors warnings checks < <(printf '%s\n' "$summary" |
		sed -nE 's/^total: ([0-9]+) errors, ([0-9]+) warnings, ([0-9]+) checks.*/\1 \2 \3/p')
	why=
	if [ -z "$summary" ]; then
		why="checkpatch did not finish"
	elif grep -q '^diff --git a/MAINTAINERS ' "$p"; then
		why="touches MAINTAINERS (existing entries cover the new files)"
	elif [ "$errors" != 0 ] || [ "$checks" != 0 ] || [ "$warnings" != "$accepted" ] ||
		[ "$reports" != "$accepted" ] || [ "$accepted" -gt 1 ]; then
		why="$errors errors, $warnings warnings ($accepted accepted), $checks checks"
	fi
	if [ -z "$why" ]; then
		if [ "$accepted" = 1 ]; then
			echo "PASS  $name (accepted: FILE_PATH_CHANGES)"
			nr_accepted=$((nr_accepted + 1))
		else
			echo "PASS  $name"
		fi
	else
		echo "FAIL  $name: $why"
		printf '%s\n' "$out" | grep -vxF "$ACCEPTED" | sed 's/^/      /'
		failed+=("$name")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "checkpatch --strict: ${#failed[@]} of ${#patches[@]} patches not clean: ${failed[*]}" >&2
	exit 1
fi
echo "checkpatch --strict: all ${#patches[@]} patches clean" \
	"($nr_accepted with only the accepted FILE_PATH_CHANGES warning)"
