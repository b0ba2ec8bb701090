#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# version-watch.sh: what the archive has against what the tier pins, so a
# re-pin is a one-line change made before anything breaks.  Reports, and
# never fails on its own account (exit 0 whatever it finds; CI prints it):
#
#   - patches/SERIES/BASE, for each series (6.12, 7.2): whether Debian's
#     suite the BASE names (SUITE=, default the system's) has a newer
#     linux-source-SERIES than DEB_VERSION and, if so, whether the series
#     still applies to it (the files the patches touch are taken from the
#     newer tarball and the patches applied in order, like `git am` would);
#   - each pin of distro-kernels.txt: whether the archive still has the
#     pinned version, and the newest image of the same kernel series;
#   - for every line, the one edit that re-pins it.
#
# Lines start with "version-watch:"; "ACTION" marks the ones that want an
# edit.  Environment: KVMNC_KERNEL_CACHE (as the other tier scripts).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}
say() { printf 'version-watch: %s\n' "$*"; }

# The apt options that read SUITE ("system" or a private suite such as
# sid), asked of debian-fetch.sh once per suite (it may refresh the
# index); why the index could not be read, if it could not.
declare -A suite_opts=() unreadable=()
read_suite() { # SUITE
	local out err
	[ -z "${suite_opts[$1]+x}" ] || return 0
	err=$(mktemp)
	if out=$("$HERE/debian-fetch.sh" -s "$1" -c "$CACHE" -A 2>"$err"); then
		suite_opts[$1]=$out unreadable[$1]=''
	else
		suite_opts[$1]='' unreadable[$1]=$(grep -E '^(E|W):|ERROR' "$err" | head -n2 | paste -sd' ')
	fi
	rm -f "$err"
}
# apt-cache over SUITE.
aptc() { # SUITE ARGS...
	local suite=$1 opts=()
	shift
	read_suite "$suite"
	[ -z "${suite_opts[$suite]}" ] || mapfile -t opts <<<"${suite_opts[$suite]}"
	apt-cache "${opts[@]}" "$@" 2>/dev/null
}
versions() { aptc "$1" madison "$2" | awk -F' *\\| *' '{print $2}' | sort -u; }
newest_version() { # list on stdin -> the highest by Debian's ordering
	local best='' v
	while read -r v; do
		if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
	done
	printf '%s' "$best"
}
base_get() { # BASE-FILE KEY [DEFAULT]
	local v
	v=$(sed -n "s/^$2=//p" "$1" | tail -n1)
	printf '%s' "${v:-${3:-}}"
}

