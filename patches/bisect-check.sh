#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bisect-check.sh [SERIES_DIR] SRC_TREE BUILD_DIR
#
# Checks that the series in SERIES_DIR (default: patches/6.12 beside this
# script; e.g. patches/7.2) is bisectable: copies the pristine base SRC_TREE
# (Debian's linux-source of SERIES_DIR/BASE) to BUILD_DIR/src, then builds
# the base and, applying the patches one at a time (0001 onwards,
# `patch -p1`), the kernel after each patch, in every configuration of the
# series (below), each out of tree in its own BUILD_DIR/obj-NAME so that
# each builds incrementally.  A configuration is `make tinyconfig` plus the
# base fragment below (or the file named by $KVMNC_FRAGMENT), the series'
# own symbols (SERIES_DIR/kconfig.fragment, if any) and the
# configuration's own lines, merged with merge_config.sh -m and completed by
# olddefconfig, regenerated at every step so that symbols a patch adds are
# picked up.
#
# The configurations: SERIES_DIR/bisect.conf, one per line, NAME then the
# CONFIG_ lines merged last (CONFIG_X=n turns X off), or without that file
#   y        KVM, kvm_intel and kvm_amd built in (the base fragment alone)
#   modules  CONFIG_MODULES=y CONFIG_KVM_INTEL=m CONFIG_KVM_AMD=m
#            CONFIG_KVM_WERROR=y
#   off      every symbol of SERIES_DIR/kconfig.fragment =n (the series'
#            new options off; $KVMNC_FRAGMENT_OFF names another file)
#
# For each patch, the .c files it touches outside tools/ are also compiled
# with W=1 (`make W=1 path/file.o`, in the first configuration) before and
# after the patch: a W=1 warning the patch adds fails the step.  After
# every patch that touches the KVM selftests, and once more after the last
# patch, it installs the UAPI headers and builds, statically, the series'
# selftests that exist at that point (SERIES_DIR/bisect.conf's
# `selftests` line, or every tools/testing/selftests/kvm/x86*/*.c the
# series adds) and set_memory_region_test.
#
# Prints one line per step (PASS/FAIL, seconds) and exits non-zero if any
# step failed.  Logs: BUILD_DIR/logs/.  Environment: KVMNC_JOBS (default 2),
# KVMNC_CC (default "ccache gcc" if ccache is installed, else gcc),
# KVMNC_FRAGMENT, KVMNC_FRAGMENT_OFF, KVMNC_CONFIGS="y modules" (only these
# configurations), KVMNC_PATCHES=N (only the first N patches),
# KVMNC_KEEP_SRC=1 to reuse an existing BUILD_DIR/src (it must then be the
# pristine base; it is re-copied otherwise), KVMNC_RESUME=1 to go on with an
# interrupted run: BUILD_DIR/src and the obj dirs are kept, the patches
# already in src (they reverse-apply) are not applied again, and the build
# starts with the last of them.
set -euo pipefail

usage() {
	echo "usage: $0 [SERIES_DIR] SRC_TREE BUILD_DIR" >&2
	exit 2
}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case $# in
2) SERIES_DIR=$HERE/6.12 ;;
3) SERIES_DIR=$(cd "$1" && pwd) || usage; shift ;;
*) usage ;;
esac
[ -r "$SERIES_DIR/BASE" ] || { echo "$0: $SERIES_DIR has no BASE: not a series directory" >&2; exit 2; }
SRC_TREE=$(cd "$1" && pwd) || usage
mkdir -p "$2"
BUILD_DIR=$(cd "$2" && pwd)
JOBS=${KVMNC_JOBS:-2}
if [ -z "${KVMNC_CC:-}" ]; then
	if command -v ccache >/dev/null; then KVMNC_CC="ccache gcc"; else KVMNC_CC=gcc; fi
fi
SRC=$BUILD_DIR/src
LOGS=$BUILD_DIR/logs

if [ ! -f "$SRC_TREE/Makefile" ] || [ ! -x "$SRC_TREE/scripts/kconfig/merge_config.sh" ]; then
	echo "$0: $SRC_TREE does not look like a kernel source tree" >&2
	exit 2
