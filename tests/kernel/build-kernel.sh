#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-kernel.sh [-S SERIES] FLAVOUR   (FLAVOUR = stock | patched | patched-debug)
#
# SERIES names a directory patches/SERIES/ (default 6.12): its BASE pins the
# Debian linux-source package (DEB_PACKAGE at exactly DEB_VERSION, from the
# apt SUITE it names: "system", the machine's own sources, by default, or a
# private suite such as sid, see debian-fetch.sh), its 0001+ patches are the
# series.  Fetched with debian-fetch.sh (apt-get download into the cache,
# checked by apt against the archive's signed index; an installed
# linux-source, if any, is not used):
#   stock          no kernel (the stock runs boot Debian's own image of the
#                  same version, fetch-distro-kernel.sh debian-6.12 /
#                  debian-7.2): the UAPI headers and the static KVM
#                  selftests of the base;
#   patched        patches/SERIES/0*.patch applied, a kernel from
#                  `tinyconfig` + config.fragment + the series' own symbols
#                  (patches/SERIES/kconfig.fragment), its headers and
#                  selftests;
#   patched-debug  the same plus debug.fragment (SMP, ACPI, lockdep, KASAN).
# The results are cached in
#   ${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}/<flavour>-<series>-<key>/
# where <key> is a sha256 over the patches (patched flavours only), the
# fragments (patched flavours only), patches/SERIES/BASE and this script.  A
# cache hit costs well under a second.
#
# stdout: exactly one line, the output directory (bzImage, config and
#         System.map for the patched flavours; selftests/, headers/,
#         build.log, stamp).  Everything else: stderr.
# exit:   0 built or cached; 77 a patched flavour requested but
#         patches/SERIES holds no 0001+ patch yet (reason on stderr); 1 any
#         error (clear message).
#
# Environment: KVMNC_KERNEL_CACHE (cache root), KVMNC_JOBS (default nproc),
# KVMNC_KERNEL_VERBOSE=1 (show the make output instead of logging it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FRAGMENT=$HERE/config.fragment
DEBUG_FRAGMENT=$HERE/debug.fragment
CACHE=${KVMNC_KERNEL_CACHE:-/var/cache/kvmnc-kernel}
JOBS=${KVMNC_JOBS:-$(nproc)}

log() { printf '[build-kernel %s] %s\n' "${LABEL:-?}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

T_STAGE=$SECONDS
T_TOTAL=$SECONDS
stage_done() {
	log "stage '$1' took $((SECONDS - T_STAGE)) s"
	T_STAGE=$SECONDS
}

SERIES=6.12
while getopts "S:" opt; do
	case $opt in
	S) SERIES=$OPTARG ;;
	*) die "usage: $0 [-S SERIES] stock|patched|patched-debug" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || die "usage: $0 [-S SERIES] stock|patched|patched-debug"
FLAVOUR=$1
PATCHES=$ROOT/patches/$SERIES
REL=patches/$SERIES
if [ ! -d "$PATCHES" ] || [[ ! $SERIES =~ ^[0-9]+\.[0-9]+$ ]]; then
	die "no series '$SERIES' (want a directory patches/<major>.<minor>/, e.g. -S 6.12 or -S 7.2)"
fi
# The cache and work directories' name: the flavour of this series.
LABEL=$FLAVOUR-$SERIES
# The tier's fragment, then the series' own symbols (its device, its KUnit
# suite: patches/SERIES/kconfig.fragment, if any), then debug.fragment.
SERIES_FRAGMENT=()
[ ! -e "$PATCHES/kconfig.fragment" ] || SERIES_FRAGMENT=("$PATCHES/kconfig.fragment")
case $FLAVOUR in
stock) PATCHED=0 FRAGMENTS=() ;;
patched) PATCHED=1 FRAGMENTS=("$FRAGMENT" "${SERIES_FRAGMENT[@]}") ;;
patched-debug) PATCHED=1 FRAGMENTS=("$FRAGMENT" "${SERIES_FRAGMENT[@]}" "$DEBUG_FRAGMENT") ;;
*) die "unknown flavour '$FLAVOUR' (want stock, patched or patched-debug)" ;;
esac

