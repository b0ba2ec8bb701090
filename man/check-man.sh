#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Checks installed man pages (a meson install --destdir tree, or a Debian
# package's /usr/share/man):
#  - every symbol in libkvmnc.map and every public struct in kvmnc.h has a
#    section-3 page under its own name (a file or a link to one) whose NAME
#    section lists it; libkvmnc(7) and kvmnc-probe(1) exist;
#  - groff renders every page without a warning.
#
#   man/check-man.sh MANDIR [SRCDIR]
set -euo pipefail

mandir=${1:?usage: check-man.sh MANDIR [SRCDIR]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
map=$src/libkvmnc/libkvmnc.map
header=$src/include/kvmnc.h

symbols=$(sed -n 's/^[[:space:]]*\(kvmnc_[a-z0-9_]*\);/\1/p' "$map" | sort -u)
structs=$(sed -n 's/^struct \(kvmnc_[a-z0-9_]*\) {$/\1/p' "$header" | sort -u)

# The page a name is installed as, if any (plain or compressed).
page_of() {
	local f
	for f in "$mandir/man$2/$1.$2" "$mandir/man$2/$1.$2.gz"; do
		if [ -e "$f" ]; then
			echo "$f"
			return 0
		fi
	done
	return 1
}

missing=() unlisted=()
for name in $symbols $structs; do
	if ! f=$(page_of "$name" 3); then
		missing+=("$name")
	# lexgrog prints the NAME line: "file: \"a, b - description\"".
	elif ! lexgrog "$f" | sed 's/^[^"]*"//; s/ - .*//' | tr ',' '\n' |
		sed 's/^ *//' | grep -qxF "$name"; then
		unlisted+=("$name (installed as $f)")
	fi
done
for extra in libkvmnc:7 kvmnc-probe:1; do
	page_of "${extra%:*}" "${extra#*:}" >/dev/null || missing+=("${extra%:*}(${extra#*:})")
done

fail=0
if [ ${#missing[@]} -gt 0 ]; then
	echo "no man page for: ${missing[*]}"
	echo "  (add man/<name>.3.scd and its entry in man/meson.build; see man/README.md)"
	fail=1
fi
if [ ${#unlisted[@]} -gt 0 ]; then
	printf 'page does not list the name in its NAME section: %s\n' "${unlisted[@]}"
	fail=1
fi

# The project's pages only: MANDIR may be the system's /usr/share/man.
ours() {
	find "$mandir" -path '*/man[0-9]*/*' \( -name 'kvmnc*' -o -name 'libkvmnc*' \) "$@"
}

pages=0
while IFS= read -r -d '' f; do
	pages=$((pages + 1))
	warn=$(MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null || true)
	if [ -n "$warn" ]; then
		echo "$f: groff warnings:"
		printf '%s\n' "$warn" | sed 's/^/  /'
		fail=1
	fi
done < <(ours -type f -print0 | sort -z)

links=$(ours -type l -print | wc -l)
nsym=$(echo "$symbols" | wc -w)
nstruct=$(echo "$structs" | wc -w)
if [ $fail -eq 0 ]; then
	echo "man pages: $nsym symbols and $nstruct structs documented; $pages pages" \
		"($links links) render without a groff warning"
fi
exit $fail
