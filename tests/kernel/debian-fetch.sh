#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# debian-fetch.sh [-s SUITE] [-c CACHE] [-F SERIES] PACKAGE=VERSION...
# debian-fetch.sh [-s SUITE] [-c CACHE] -A
#
# Puts the .deb of each PACKAGE at exactly VERSION into CACHE/debs/ and
# prints its path, one line per package, in argument order.  apt-get
# download fetches it and checks its hash against the archive's signed
# index, so a cached file is one apt verified; nothing is installed, and
# whatever version of PACKAGE the system has installed does not matter.
#
#   -s SUITE   where to look: "system" (default: the machine's own apt
#              sources, i.e. Debian 12 and its security archive) or a
#              Debian suite name such as "sid", read through a private
#              source list and state directory under CACHE/apt-SUITE/
#              (Dir::Etc::SourceList, Dir::State::Lists): nothing from that
#              suite is ever installed on the system.
#   -F SERIES  for a suite that keeps no old versions (sid drops a version
#              the day the next one arrives): when VERSION is gone, take
#              the newest version of the same upstream SERIES (e.g. 7.2)
#              instead, substituting it in the package names too, and say
#              so on stderr (the printed paths name the version used).
#              Without -F a missing version is an error.
#   -c CACHE   default ${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}
#   -A         print the apt options that read SUITE, one per line (for
#              apt-cache look-ups of its versions), after refreshing a
#              private suite's index when it is over a day old
#
# Exit: 0 all present; 1 a version the archive does not have (the message
# lists the versions it has) or any other error.
set -euo pipefail

SUITE=system
CACHE=${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}
FOLLOW=''
OPTS_ONLY=0
log() { printf '[debian-fetch] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
while getopts "s:c:F:A" opt; do
	case $opt in
	A) OPTS_ONLY=1 ;;
	s) SUITE=$OPTARG ;;
	c) CACHE=$OPTARG ;;
	F) FOLLOW=$OPTARG ;;
	*) sed -n "3,31p" "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || [ "$OPTS_ONLY" = 1 ] || die "usage: $0 [-s SUITE] [-c CACHE] [-F SERIES] PACKAGE=VERSION..."
for spec in "$@"; do
	case $spec in *?=?*) ;; *) die "want PACKAGE=VERSION, got '$spec'" ;; esac
done
DEBS=$CACHE/debs
mkdir -p "$DEBS" || die "cannot create $DEBS (set KVMNC_KERNEL_CACHE)"

APT_OPTS=()
if [ "$SUITE" != system ]; then
	# The private suite is read from the mirror the system already uses
	# for Debian, signed by the same keyring; the state lives in the cache.
	P=$CACHE/apt-$SUITE
	mkdir -p "$P/lists/partial" "$P/archives/partial"
	mirror=$(apt-cache policy 2>/dev/null | awk '$2 ~ /^https?:\/\// && $3 ~ /^[a-z]+\/main$/ {print $2; exit}')
	[ -n "$mirror" ] || die "no Debian mirror in the system's apt sources (run apt-get update first)"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"
	printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$SUITE" >"$P/sources.list"
	APT_OPTS=(-o "Dir::Etc::SourceList=$P/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$P/lists" -o "Dir::Cache=$P" -o "Dir::Cache::archives=$P/archives"
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1)
fi

# Refresh the index once per call at most: for the private suite when it
# is over a day old or lacks a version, for the system when it lacks one.
refreshed=0
refresh() {
	[ "$refreshed" = 0 ] || return 1
	refreshed=1
	log "apt-get update ($SUITE)"
	apt-get -q "${APT_OPTS[@]}" update >&2 || die "apt-get update ($SUITE) failed"
}
if [ "$SUITE" != system ]; then
	if [ -z "$(find "$CACHE/apt-$SUITE/lists" -name '*_Packages*' -mtime -1 2>/dev/null)" ]; then
		refresh
	fi
fi