fi
case $BUILD_DIR/ in "$SRC_TREE"/*)
	echo "$0: BUILD_DIR must not be inside SRC_TREE" >&2; exit 2 ;;
esac
want=$(sed -n 's/^KERNELVERSION=//p' "$SERIES_DIR/BASE" | tail -n1)
have=$(sed -n 's/^VERSION = //p;s/^PATCHLEVEL = //p;s/^SUBLEVEL = //p' "$SRC_TREE/Makefile" | paste -sd.)
[ -z "$want" ] || [ "$want" = "$have" ] ||
	{ echo "$0: $SRC_TREE is $have, $SERIES_DIR/BASE pins KERNELVERSION=$want" >&2; exit 2; }

shopt -s nullglob
PATCHES=()
for p in "$SERIES_DIR"/[0-9][0-9][0-9][0-9]-*.patch; do
	case $(basename "$p") in 0000-*) continue ;; esac
	PATCHES+=("$p")
done
[ ${#PATCHES[@]} -gt 0 ] || { echo "$0: no patches in $SERIES_DIR" >&2; exit 2; }
if [ -n "${KVMNC_PATCHES:-}" ] && [ "$KVMNC_PATCHES" -lt ${#PATCHES[@]} ]; then
	PATCHES=("${PATCHES[@]:0:$KVMNC_PATCHES}")
fi

mkdir -p "$LOGS"
FRAGMENT=$BUILD_DIR/kvm.fragment
if [ -n "${KVMNC_FRAGMENT:-}" ]; then
	cp "$KVMNC_FRAGMENT" "$FRAGMENT"
else
	cat >"$FRAGMENT" <<'FRAG'
CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_CPU_SUP_INTEL=y
CONFIG_CPU_SUP_AMD=y
CONFIG_X86_LOCAL_APIC=y
CONFIG_VIRTUALIZATION=y
CONFIG_KVM=y
CONFIG_KVM_INTEL=y
CONFIG_KVM_AMD=y
CONFIG_EXPERT=y
CONFIG_KVM_SW_PROTECTED_VM=y
CONFIG_KUNIT=y
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_FUTEX=y
CONFIG_SHMEM=y
CONFIG_TMPFS=y
CONFIG_TRANSPARENT_HUGEPAGE=y
CONFIG_FTRACE=y
CONFIG_ENABLE_DEFAULT_TRACERS=y
FRAG
fi
# The series' own symbols (its device, its KUnit suite).
SERIES_FRAGMENT=$SERIES_DIR/kconfig.fragment
[ -f "$SERIES_FRAGMENT" ] && cat "$SERIES_FRAGMENT" >>"$FRAGMENT"

# The configurations: NAME -> the fragment of its own lines.
CONFIGS=()
add_config() { # NAME CONFIG-LINE...
	local name=$1
	shift
	CONFIGS+=("$name")
	printf '%s\n' "$@" >"$BUILD_DIR/config-$name.fragment"
}
off_lines() {
	local f=${KVMNC_FRAGMENT_OFF:-$SERIES_FRAGMENT}
	[ -f "$f" ] || return 0
	sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1=n/p' "$f"
}
SELFTESTS_LINE=''
if [ -f "$SERIES_DIR/bisect.conf" ]; then
	while read -r name rest; do
		case $name in '' | '#'*) continue ;; selftests) SELFTESTS_LINE=$rest; continue ;; esac
		read -r -a lines <<<"$rest"
		if [ "$name" = off ] && [ ${#lines[@]} -eq 0 ]; then mapfile -t lines < <(off_lines); fi
		[ "$name" != off ] || [ -z "${KVMNC_FRAGMENT_OFF:-}" ] || mapfile -t lines < <(off_lines)
		add_config "$name" "${lines[@]}"
	done <"$SERIES_DIR/bisect.conf"
else
	add_config y
	add_config modules CONFIG_MODULES=y CONFIG_KVM_INTEL=m CONFIG_KVM_AMD=m CONFIG_KVM_WERROR=y
	mapfile -t off < <(off_lines)
	[ ${#off[@]} -eq 0 ] || add_config off "${off[@]}"
fi
if [ -n "${KVMNC_CONFIGS:-}" ]; then
	keep=()
	for c in "${CONFIGS[@]}"; do
		case " $KVMNC_CONFIGS " in *" $c "*) keep+=("$c") ;; esac
	done
	CONFIGS=("${keep[@]}")
fi
[ ${#CONFIGS[@]} -gt 0 ] || { echo "$0: no configuration to build" >&2; exit 2; }
echo "series $SERIES_DIR, ${#PATCHES[@]} patches, configurations: ${CONFIGS[*]}"

RESUME=${KVMNC_RESUME:-0}
if [ "$RESUME" = 1 ] && [ ! -f "$SRC/Makefile" ]; then
	echo "$0: KVMNC_RESUME=1 but $SRC holds no tree" >&2
	exit 2
fi
if [ "$RESUME" != 1 ] && { [ "${KVMNC_KEEP_SRC:-0}" != 1 ] || [ ! -f "$SRC/Makefile" ]; }; then
	echo "copying $SRC_TREE to $SRC"
	rm -rf "$SRC"
	cp -a "$SRC_TREE" "$SRC"
fi
# The patches already in the tree (resume only): a prefix of the series.
APPLIED=0
if [ "$RESUME" = 1 ]; then
	# The top of the applied prefix is the one patch that reverse-applies
	# while the next one still applies (an earlier patch may not reverse
	# alone once later ones touch the same lines).
	for ((k = ${#PATCHES[@]}; k > 0; k--)); do
		(cd "$SRC" && patch -p1 -R --dry-run -s -f <"${PATCHES[k - 1]}") >/dev/null 2>&1 ||
			continue
		if [ "$k" -eq ${#PATCHES[@]} ] ||
			(cd "$SRC" && patch -p1 --dry-run -s -f <"${PATCHES[k]}") >/dev/null 2>&1; then
			APPLIED=$k
			break
		fi
	done
	echo "resuming: $APPLIED patch(es) already in $SRC"
fi
# Otherwise start from a pristine tree: the first patch must apply.
[ "$APPLIED" -gt 0 ] || (cd "$SRC" && patch -p1 --dry-run -s -f <"${PATCHES[0]}" >/dev/null) ||
	{ echo "$0: ${PATCHES[0]} does not apply to $SRC (not the pristine base?)" >&2; exit 1; }

configure() { # CONFIG
	local obj=$BUILD_DIR/obj-$1
	mkdir -p "$obj"
	make -s -C "$SRC" O="$obj" tinyconfig >/dev/null &&
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$FRAGMENT" \
		"$BUILD_DIR/config-$1.fragment" >/dev/null &&
	make -s -C "$SRC" O="$obj" olddefconfig >/dev/null
}

failed=0
step() { # name log cmd...
	local name=$1 log=$2 t0=$SECONDS
	shift 2
	if "$@" >"$log" 2>&1; then
		printf 'PASS  %-70s %4ds\n' "$name" $((SECONDS - t0))
	else
		printf 'FAIL  %-70s %4ds  (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
		failed=1
	fi
}

build() { # CONFIG
	local target=bzImage
	grep -q '^CONFIG_MODULES=y' "$BUILD_DIR/config-$1.fragment" && target="bzImage modules"
	# shellcheck disable=SC2086 # one target per word
	configure "$1" && make -C "$SRC" O="$BUILD_DIR/obj-$1" CC="$KVMNC_CC" -j"$JOBS" $target
}

# W=1 warnings of the kernel .c files a patch touches, one per line, line
# and column numbers dropped (a patch moves lines), sorted.
touched_c() { # PATCH
	sed -n 's|^+++ b/\([^[:space:]]*\.c\)\([[:space:]].*\)\{0,1\}$|\1|p' "$1" | grep -v '^tools/' | sort -u
}
w1_warnings() { # PATCH OUT
	local f obj=$BUILD_DIR/obj-${CONFIGS[0]}
	: >"$2"
	for f in $(touched_c "$1"); do
		[ -f "$SRC/$f" ] || continue
		# Only objects the configuration builds (Kbuild has no rule for others).
		[ -f "$obj/${f%.c}.o" ] || continue
		make -C "$SRC" O="$obj" CC="$KVMNC_CC" W=1 "${f%.c}.o" 2>&1 |
			grep -E ': warning: ' | sed -E 's/:[0-9]+:[0-9]+: /: /; s#^.*/(arch|virt|include|drivers|kernel|mm)/#\1/#' >>"$2" || true
	done
	sort -u -o "$2" "$2"
}
w1_check() { # PATCH NAME
	local new
	new=$(comm -13 "$LOGS/$2.w1-before" "$LOGS/$2.w1-after")
	if [ -n "$new" ]; then
		echo "W=1 warnings the patch adds:"
		printf '%s\n' "$new"
		return 1
	fi
	echo "W=1: no new warning in $(touched_c "$1" | paste -sd' ')"
}

