#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fetch-build.sh [--no-install]
#
# Builds QEMU with a series applied, linked statically against the
# INSTALLED libkvmnc (pkg-config; PKG_CONFIG_PATH is honoured), configured
# for what the end-to-end test needs only: x86_64-softmmu, KVM, libkvmnc,
# no TCG and every optional feature off.  The binary runs inside the
# kernel tier's busybox initramfs, which has no libc: hence --static.
#
# KVMNC_QEMU_SERIES picks the QEMU and its series:
#   7.2  (default) Debian 12's qemu 1:7.2+dfsg-7+deb12u*, patches/, from
#        the machine's own apt sources (a deb-src entry is added if
#        missing);
#   10.2 Debian unstable's qemu 1:10.2.2+ds-1 exactly, patches-10.2/,
#        fetched through a private apt source list and state directory
#        (CACHE/apt-sid-src), nothing from unstable installed; it needs
#        Meson >= 1.5, so bookworm-backports' meson 1.7.0-1~bpo12+1 is
#        downloaded the same way (CACHE/apt-bookworm-backports) and
#        unpacked into CACHE/meson-<version>, never installed.
#
# The output is cached in
#   ${KVMNC_QEMU_CACHE:-/var/cache/kvmnc-qemu}/qemu-<key>/
# where <key> is a sha256 over the patches, this script, the QEMU source
# version and libkvmnc (its pkg-config version and the archive QEMU links).
# A cache hit costs about a second (dpkg-query and apt-get --print-uris).
#
# stdout: exactly one line, the output directory (qemu-system-x86_64,
#         stamp, build.log, configure-args).  Everything else: stderr,
#         with the time of each stage.
# exit:   0 built or cached; 1 any error (clear message).
#
# As root, missing build dependencies are installed with apt-get, and a
# deb-src entry for the Debian suites of /etc/apt/sources.list* is added
# when apt has none (so a fresh machine works); --no-install only checks.
# Environment: KVMNC_QEMU_SERIES, KVMNC_QEMU_CACHE, KVMNC_JOBS (default
# 2), KVMNC_NICE (default 5), KVMNC_QEMU_VERBOSE=1 (build output on
# stderr).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KVMNC_QEMU_CACHE:-/var/cache/kvmnc-qemu}
JOBS=${KVMNC_JOBS:-2}
NICE=${KVMNC_NICE:-5}
SERIES=${KVMNC_QEMU_SERIES:-7.2}
# Only what configure, the build and the static link need (not
# `apt-get build-dep qemu`, which pulls in every optional library).
DEPS=(dpkg-dev git build-essential python3 meson ninja-build pkg-config ccache
	libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev xz-utils)
case $SERIES in
7.2)
	PATCHES=$HERE/patches
	WORK=$CACHE/work
	# The series is written against this Debian source; later deb12u
	# updates are stable fixes and are accepted.
	WANT_VERSION_PREFIX=1:7.2+dfsg-7+deb12u
	SRC_SUITE=system
	MESON_PIN=''
	CONFIGURE_ARGS=(--target-list=x86_64-softmmu --without-default-features
		--enable-kvm --enable-libkvmnc --disable-tcg --enable-fdt=system --static
		--disable-debug-info --disable-install-blobs --disable-werror
		--with-git-submodules=ignore --audio-drv-list=)
	;;
10.2)
	PATCHES=$HERE/patches-10.2
	WORK=$CACHE/work-10.2
	# Exactly this version: unstable keeps no old ones, so a newer upload
	# is an error to act on (update the pin), not something to follow.
	WANT_VERSION=1:10.2.2+ds-1
	WANT_VERSION_PREFIX=$WANT_VERSION
	SRC_SUITE=sid
	# QEMU 10.2 needs Meson >= 1.5; Debian 12 has 1.0.1.
	MESON_PIN=1.7.0-1~bpo12+1
	# --without-default-features drops virtio-gpu, VGA and bochs-display
	# unless pixman is asked for; --disable-download replaces 7.2's
	# --with-git-submodules=ignore.
	CONFIGURE_ARGS=(--target-list=x86_64-softmmu --without-default-features
		--enable-kvm --enable-libkvmnc --disable-tcg --enable-fdt=system --static
		--disable-debug-info --disable-install-blobs --disable-werror
		--disable-download --enable-pixman --audio-drv-list=)
	;;