# --- 1. the base ---------------------------------------------------------------
[ -r "$PATCHES/BASE" ] || die "$REL/BASE is missing"
base_get() { # KEY [DEFAULT]
	local v
	v=$(sed -n "s/^$1=//p" "$PATCHES/BASE" | tail -n1)
	[ -n "$v" ] || v=${2:-}
	[ -n "$v" ] || die "$REL/BASE has no $1= line"
	printf '%s' "$v"
}
SUITE=$(base_get SUITE system)
DEB_PACKAGE=$(base_get DEB_PACKAGE)
DEB_VERSION=$(base_get DEB_VERSION)
KERNELVERSION=$(base_get KERNELVERSION)
TARBALL=$(base_get TARBALL)

# The source package at exactly DEB_VERSION; its tarball is extracted from
# the .deb once per version (a 150 MB xz: reading it again costs seconds).
SRCDIR=$CACHE/src
TARBALL_FILE=$SRCDIR/${DEB_PACKAGE}_${DEB_VERSION}.tar.xz
if [ ! -s "$TARBALL_FILE" ]; then
	deb=$("$HERE/debian-fetch.sh" -s "$SUITE" -c "$CACHE" "$DEB_PACKAGE=$DEB_VERSION") ||
		die "cannot fetch $DEB_PACKAGE=$DEB_VERSION, the base $REL/BASE pins. If the archive no" \
			"longer has it (the lines above list what it has), re-base: set DEB_VERSION and" \
			"KERNELVERSION in $REL/BASE to a listed version, then prove the series on it with" \
			"patches/bisect-check.sh $REL and the tier"
	mkdir -p "$SRCDIR"
	dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./$TARBALL" >"$TARBALL_FILE.tmp" ||
		die "$deb has no $TARBALL ($REL/BASE's TARBALL)"
	mv "$TARBALL_FILE.tmp" "$TARBALL_FILE"
	# Older versions' tarballs are dead weight once the base moved.
	find "$SRCDIR" -maxdepth 1 -name "${DEB_PACKAGE}_*.tar.xz" ! -name "$(basename "$TARBALL_FILE")" -delete
fi
TARBALL=$TARBALL_FILE
# config.fragment picks CONFIG_KERNEL_LZ4; Kbuild calls the tool by name.
[ "$PATCHED" = 0 ] || command -v lz4 >/dev/null ||
	die "lz4 not found (apt-get install lz4): the kernel image is LZ4-compressed"