# The series' selftests: bisect.conf's `selftests` line, or each .c file the
# series adds under tools/testing/selftests/kvm/x86*/ (paths without .c).
if [ -n "$SELFTESTS_LINE" ]; then
	read -r -a SERIES_SELFTESTS <<<"$SELFTESTS_LINE"
else
	mapfile -t SERIES_SELFTESTS < <(for p in "${PATCHES[@]}"; do
		awk '/^--- \/dev\/null/ { new = 1; next }
		     new && /^\+\+\+ b\/tools\/testing\/selftests\/kvm\/x86[^\/]*\/[^\/]*\.c/ {
			sub(/^\+\+\+ b\/tools\/testing\/selftests\/kvm\//, ""); sub(/\.c([ \t].*)?$/, ""); print }
		     { new = 0 }' "$p"
	done | sort -u)
fi
selftests() {
	local kst=$BUILD_DIR/selftests hdr=$BUILD_DIR/headers t targets=()

	for t in "${SERIES_SELFTESTS[@]}"; do
		[ -e "$SRC/tools/testing/selftests/kvm/$t.c" ] && targets+=("$kst/$t")
	done
	rm -rf "$kst"
	make -C "$SRC" O="$BUILD_DIR/obj-${CONFIGS[0]}" headers_install INSTALL_HDR_PATH="$hdr" &&
	make -C "$SRC/tools/testing/selftests/kvm" OUTPUT="$kst" \
		INSTALL_HDR_PATH="$hdr" EXTRA_CFLAGS=-static -j"$JOBS" \
		"${targets[@]}" "$kst/set_memory_region_test"
}

if [ "$APPLIED" -eq 0 ]; then
	for c in "${CONFIGS[@]}"; do
		step "base: build ($c)" "$LOGS/0000-base.$c.log" build "$c"
	done
fi
i=0
for p in "${PATCHES[@]}"; do
	name=$(basename "$p" .patch)
	i=$((i + 1))
	# Resuming: skip what is in the tree, except the last of it, whose
	# build may be what was interrupted.
	[ "$i" -lt "$APPLIED" ] && continue
	if [ "$i" -ne "$APPLIED" ]; then
		w1_warnings "$p" "$LOGS/$name.w1-before"
	fi
	if [ "$i" -eq "$APPLIED" ] ||
		(cd "$SRC" && patch -p1 -s -f <"$p") >"$LOGS/$name.apply.log" 2>&1; then
		for c in "${CONFIGS[@]}"; do
			step "$name: build ($c)" "$LOGS/$name.$c.log" build "$c"
		done
		if [ -n "$(touched_c "$p")" ] && [ -f "$LOGS/$name.w1-before" ]; then
			w1_warnings "$p" "$LOGS/$name.w1-after"
			step "$name: W=1 on the touched .c files" "$LOGS/$name.w1.log" w1_check "$p" "$name"
		fi
		if grep -q '^diff --git a/tools/testing/selftests/kvm/' "$p"; then
			step "$name: selftests" "$LOGS/$name.selftests.log" selftests
		fi
	else
		printf 'FAIL  %-70s (does not apply, log: %s)\n' "$name" "$LOGS/$name.apply.log"
		failed=1
		break
	fi
done

if [ $failed = 0 ]; then
	step "selftests: static build after the last patch" "$LOGS/selftests.log" selftests
fi

if [ $failed != 0 ]; then
	echo "bisect-check: FAILED" >&2
	exit 1
fi
echo "bisect-check: base and all ${#PATCHES[@]} patches build in ${#CONFIGS[@]} configuration(s): ${CONFIGS[*]}"
