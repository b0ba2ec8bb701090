#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bisect-check.sh SRC_TREE BUILD_DIR
#
# Checks that the series in this directory is bisectable: copies the
# pristine base SRC_TREE (Debian linux-source-6.12, see BASE) to
# BUILD_DIR/src, then builds the base and, applying the patches one at a
# time (0001 onwards, `patch -p1`), the kernel after each patch, out of tree
# in BUILD_DIR/obj.  The configuration is `make tinyconfig` plus the
# fragment below (or the file named by $KVMNC_FRAGMENT), merged with
# merge_config.sh -m and completed by olddefconfig, regenerated at every
# step so that symbols a patch adds are picked up.  After every patch that
# touches the KVM selftests, and once more after the last patch, it installs
# the UAPI headers and builds, statically, those of the series' selftests
# that exist at that point, and set_memory_region_test.
#
# Prints one line per step (PASS/FAIL, seconds) and exits non-zero if any
# step failed.  Logs: BUILD_DIR/logs/.  Environment: KVMNC_JOBS (default 2),
# KVMNC_CC (default "ccache gcc" if ccache is installed, else gcc),
# KVMNC_FRAGMENT, KVMNC_KEEP_SRC=1 to reuse an existing BUILD_DIR/src
# (it must then be the pristine base; it is re-copied otherwise),
# KVMNC_RESUME=1 to go on with an interrupted run: BUILD_DIR/src and obj
# are kept, the patches already in src (they reverse-apply) are not
# applied again, and the build starts with the last of them.
set -euo pipefail

usage() {
	echo "usage: $0 SRC_TREE BUILD_DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
SRC_TREE=$(cd "$1" && pwd) || usage
mkdir -p "$2"
BUILD_DIR=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS=${KVMNC_JOBS:-2}
if [ -z "${KVMNC_CC:-}" ]; then
	if command -v ccache >/dev/null; then KVMNC_CC="ccache gcc"; else KVMNC_CC=gcc; fi
fi
SRC=$BUILD_DIR/src
OBJ=$BUILD_DIR/obj
LOGS=$BUILD_DIR/logs

[ -f "$SRC_TREE/Makefile" ] && [ -x "$SRC_TREE/scripts/kconfig/merge_config.sh" ] ||
	{ echo "$0: $SRC_TREE does not look like a kernel source tree" >&2; exit 2; }
case $BUILD_DIR/ in "$SRC_TREE"/*)
	echo "$0: BUILD_DIR must not be inside SRC_TREE" >&2; exit 2 ;;
esac

shopt -s nullglob
PATCHES=()
for p in "$HERE"/[0-9][0-9][0-9][0-9]-*.patch; do
	case $(basename "$p") in 0000-*) continue ;; esac
	PATCHES+=("$p")
done
[ ${#PATCHES[@]} -gt 0 ] || { echo "$0: no patches in $HERE" >&2; exit 2; }

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
CONFIG_KVM_VIRTIO=y
CONFIG_KUNIT=y
CONFIG_KVM_X86_MEMTYPE_KUNIT_TEST=y
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

mkdir -p "$LOGS" "$OBJ"
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

configure() {
	make -s -C "$SRC" O="$OBJ" tinyconfig >/dev/null &&
	"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$FRAGMENT" >/dev/null &&
	make -s -C "$SRC" O="$OBJ" olddefconfig >/dev/null
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

build() { # log
	configure && make -C "$SRC" O="$OBJ" CC="$KVMNC_CC" -j"$JOBS" bzImage
}

SERIES_SELFTESTS=(x86_64/noncoherent_dma_memslot_test x86_64/noncoherent_dma_memtype_test
	x86_64/virtio_device_test)
selftests() {
	local kst=$BUILD_DIR/selftests hdr=$BUILD_DIR/headers t targets=()

	for t in "${SERIES_SELFTESTS[@]}"; do
		[ -e "$SRC/tools/testing/selftests/kvm/$t.c" ] && targets+=("$kst/$t")
	done
	rm -rf "$kst"
	make -C "$SRC" O="$OBJ" headers_install INSTALL_HDR_PATH="$hdr" &&
	make -C "$SRC/tools/testing/selftests/kvm" OUTPUT="$kst" \
		INSTALL_HDR_PATH="$hdr" EXTRA_CFLAGS=-static -j"$JOBS" \
		"${targets[@]}" "$kst/set_memory_region_test"
}

[ "$APPLIED" -gt 0 ] || step "base: build" "$LOGS/0000-base.log" build
i=0
for p in "${PATCHES[@]}"; do
	name=$(basename "$p" .patch)
	i=$((i + 1))
	# Resuming: skip what is in the tree, except the last of it, whose
	# build may be what was interrupted.
	[ "$i" -lt "$APPLIED" ] && continue
	if [ "$i" -eq "$APPLIED" ] ||
		(cd "$SRC" && patch -p1 -s -f <"$p") >"$LOGS/$name.apply.log" 2>&1; then
		step "$name: build" "$LOGS/$name.log" build
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
echo "bisect-check: base and all ${#PATCHES[@]} patches build"