# --- patches/SERIES/BASE ------------------------------------------------------
for base in "$ROOT"/patches/*/BASE; do
	sdir=$(dirname "$base") rel=patches/$(basename "$(dirname "$base")")
	pkg=$(base_get "$base" DEB_PACKAGE) ver=$(base_get "$base" DEB_VERSION)
	tarball=$(base_get "$base" TARBALL) suite=$(base_get "$base" SUITE system)
	read_suite "$suite"
	if [ -n "${unreadable[$suite]}" ]; then
		say "$rel/BASE $pkg: cannot tell, the index of $suite could not be read (${unreadable[$suite]})"
		continue
	fi
	have=$(versions "$suite" "$pkg")
	newest=$(newest_version <<<"$have")
	mapfile -t patchset < <(find "$sdir" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
	if [ -z "$have" ]; then
		say "$rel/BASE $pkg: $suite lists no version (no apt index? run apt-get update)"
	elif ! grep -qxF -- "$ver" <<<"$have"; then
		say "ACTION $rel/BASE $pkg $ver is no longer in $suite (it has $(paste -sd' ' <<<"$have"));" \
			"re-base on $newest: DEB_VERSION=$newest in $rel/BASE, then patches/bisect-check.sh $rel"
	elif [ "$newest" = "$ver" ]; then
		say "$rel/BASE $pkg $ver is the newest in $suite"
	elif [ ${#patchset[@]} -eq 0 ]; then
		say "ACTION $rel/BASE $pkg: $suite has $newest, newer than $ver; $rel holds no patch yet." \
			"Re-base: DEB_VERSION=$newest and KERNELVERSION=${newest%%-*} in $rel/BASE"
	else
		# Only the files the series touches are extracted and patched: the
		# whole tree would cost a minute for the same answer.
		work=$(mktemp -d)
		files=$(sed -n 's|^--- a/||p' "${patchset[@]}" | sed 's/\t.*//' | sort -u)
		verdict=''
		if deb=$("$HERE/debian-fetch.sh" -s "$suite" -c "$CACHE" "$pkg=$newest" 2>"$work/fetch.log"); then
			top=$(dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | tar -xOf - "./$tarball" 2>/dev/null |
				tar -tJf - 2>/dev/null | head -n1 | cut -d/ -f1)
			mkdir -p "$work/src"
			# shellcheck disable=SC2046,SC2001 # one path per word, each line prefixed
			dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./$tarball" |
				tar -xJf - -C "$work/src" --strip-components=1 $(sed "s|^|$top/|" <<<"$files") 2>/dev/null
			for p in "${patchset[@]}"; do
				if ! (cd "$work/src" && patch -p1 --batch --forward --fuzz=0 --silent <"$p" >"$work/patch.log" 2>&1); then
					verdict="does NOT apply: $(basename "$p") fails ($(head -n2 "$work/patch.log" | paste -sd' '))"
					break
				fi
			done
			[ -n "$verdict" ] || verdict="still applies (all ${#patchset[@]} patches, no fuzz)"
		else
			verdict="could not be fetched to check ($(tail -n1 "$work/fetch.log"))"
		fi
		rm -rf "$work"
		say "ACTION $rel/BASE $pkg: $suite has $newest, newer than $ver; the series $verdict." \
			"Re-base: DEB_VERSION=$newest and KERNELVERSION=${newest%%-*} in $rel/BASE, then patches/bisect-check.sh $rel"
	fi
done

# --- distro-kernels.txt -----------------------------------------------------------
kv=$(base_get "$ROOT/patches/6.12/BASE" KERNELVERSION)
while read -r name suite _ specs; do
	# An index that cannot be read says nothing about what the archive has.
	read_suite "$suite"
	if [ -n "${unreadable[$suite]}" ]; then
		say "$name: cannot tell, the index of $suite could not be read (${unreadable[$suite]})"
		continue
	fi
	spec=${specs%% *} # the package holding the image names the kernel
	p=${spec%%=*} v=${spec#*=}
	up=${v%%-*}
	series=${up%.*}
	if versions "$suite" "$p" | grep -qxF -- "$v"; then
		state="pinned $p=$v is in $suite"
	else
		state="ACTION pinned $p=$v is gone from $suite"
	fi
	# The same flavour of every version of the series: the package name with
	# its version part (upstream version, or Debian 12's ABI number) varied.
	prefix=${p%%"$series"*}
	vpart='(\.[0-9]+|\.0-[0-9]+)'
	suffix=$(sed -E "s/^${prefix//./\\.}${series//./\\.}$vpart//" <<<"$p")
	re="^${prefix//./\\.}${series//./\\.}$vpart${suffix//+/\\+}\$"
	best='' bestpkg=''
	while read -r cand; do
		[[ $cand =~ $re ]] || continue
		cv=$(versions "$suite" "$cand" | newest_version)
		if [ -n "$cv" ] && { [ -z "$best" ] || dpkg --compare-versions "$cv" gt "$best"; }; then
			best=$cv bestpkg=$cand
		fi
	done < <(aptc "$suite" pkgnames "$prefix$series.")
	where=tests/kernel/distro-kernels.txt
	case $specs in *"$kv"*) where="patches/6.12/BASE (this pin follows it)" ;; esac
	if [ -z "$best" ] || [ "$best" = "$v" ]; then
		say "$name: $state, the newest of $series"
	else
		say "ACTION $name: ${state#ACTION }; $suite has $bestpkg=$best: re-pin it in $where"
	fi
done < <("$HERE/fetch-distro-kernel.sh" --list)
exit 0