*)
	printf '[qemu-build] ERROR: KVMNC_QEMU_SERIES=%s: want 7.2 or 10.2\n' "$SERIES" >&2
	exit 1
	;;
esac

install=1
[ "${1:-}" = --no-install ] && install=0

log() { printf '[qemu-build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
T_STAGE=$SECONDS
T_TOTAL=$SECONDS
stage_done() {
	log "stage '$1' took $((SECONDS - T_STAGE)) s"
	T_STAGE=$SECONDS
}

# --- 1. build dependencies and the source entry -----------------------------
missing=()
for p in "${DEPS[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
	[ "$install" = 1 ] && [ "$(id -u)" = 0 ] ||
		die "missing build dependencies: ${missing[*]} (apt-get install ${missing[*]})"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
fi

# The deb-src stanzas mirror the Debian "deb" entries apt already has:
# same mirror, suites, components and key (deb822 .sources and one-line
# .list files alike); the standard Debian 12 mirrors if there are none.
SRC_LIST=/etc/apt/sources.list.d/kvmnc-qemu-src.sources
write_deb_src() {
	local tmp
	tmp=$(mktemp)
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -e "$f" ] && [ "$f" != "$SRC_LIST" ] || continue
			# deb822: one stanza per blank-line separated paragraph.
			awk 'BEGIN { RS = ""; FS = "\n" }
			{
				types = uris = suites = comps = signed = ""; enabled = 1
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/) continue
					split($i, kv, ":[ \t]*")
					k = tolower(kv[1]); v = substr($i, length(kv[1]) + 2)
					sub(/^[ \t]+/, "", v)
					if (k == "types") types = v
					else if (k == "uris") uris = v
					else if (k == "suites") suites = v
					else if (k == "components") comps = v
					else if (k == "signed-by") signed = v
					else if (k == "enabled" && tolower(v) == "no") enabled = 0
				}
				if (enabled && types ~ /(^| )deb( |$)/ && suites ~ /bookworm/ && uris ~ /debian/) {
					printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, suites, comps
					if (signed != "") printf "Signed-By: %s\n", signed
					printf "\n"
				}
			}' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -e "$f" ] || continue
			awk '$1 == "deb" && $0 ~ /bookworm/ && $0 ~ /debian/ { $1 = "deb-src"; print }' "$f"
		done
	} >"$tmp"
	if [ ! -s "$tmp" ]; then
		cat >"$tmp" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	fi
	# A one-line entry cannot go into a .sources file.
	if grep -q '^deb-src ' "$tmp"; then
		SRC_LIST=/etc/apt/sources.list.d/kvmnc-qemu-src.list
	fi
	install -m 644 "$tmp" "$SRC_LIST"
	rm -f "$tmp"
	log "added $SRC_LIST:"
	sed 's/^/    /' "$SRC_LIST" >&2
}

