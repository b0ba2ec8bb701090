#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fetch-distro-kernel.sh NAME
# fetch-distro-kernel.sh --list   (every kernel: NAME SUITE FOLLOW PKG=VERSION...,
#                                  the pins as fetched, BASE's versions filled in)
#
# A distribution's own kernel for the tier, as distro-kernels.txt names it
# (e.g. debian-6.12): its packages fetched by exact version
# (debian-fetch.sh), the kernel image and the KVM modules with what they
# depend on taken out of them, and cached in
#   ${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}/NAME-<key>/
# where <key> is a sha256 over the resolved package versions and this
# script.  Contents: bzImage (the package's vmlinuz), modules/*.ko
# (decompressed on the host: busybox's insmod takes no .ko.xz; the kernel
# checks the appended signature all the same), modules.load (the load order
# and each module's role: "common", "intel" or "amd"), release (uname -r),
# stamp.
#
# stdout: exactly one line, the output directory.  Everything else: stderr.
# exit:   0 fetched or cached; 1 any error (clear message).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}
LIST=$HERE/distro-kernels.txt
NAME=${1:-}
log() { printf '[distro-kernel %s] %s\n' "${NAME:-?}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ $# -eq 1 ] || die "usage: $0 NAME|--list (NAME: one of $(awk '!/^#/ && NF {print $1}' "$LIST" | paste -sd' '))"

# distro-kernels.txt's lines without comments, BASE's versions filled in:
# the one reading of the pins, which version-watch.sh takes from --list.
# The stock pins follow the 6.12 series' base (debian-6.12 is its image).
base_get() { sed -n "s/^$1=//p" "$ROOT/patches/6.12/BASE" | tail -n1; }
pins_list() {
	local kv dv
	kv=$(base_get KERNELVERSION) dv=$(base_get DEB_VERSION)
	awk '!/^#/ && NF' "$LIST" | sed "s/@KERNELVERSION@/$kv/g; s/@DEB_VERSION@/$dv/g"
}
if [ "$NAME" = --list ]; then
	pins_list
	exit 0
fi

line=$(pins_list | awk -v n="$NAME" '$1 == n')
[ -n "$line" ] || die "no kernel '$NAME' in $LIST"
read -r _ suite follow specs <<<"$line"
read -r -a pins <<<"$specs"
fetch_args=(-s "$suite" -c "$CACHE")
[ "$follow" = - ] || fetch_args+=(-F "$follow")

T0=$SECONDS
mapfile -t debs < <("$HERE/debian-fetch.sh" "${fetch_args[@]}" "${pins[@]}") ||
	die "cannot fetch ${pins[*]}"
[ ${#debs[@]} -eq ${#pins[@]} ] || die "debian-fetch.sh gave ${#debs[@]} files for ${#pins[@]} packages"

# The versions really used (a followed series names other files than the pins).
used=()
for d in "${debs[@]}"; do
	used+=("$(dpkg-deb -f "$d" Package)=$(dpkg-deb -f "$d" Version)")
done
KEY=$({ printf '%s\n' "${used[@]}"; sha256sum <"$HERE/fetch-distro-kernel.sh"; } | sha256sum | cut -c1-16)
OUT=$CACHE/$NAME-$KEY
if [ -e "$OUT/stamp" ]; then
	log "cache hit: $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi

TMP=$OUT.tmp.$$
rm -rf "$TMP"
mkdir -p "$TMP/x" "$TMP/modules"
trap 'rm -rf "$TMP"' EXIT
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$TMP/x"; done
# Debian 12 puts the image in /boot; 7.2's linux-binary-* beside the modules.
images=()
while IFS= read -r -d '' f; do images+=("$f"); done < <(
	find "$TMP/x/boot" "$TMP/x/usr/lib/modules" "$TMP/x/lib/modules" -maxdepth 2 \
		\( -name 'vmlinuz-*' -o -name vmlinuz \) -type f -print0 2>/dev/null)
[ ${#images[@]} -eq 1 ] || die "want one vmlinuz in ${used[*]}, found ${#images[@]}"
moddirs=()
while IFS= read -r -d '' f; do moddirs+=("$f"); done < <(
	find "$TMP/x/lib/modules" "$TMP/x/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d -print0 2>/dev/null)
[ ${#moddirs[@]} -eq 1 ] || die "want one modules directory in ${used[*]}, found ${#moddirs[@]}"
release=$(basename "${moddirs[0]}")

# Module name (as modinfo writes it, '-' folded to '_') -> file.
declare -A path=()
while IFS= read -r -d '' f; do
	n=$(basename "$f")
	n=${n%%.ko*}
	path[${n//-/_}]=$f
done < <(find "${moddirs[0]}" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \) -print0)
modcat() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -dcq "$1" ;;
	*) cat "$1" ;;
	esac
}
# The .modinfo strings are NUL-separated key=value pairs: no kmod needed.
depends() { modcat "${path[$1]}" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '; }

# Each module after the ones it depends on, each once.
declare -A placed=()
order=()
place() { # NAME ROLE
	local m=$1 dep
	[ -n "${placed[$m]:-}" ] && return 0
	[ -n "${path[$m]:-}" ] || die "module $m (needed for KVM) is not in ${used[*]}"
	placed[$m]=visiting
	for dep in $(depends "$m"); do
		[ "${placed[$dep]:-}" != visiting ] || die "dependency loop at $m -> $dep"
		place "$dep" common
	done
	modcat "${path[$m]}" >"$TMP/modules/$m.ko" || die "cannot decompress ${path[$m]}"
	placed[$m]=placed
	order+=("$m $2")
}
place kvm common
place kvm_intel intel
place kvm_amd amd
printf '%s\n' "${order[@]}" >"$TMP/modules.load"

cp "${images[0]}" "$TMP/bzImage"
echo "$release" >"$TMP/release"
{
	echo "name=$NAME"
	echo "key=$KEY"
	echo "release=$release"
	for p in "${pins[@]}"; do echo "pinned=$p"; done
	for u in "${used[@]}"; do echo "package=$u"; done
	[ "${pins[*]}" = "${used[*]}" ] || echo "followed=the pinned version is gone from $suite; update $LIST"
	echo "modules=$(printf '%s\n' "${order[@]}" | awk '{print $1}' | paste -sd' ')"
	echo "fetched=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - T0)) s"
} >"$TMP/stamp.tmp"
mv "$TMP/stamp.tmp" "$TMP/stamp"
rm -rf "$TMP/x"
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
# Keep this and the previous output of the name; older ones are dead weight.
# shellcheck disable=SC2010,SC2012 # names are <name>-<hex key>
{ ls -1dt "$CACHE/$NAME"-* 2>/dev/null | grep -E "/$NAME-[0-9a-f]{16}\$" | tail -n +3 || true; } |
	while read -r old; do rm -rf "$old"; done
log "ready in $((SECONDS - T0)) s: $OUT ($release; $(paste -sd' ' "$OUT/modules.load" | tr -s ' '))"
printf '%s\n' "$OUT"