if [ "$OPTS_ONLY" = 1 ]; then
	[ ${#APT_OPTS[@]} -eq 0 ] || printf '%s\n' "${APT_OPTS[@]}"
	exit 0
fi

have_version() { # PKG VER: does the index list exactly that version?
	apt-cache "${APT_OPTS[@]}" madison "$1" 2>/dev/null | awk -F' *\\| *' -v v="$2" '$2 == v {f = 1} END {exit !f}'
}
versions_of() {
	apt-cache "${APT_OPTS[@]}" madison "$1" 2>/dev/null | awk -F' *\\| *' '{print $2}' | paste -sd' '
}
deb_name() { # PKG VER -> the file name apt-get download gives
	local v=${2//:/%3a} arch
	arch=$(apt-cache "${APT_OPTS[@]}" show "$1=$2" 2>/dev/null | sed -n 's/^Architecture: //p' | head -n1)
	printf '%s_%s_%s.deb' "$1" "$v" "${arch:-amd64}"
}

# Newest version of SERIES for a package named after its version
# (linux-binary-7.2.13+deb14-cloud-amd64): prints "OLDVER NEWVER".
follow_series() { # PKG VER
	local up=${2%%-*} prefix suffix best
	case $up in "$FOLLOW".*) ;; *) die "-F $FOLLOW: $1=$2 is not of that series" ;; esac
	prefix=${1%%"$up"*} suffix=${1#*"$up"}
	best=$(apt-cache "${APT_OPTS[@]}" pkgnames "$prefix$FOLLOW." |
		while read -r n; do
			v=${n#"$prefix"} v=${v%"$suffix"}
			if [ "$prefix$v$suffix" = "$n" ] && [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
				echo "$v"
			fi
		done | sort -V | tail -n1)
	[ -n "$best" ] || return 1
	printf '%s %s\n' "$up" "$best"
}

specs=("$@")
missing=()
for spec in "${specs[@]}"; do
	pkg=${spec%%=*} ver=${spec#*=}
	[ -s "$DEBS/$(deb_name "$pkg" "$ver")" ] && continue
	have_version "$pkg" "$ver" || { refresh || true; }
	have_version "$pkg" "$ver" || missing+=("$spec")
done

if [ ${#missing[@]} -ne 0 ] && [ -n "$FOLLOW" ]; then
	read -r old new < <(follow_series "${missing[0]%%=*}" "${missing[0]#*=}") ||
		die "$SUITE has no version of series $FOLLOW for ${missing[0]%%=*}"
	msg="pinned $old is no longer in $SUITE; following series $FOLLOW to $new"
	log "NOTE: $msg (update the pin to stop this)"
	followed=()
	for spec in "${specs[@]}"; do
		pkg=${spec%%=*}
		pkg=${pkg//$old/$new}
		ver=$(apt-cache "${APT_OPTS[@]}" madison "$pkg" 2>/dev/null | awk -F' *\\| *' 'NR == 1 {print $2}')
		[ -n "$ver" ] || die "$SUITE has no $pkg"
		followed+=("$pkg=$ver")
	done
	specs=("${followed[@]}")
	missing=()
fi
if [ ${#missing[@]} -ne 0 ]; then
	for spec in "${missing[@]}"; do
		log "$SUITE has no ${spec%%=*} at ${spec#*=}; it has: $(versions_of "${spec%%=*}")"
	done
	die "pinned version(s) gone from the archive: ${missing[*]}"
fi

for spec in "${specs[@]}"; do
	pkg=${spec%%=*} ver=${spec#*=}
	f=$DEBS/$(deb_name "$pkg" "$ver")
	if [ ! -s "$f" ]; then
		tmp=$(mktemp -d "$DEBS/.dl.XXXXXX")
		log "apt-get download $pkg=$ver ($SUITE)"
		# apt drops privileges to _apt for downloads: the directory must be
		# writable by it.
		chmod 0777 "$tmp"
		if ! (cd "$tmp" && apt-get -q "${APT_OPTS[@]}" download "$pkg=$ver" >&2); then
			rm -rf "$tmp"
			die "apt-get download $pkg=$ver failed"
		fi
		got=("$tmp"/*.deb)
		[ ${#got[@]} -eq 1 ] && [ -s "${got[0]}" ] || { rm -rf "$tmp"; die "no .deb for $pkg=$ver"; }
		mv "${got[0]}" "$f"
		rm -rf "$tmp"
	fi
	dpkg-deb --info "$f" >/dev/null 2>&1 || die "$f is not a valid .deb (remove it and retry)"
	printf '%s\n' "$f"
done