# A private apt view of one Debian suite (TYPE deb or deb-src), its state
# in the cache: the system's sources and status are never touched, and
# nothing is installed from it.  Sets APT_OPTS.  The mirror and key are the
# ones the system uses for Debian.  Release files of frozen snapshots may
# carry an expired Valid-Until: the signature is what is checked.
private_apt() { # TYPE SUITE
	local P=$CACHE/apt-$2-$1 mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$P/lists/partial" "$P/archives/partial"
	mirror=$(apt-cache policy 2>/dev/null | awk '$2 ~ /^https?:\/\// && $3 ~ /^[a-z]+\/main$/ {print $2; exit}')
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"
	printf '%s [signed-by=%s] %s %s main\n' "$1" "$keyring" "$mirror" "$2" >"$P/sources.list"
	APT_OPTS=(-o "Dir::Etc::SourceList=$P/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$P/lists" -o "Dir::Cache=$P" -o "Dir::Cache::archives=$P/archives"
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o Acquire::Check-Valid-Until=false)
}
# apt-get update of the private view unless its index already lists
# PKG at VERSION (source or binary).
private_apt_has() { # TYPE PKG VERSION
	if [ "$1" = deb-src ]; then
		# grep -c reads all its input: grep -q could end the pipe early,
		# which pipefail reports as a failure of the pipe.
		[ "$(apt-cache "${APT_OPTS[@]}" showsrc "$2" 2>/dev/null | grep -cx "Version: $3")" != 0 ]
	else
		apt-cache "${APT_OPTS[@]}" madison "$2" 2>/dev/null | awk -F' *\\| *' -v v="$3" '$2 == v {f = 1} END {exit !f}'
	fi
}
private_apt_update() { # TYPE PKG VERSION SUITE
	private_apt_has "$@" && return 0
	log "apt-get update (private $4 $1 index)"
	apt-get -q "${APT_OPTS[@]}" update >&2 || die "apt-get update of $4 ($1) failed"
	private_apt_has "$@" && return 0
	die "$4 has no $2 at $3 any more (pinned in $0); it has: $(
		if [ "$1" = deb-src ]; then
			apt-cache "${APT_OPTS[@]}" showsrc "$2" 2>/dev/null | sed -n 's/^Version: //p' | paste -sd' '
		else
			apt-cache "${APT_OPTS[@]}" madison "$2" 2>/dev/null | awk -F' *\\| *' '{print $2}' | paste -sd' '
		fi)"
}

if [ "$SRC_SUITE" = system ]; then
	APT_SRC_OPTS=()
	QEMU_SRC=qemu
	print_uris() { apt-get source --print-uris -q qemu 2>/dev/null | grep "^'" || true; }
	uris=$(print_uris)
	if [ -z "$uris" ]; then
		[ "$install" = 1 ] && [ "$(id -u)" = 0 ] ||
			die "apt has no deb-src entry for qemu (run as root without --no-install to add one)"
		write_deb_src
		apt-get update -q >&2 || die "apt-get update failed"
		uris=$(print_uris)
		[ -n "$uris" ] || die "apt-get source --print-uris qemu still finds nothing"
	fi
else
	private_apt deb-src "$SRC_SUITE"
	APT_SRC_OPTS=("${APT_OPTS[@]}")
	QEMU_SRC=qemu=$WANT_VERSION
	private_apt_update deb-src qemu "$WANT_VERSION" "$SRC_SUITE"
	uris=$(apt-get "${APT_SRC_OPTS[@]}" source --print-uris -q "$QEMU_SRC" 2>/dev/null | grep "^'" || true)
	[ -n "$uris" ] || die "apt-get source --print-uris $QEMU_SRC finds nothing in $SRC_SUITE"
fi
dsc_name=$(printf '%s\n' "$uris" | awk '{ print $2 }' | grep '\.dsc$' | head -n1)
upstream_version=${dsc_name#qemu_}
upstream_version=${upstream_version%.dsc}
QEMU_VERSION=1:$upstream_version
case $QEMU_VERSION in
"$WANT_VERSION_PREFIX"*) ;;
*) die "apt offers qemu $QEMU_VERSION; the series in $PATCHES is for $WANT_VERSION_PREFIX*" ;;
esac