PATCH_LIST=()
if [ "$PATCHED" = 1 ]; then
	for p in "$PATCHES"/0*.patch; do
		[ -e "$p" ] || continue
		case $(basename "$p") in 0000-*) continue ;; esac
		PATCH_LIST+=("$p")
	done
	if [ ${#PATCH_LIST[@]} -eq 0 ]; then
		log "SKIP: $REL holds no 0001+ patch yet, nothing to build for the patched flavour"
		exit 77
	fi
fi

# --- 2. the cache key ------------------------------------------------------------
key_inputs=("${FRAGMENTS[@]}" "$PATCHES/BASE" "$HERE/build-kernel.sh")
# The patches applied, not the cover letter: its text changes no object.
if [ "$PATCHED" = 1 ]; then
	key_inputs+=("${PATCH_LIST[@]}")
fi
KEY=$(for f in "${key_inputs[@]}"; do
	printf '%s\n' "${f#"$ROOT"/}"
	sha256sum <"$f"
done | sha256sum | cut -c1-16)
OUT=$CACHE/$LABEL-$KEY

if [ -e "$OUT/stamp" ]; then
	log "cache hit: $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi

mkdir -p "$CACHE" || die "cannot create cache dir $CACHE (set KVMNC_KERNEL_CACHE or -Dkernel-cache-dir)"
exec 9>"$CACHE/.lock-$LABEL"
if ! flock -n 9; then
	log "another build of '$LABEL' is running, waiting for its lock"
	flock 9
fi
if [ -e "$OUT/stamp" ]; then
	log "cache hit (built while we waited): $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi
log "cache miss: building $OUT (key inputs: ${key_inputs[*]#"$ROOT"/})"
stage_done "verify base + key"

# --- 3. sources ----------------------------------------------------------------
# Each flavour has its own tree, work/<flavour>/src, extracted once per base
# version and built in src/out, i.e. srctree is "..": the compiler command
# lines of the two flavours are identical and ccache shares objects between
# them.  The patched tree is updated in place: the previously applied patch
# set (kept in work/patched/applied/) is reverse-applied, then the new one is
# applied, so only the files the patches touch get new mtimes and make
# rebuilds just those (deleting and re-extracting 1.5 GB is slow on CI disks).
WORK=$CACHE/work
SRC=$WORK/$LABEL/src
BUILD=$SRC/out
APPLIED=$WORK/$LABEL/applied
apply_one() { # DIR PATCH [-R]
	if command -v git >/dev/null; then
		(cd "$1" && git apply --whitespace=nowarn ${3:+"$3"} "$2") >&2
	else
		(cd "$1" && patch -p1 --batch --forward --fuzz=0 --no-backup-if-mismatch ${3:+"$3"} <"$2") >&2
	fi
}
extract() {
	log "extracting $TARBALL into $SRC"
	if [ -e "$SRC" ]; then
		# Removing a kernel tree is slow: move it aside, delete in background.
		mv "$SRC" "$WORK/$LABEL/trash.$$"
		(rm -rf "$WORK/$LABEL/trash.$$" &)
	fi
	rm -rf "$APPLIED" "$SRC.tmp"
	mkdir -p "$SRC.tmp"
	tar -xf "$TARBALL" -C "$SRC.tmp" --strip-components=1 || die "cannot extract $TARBALL"
	mv "$SRC.tmp" "$SRC"
	mkdir -p "$APPLIED"
	echo "$DEB_VERSION" >"$WORK/$LABEL/extracted"
}
mkdir -p "$WORK/$LABEL"
if [ "$(cat "$WORK/$LABEL/extracted" 2>/dev/null)" != "$DEB_VERSION" ] || [ ! -d "$SRC" ]; then
	extract
fi
# Keep the longest common prefix of the applied and the wanted patch set;
# revert the rest of the applied set (newest first), apply the rest of the
# wanted one.  Only files those patches touch get new mtimes.
prev=()
for p in "$APPLIED"/*.patch; do [ -e "$p" ] && prev+=("$p"); done
common=0
while [ "$common" -lt ${#prev[@]} ] && [ "$common" -lt ${#PATCH_LIST[@]} ] &&
	[ "$(basename "${prev[$common]}")" = "$(basename "${PATCH_LIST[$common]}")" ] &&
	cmp -s "${prev[$common]}" "${PATCH_LIST[$common]}"; do
	common=$((common + 1))
done
for ((i = ${#prev[@]} - 1; i >= common; i--)); do
	log "reverting previously applied $(basename "${prev[$i]}")"
	if ! apply_one "$SRC" "${prev[$i]}" -R; then
		log "cannot revert it cleanly; re-extracting"
		extract
		common=0
		break
	fi
	rm -f "${prev[$i]}"
done
for ((i = common; i < ${#PATCH_LIST[@]}; i++)); do
	p=${PATCH_LIST[$i]}
	log "applying $(basename "$p")"
	apply_one "$SRC" "$p" ||
		die "patch $(basename "$p") does not apply to $DEB_PACKAGE $DEB_VERSION (see the errors above); fix the series"
	cp "$p" "$APPLIED/"
done
[ "$common" -eq 0 ] || log "kept $common already applied patch(es)"
mkv=$(sed -n 's/^VERSION = //p;s/^PATCHLEVEL = //p;s/^SUBLEVEL = //p' "$SRC/Makefile" | paste -sd.)
[ "$mkv" = "$KERNELVERSION" ] ||
	die "the tree from $TARBALL is version $mkv, $REL/BASE pins KERNELVERSION=$KERNELVERSION"
stage_done "sources + patches (${#PATCH_LIST[@]} applied)"

# --- 4. config -------------------------------------------------------------------
export CCACHE_DIR=$CACHE/ccache
export CCACHE_BASEDIR=$WORK
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-4G}
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export KBUILD_BUILD_USER=kvmnc KBUILD_BUILD_HOST=kernel-tier KBUILD_BUILD_VERSION=1
MAKEARGS=(-C "$SRC" O=out ARCH=x86_64 "CC=ccache gcc" "HOSTCC=ccache gcc")
mkdir -p "$BUILD"
BUILDLOG=$BUILD/build.log
: >"$BUILDLOG"
run_make() {
	if [ "${KVMNC_KERNEL_VERBOSE:-0}" = 1 ]; then
		make "${MAKEARGS[@]}" "$@" >&2
	else
		make "${MAKEARGS[@]}" "$@" >>"$BUILDLOG" 2>&1 || {
			tail -n 60 "$BUILDLOG" >&2
			return 1
		}
	fi
}

# The stock runs boot Debian's own build of this source: only the patched
# flavours configure and build a kernel.
if [ "$PATCHED" = 1 ]; then
	[ -f "$BUILD/.config" ] && cp -p "$BUILD/.config" "$BUILD/.config.prev"
	run_make tinyconfig || die "make tinyconfig failed"
	(cd "$BUILD" && "$SRC/scripts/kconfig/merge_config.sh" -m -O . .config "${FRAGMENTS[@]}") >>"$BUILDLOG" 2>&1 ||
		die "merge_config.sh failed (see $BUILDLOG)"
	run_make olddefconfig || die "make olddefconfig failed"
	if [ -f "$BUILD/.config.prev" ] && cmp -s "$BUILD/.config" "$BUILD/.config.prev"; then
		mv "$BUILD/.config.prev" "$BUILD/.config" # same config: keep the old mtime
	else
		rm -f "$BUILD/.config.prev"
	fi

	# What the fragments ask for, the later fragment winning: SYM=value, or
	# "# SYM is not set", which is met by any .config without SYM=y/m.
	declare -A want=()
	order=()
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*} ;;
		"# CONFIG_"*" is not set") sym=${line#"# "} sym=${sym%" is not set"} ;;
		*) continue ;;
		esac
		[ -n "${want[$sym]+x}" ] || order+=("$sym")
		want[$sym]=$line
	done < <(cat "${FRAGMENTS[@]}")
	missing=()
	for sym in "${order[@]}"; do
		line=${want[$sym]}
		case $line in
		"# "*) grep -Eq "^${sym}=[ym]$" "$BUILD/.config" || continue ;;
		*) grep -qx -- "$line" "$BUILD/.config" && continue ;;
		esac
		missing+=("$line (have: $(grep -E "^(# )?${sym}[= ]" "$BUILD/.config" || echo 'not present'))")
	done
	if [ ${#missing[@]} -ne 0 ]; then
		for m in "${missing[@]}"; do log "fragment symbol dropped by Kconfig: $m"; done
		die "${#missing[@]} symbol(s) of ${FRAGMENTS[*]##*/} did not survive olddefconfig (missing dependency?)"
	fi
	stage_done "config"

	# --- 5. kernel ---
	ccache -z >/dev/null 2>&1 || true
	log "make bzImage -j$JOBS (log: $BUILDLOG)"
	run_make -j"$JOBS" bzImage || die "kernel build failed (log: $BUILDLOG)"
	ccache_stats=$(ccache -s 2>/dev/null | grep -Ei '^ *(hits|misses|cache hit|cache miss)' | tr -s ' ' | paste -sd';' || true)
	log "ccache: $ccache_stats"
	stage_done "bzImage"
fi

# --- 6. headers + static KVM selftests -------------------------------------------
run_make headers_install || die "make headers_install failed"
KST=$BUILD/kselftest-kvm
log "building the KVM selftests (static)"
if [ "${KVMNC_KERNEL_VERBOSE:-0}" = 1 ]; then
	make -C "$SRC/tools/testing/selftests/kvm" -j"$JOBS" ARCH=x86_64 "CC=ccache gcc" \
		OUTPUT="$KST" KHDR_INCLUDES="-isystem $BUILD/usr/include" EXTRA_CFLAGS=-static >&2
else
	make -C "$SRC/tools/testing/selftests/kvm" -j"$JOBS" ARCH=x86_64 "CC=ccache gcc" \
		OUTPUT="$KST" KHDR_INCLUDES="-isystem $BUILD/usr/include" EXTRA_CFLAGS=-static \
		>>"$BUILDLOG" 2>&1 || {
		tail -n 60 "$BUILDLOG" >&2
		die "KVM selftests build failed (log: $BUILDLOG)"
	}
fi
stage_done "headers + selftests"

# --- 7. publish into the cache ---------------------------------------------------
TMPOUT=$OUT.tmp.$$
rm -rf "$TMPOUT"
mkdir -p "$TMPOUT/selftests"
if [ "$PATCHED" = 1 ]; then
	cp "$BUILD/arch/x86/boot/bzImage" "$TMPOUT/bzImage"
	cp "$BUILD/.config" "$TMPOUT/config"
	cp "$BUILD/System.map" "$TMPOUT/System.map"
fi
cp -a "$BUILD/usr/include" "$TMPOUT/headers"
# Exactly the programs the (patched) selftests Makefile lists: a test that a
# previous patch set added and this one dropped may linger in $KST.
# shellcheck disable=SC2016 # $(TEST_GEN_PROGS) is for make, not the shell
progs=$(make -s --no-print-directory -C "$SRC/tools/testing/selftests/kvm" ARCH=x86_64 \
	OUTPUT="$KST" KHDR_INCLUDES="-isystem $BUILD/usr/include" \
	--eval='kvmnc-print-progs: ; @echo $(TEST_GEN_PROGS)' kvmnc-print-progs) ||
	die "cannot list the KVM selftests"
nprogs=0
for t in $progs; do
	rel=${t#"$KST"/}
	[ -f "$t" ] || die "selftest $rel was not built"
	mkdir -p "$TMPOUT/selftests/$(dirname "$rel")"
	# Without their DWARF (the guest has no addr2line; symbols stay): the
	# 102 programs of 7.2 make a 183 MiB initramfs with it, which Bochs
	# copies at guest speed.
	strip --strip-debug -o "$TMPOUT/selftests/$rel" "$t"
	nprogs=$((nprogs + 1))
done
log "published $nprogs selftests"
cp "$BUILDLOG" "$TMPOUT/build.log"
{
	echo "flavour=$FLAVOUR"
	echo "series=$SERIES"
	echo "key=$KEY"
	echo "base=$DEB_PACKAGE $DEB_VERSION"
	echo "kernelversion=$(cat "$BUILD/include/config/kernel.release" 2>/dev/null || echo "$KERNELVERSION")"
	for p in "${PATCH_LIST[@]}"; do echo "patch=$(basename "$p") $(sha256sum <"$p" | cut -c1-16)"; done
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - T_TOTAL)) s"
} >"$TMPOUT/stamp.tmp"
mv "$TMPOUT/stamp.tmp" "$TMPOUT/stamp"
rm -rf "$OUT"
mv "$TMPOUT" "$OUT"
# Keep this and the previous output of the flavour (a run of another
# checkout may still be booting it); older ones are dead weight.
# The exact pattern: "patched-*" alone would also match patched-debug-<key>.
# shellcheck disable=SC2010,SC2012 # names are <flavour>-<hex key>
{ ls -1dt "$CACHE/$LABEL"-* 2>/dev/null | grep -E "/${LABEL//./\\.}-[0-9a-f]{16}\$" | tail -n +3 || true; } |
	while read -r old; do rm -rf "$old"; done
stage_done "publish"
log "done in $((SECONDS - T_TOTAL)) s: $OUT"
printf '%s\n' "$OUT"