# Meson, for a series that needs a newer one than Debian 12's: the pinned
# bookworm-backports package, unpacked into the cache and put on
# PYTHONPATH for configure (whose Python venv sees the system's packages).
MESON_DIR=''
if [ -n "$MESON_PIN" ]; then
	MESON_DIR=$CACHE/meson-$MESON_PIN
	if [ ! -e "$MESON_DIR/ok" ]; then
		private_apt deb bookworm-backports
		private_apt_update deb meson "$MESON_PIN" bookworm-backports
		rm -rf "$MESON_DIR" "$MESON_DIR.tmp"
		mkdir -p "$MESON_DIR.tmp/dl"
		chmod 0777 "$MESON_DIR.tmp/dl" # apt downloads as _apt
		(cd "$MESON_DIR.tmp/dl" && apt-get -q "${APT_OPTS[@]}" download "meson=$MESON_PIN" >&2) ||
			die "apt-get download meson=$MESON_PIN (bookworm-backports) failed"
		dpkg-deb -x "$MESON_DIR.tmp"/dl/meson_*.deb "$MESON_DIR.tmp/root" ||
			die "dpkg-deb -x meson failed"
		touch "$MESON_DIR.tmp/ok"
		mv "$MESON_DIR.tmp" "$MESON_DIR"
	fi
	[ -d "$MESON_DIR/root/usr/lib/python3/dist-packages/mesonbuild" ] ||
		die "$MESON_DIR has no mesonbuild (remove it and retry)"
	export PYTHONPATH=$MESON_DIR/root/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
fi

# --- 2. libkvmnc, as installed -------------------------------------------------
pkg-config --exists 'libkvmnc >= 1.1' ||
	die "libkvmnc >= 1.1 is not installed where pkg-config looks (PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}): install libkvmnc-dev or the library (meson install)"
KVMNC_VERSION=$(pkg-config --modversion libkvmnc)
KVMNC_LIBDIR=$(pkg-config --variable=libdir libkvmnc)
KVMNC_ARCHIVE=$KVMNC_LIBDIR/libkvmnc.a
[ -r "$KVMNC_ARCHIVE" ] ||
	die "$KVMNC_ARCHIVE is missing: a static QEMU needs the static library (libkvmnc-dev has it)"

PATCH_LIST=()
for p in "$PATCHES"/0*.patch; do
	case $(basename "$p") in 0000-*) continue ;; esac
	PATCH_LIST+=("$p")
done
[ ${#PATCH_LIST[@]} -ne 0 ] || die "no patches in $PATCHES"

# --- 3. the cache key ------------------------------------------------------------
KEY=$({
	for f in "$HERE/fetch-build.sh" "$PATCHES"/*.patch; do
		printf '%s\n' "${f#"$HERE"/}"
		sha256sum <"$f"
	done
	echo "qemu=$QEMU_VERSION"
	[ -z "$MESON_PIN" ] || echo "meson=$MESON_PIN"
	echo "libkvmnc=$KVMNC_VERSION"
	sha256sum <"$KVMNC_ARCHIVE"
} | sha256sum | cut -c1-16)
OUT=$CACHE/qemu-$KEY
if [ -e "$OUT/stamp" ]; then
	log "cache hit: $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi
mkdir -p "$CACHE" || die "cannot create cache dir $CACHE (set KVMNC_QEMU_CACHE)"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
	log "another QEMU build is running, waiting for its lock"
	flock 9
fi
if [ -e "$OUT/stamp" ]; then
	log "cache hit (built while we waited): $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi
log "cache miss: building $OUT (qemu $QEMU_VERSION, libkvmnc $KVMNC_VERSION from $KVMNC_LIBDIR)"
stage_done "dependencies + key"

# --- 4. sources ----------------------------------------------------------------
# One tree per source version, a git repository whose first commit (tag
# kvmnc-base) is the Debian source with Debian's own patches, as
# dpkg-source applies them.  A changed series is applied with git am in a
# scratch worktree, and the tree then checks the result out: git rewrites
# only the files that differ from what was built last, so ninja rebuilds
# only what the change touches.
DL=$WORK/dl/$upstream_version
SRC=$WORK/src
BUILD=$WORK/build
GITC=(git -c user.name="kvmnc qemu build" -c user.email=build@kvmnc.invalid
	-c advice.detachedHead=false)
GIT=("${GITC[@]}" -C "$SRC")
if [ ! -e "$DL/$dsc_name" ]; then
	rm -rf "$DL.tmp"
	mkdir -p "$DL.tmp"
	log "downloading qemu $QEMU_VERSION (apt-get source --download-only, $SRC_SUITE)"
	chmod 0777 "$DL.tmp" # apt downloads as _apt
	(cd "$DL.tmp" && apt-get "${APT_SRC_OPTS[@]}" source --download-only -q "$QEMU_SRC" >&2) ||
		die "apt-get source --download-only $QEMU_SRC failed"
	rm -rf "$DL"
	mv "$DL.tmp" "$DL"
fi
if [ "$(cat "$WORK/extracted" 2>/dev/null)" != "$QEMU_VERSION" ] || [ ! -d "$SRC/.git" ]; then
	log "extracting $dsc_name into $SRC"
	rm -rf "$SRC" "$SRC.tmp" "$BUILD"
	dpkg-source -x "$DL/$dsc_name" "$SRC.tmp" >&2 || die "dpkg-source -x failed"
	rm -rf "$SRC.tmp/.pc"
	mv "$SRC.tmp" "$SRC"
	"${GIT[@]}" init -q
	"${GIT[@]}" add -f -A
	"${GIT[@]}" commit -q -m "Debian qemu $QEMU_VERSION"
	"${GIT[@]}" tag kvmnc-base
	rm -f "$WORK/applied"
	echo "$QEMU_VERSION" >"$WORK/extracted"
fi
stage_done "download + extract"

# "<series hash> <commit>" of what the tree has checked out; the tree is
# also moved back when someone committed there since (the commits stay in
# the reflog; update-patches.sh is the way to publish them).
series=$(cat "${PATCH_LIST[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$WORK/applied" 2>/dev/null)" != "$series $("${GIT[@]}" rev-parse HEAD)" ]; then
	[ -z "$("${GIT[@]}" status --porcelain --untracked-files=no)" ] ||
		die "$SRC has uncommitted changes: commit them (update-patches.sh turns commits into patches/) or discard them"
	AM=$WORK/am
	rm -rf "$AM"
	"${GIT[@]}" worktree prune
	"${GIT[@]}" worktree add -q --detach "$AM" kvmnc-base
	"${GITC[@]}" -C "$AM" am -q "${PATCH_LIST[@]}" >&2 ||
		die "the series does not apply to qemu $QEMU_VERSION (git am; see above)"
	new=$("${GITC[@]}" -C "$AM" rev-parse HEAD)
	"${GIT[@]}" worktree remove --force "$AM"
	"${GIT[@]}" checkout -q --detach "$new"
	echo "$series $new" >"$WORK/applied"
fi
log "series: $("${GIT[@]}" log --format=%s kvmnc-base..HEAD | tac | paste -sd'|' | sed 's/|/ | /g')"
stage_done "patches"

# --- 5. configure and build --------------------------------------------------------
# ccache through Debian's compiler symlinks, so that QEMU's configure and
# Meson see plain "cc".
export PATH=/usr/lib/ccache:$PATH
export CCACHE_DIR=$CACHE/ccache CCACHE_BASEDIR=$WORK CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
mkdir -p "$BUILD"
BUILDLOG=$BUILD/build.log
: >"$BUILDLOG"
run() {
	if [ "${KVMNC_QEMU_VERBOSE:-0}" = 1 ]; then
		nice -n "$NICE" "$@" >&2
	else
		nice -n "$NICE" "$@" >>"$BUILDLOG" 2>&1 || {
			tail -n 60 "$BUILDLOG" >&2
			return 1
		}
	fi
}
# The build directory links the libkvmnc.a configure found, by its path:
# configure again when the library moved (a package instead of a prefix).
CONFIGURED="${CONFIGURE_ARGS[*]} libkvmnc=$KVMNC_ARCHIVE"
if [ "$(cat "$BUILD/configured" 2>/dev/null)" != "$CONFIGURED" ] ||
	[ ! -e "$BUILD/build.ninja" ]; then
	rm -rf "$BUILD"
	mkdir -p "$BUILD"
	: >"$BUILDLOG"
	(cd "$BUILD" && run "$SRC/configure" "${CONFIGURE_ARGS[@]}") ||
		die "configure failed (log: $BUILDLOG)"
	printf '%s\n' "${CONFIGURE_ARGS[*]}" >"$BUILD/configure-args"
	printf '%s\n' "$CONFIGURED" >"$BUILD/configured"
	stage_done "configure"
fi
grep -Eq '^#define CONFIG_LIBKVMNC( 1)?$' "$BUILD/config-host.h" ||
	die "configure did not enable libkvmnc (see $BUILDLOG)"
ccache -z >/dev/null 2>&1 || true
# ninja does not know the external libkvmnc.a as an input of the link: a
# library rebuilt in place (same path, new code) would leave the old one
# linked in a binary the key says has the new.  This is a cache miss, so
# the key changed: link again in every case (seconds).
rm -f "$BUILD/qemu-system-x86_64"
log "ninja -j$JOBS qemu-system-x86_64 (log: $BUILDLOG)"
run ninja -C "$BUILD" -j"$JOBS" qemu-system-x86_64 || die "build failed (log: $BUILDLOG)"
ccache_stats=$(ccache -s 2>/dev/null | grep -Ei '^ *(hits|misses|cache hit|cache miss)' | tr -s ' ' | paste -sd';' || true)
log "ccache: $ccache_stats"
stage_done "build"

# --- 6. check and publish ----------------------------------------------------------
BIN=$BUILD/qemu-system-x86_64
# grep -c reads all its input: grep -q could end the pipe early (pipefail).
if [ "$(readelf -l "$BIN" | grep -c 'Requesting program interpreter')" != 0 ]; then
	die "$BIN is dynamically linked; the guest initramfs has no libc"
fi
[ "$(nm "$BIN" | grep -c ' T kvmnc_region_prepare$')" = 1 ] ||
	die "$BIN does not contain libkvmnc (kvmnc_region_prepare)"
props=$("$BIN" -object memory-backend-ram,help 2>&1 || true)
grep -q 'noncoherent=' <<<"$props" || die "memory-backend-ram has no noncoherent property:
$props"
TMPOUT=$OUT.tmp.$$
rm -rf "$TMPOUT"
mkdir -p "$TMPOUT"
strip -o "$TMPOUT/qemu-system-x86_64" "$BIN"
cp "$BUILDLOG" "$TMPOUT/build.log"
cp "$BUILD/configure-args" "$TMPOUT/configure-args"
{
	echo "key=$KEY"
	echo "qemu=$QEMU_VERSION"
	echo "series=$SERIES"
	[ -z "$MESON_PIN" ] || echo "meson=$MESON_PIN"
	echo "libkvmnc=$KVMNC_VERSION $KVMNC_ARCHIVE $(sha256sum <"$KVMNC_ARCHIVE" | cut -c1-16)"
	for p in "${PATCH_LIST[@]}"; do echo "patch=$(basename "$p") $(sha256sum <"$p" | cut -c1-16)"; done
	echo "size=$(stat -c %s "$TMPOUT/qemu-system-x86_64")"
	echo "ccache=$ccache_stats"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - T_TOTAL)) s"
} >"$TMPOUT/stamp.tmp"
mv "$TMPOUT/stamp.tmp" "$TMPOUT/stamp"
rm -rf "$OUT"
mv "$TMPOUT" "$OUT"
# Keep this and the previous output (a run of another checkout may still
# be using it); older ones are dead weight.
# shellcheck disable=SC2010,SC2012 # names are qemu-<hex key>
{ ls -1dt "$CACHE"/qemu-* 2>/dev/null | grep -E '/qemu-[0-9a-f]{16}$' | tail -n +3 || true; } |
	while read -r old; do rm -rf "$old"; done
stage_done "publish"
log "done in $((SECONDS - T_TOTAL)) s: $OUT ($(($(stat -c %s "$OUT/qemu-system-x86_64") >> 20)) MiB)"
printf '%s\n' "$OUT"
