#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-tier.sh: the whole kernel tier by hand or from CI, with the time per
# stage.  Two modes:
#
#   run-tier.sh -B BUILDDIR [-F] [RUN...]
#       Meson mode: `meson test -C BUILDDIR --suite kernel` (the library's
#       guest executables included).  With RUN names, only those tests
#       (e.g. stock-npt patched-npt).
#
#   run-tier.sh [-l LOGDIR] [-g EXE]... [-F] [RUN...]
#       Standalone mode, no Meson: builds kvm-smoke itself and drives
#       run-qemu.py directly; -g adds a static library executable (live-*,
#       kvmnc-probe).  Logs default to /var/tmp/kvmnc-kernel-tier.
#
#   -F  the whole selftest suite in the 7.2 selftest runs, the CI subset's
#       exclusions included (KVMNC_TIER_FULL=1; hours under Bochs: in
#       Meson mode with a test timeout multiplier of 20)
#
# RUN: stock-npt debian-6.1-npt debian-7.2-npt patched-npt patched-shadow
#      stock-vmx debian-6.1-vmx debian-7.2-vmx patched-vmx
#      patched-vmx-nosnoop patched-vmx-shadow stock-selftests
#      patched-selftests stock-vmx-selftests patched-vmx-selftests
#      patched-debug patched-7.2-npt patched-7.2-vmx patched-7.2-vmx-nosnoop
#      patched-7.2-vmx-shadow patched-7.2-vmx-tdpmmu0 stock-7.2-selftests
#      patched-7.2-selftests stock-7.2-vmx-selftests
#      patched-7.2-vmx-selftests patched-7.2-debug selftests-compare
#      vmx-selftests-compare 7.2-selftests-compare 7.2-vmx-selftests-compare
#      (default: all, in that order).  *-vmx* runs boot Bochs (Intel VMX),
#      the others QEMU TCG (AMD SVM).  stock-* and debian-* boot Debian's
#      own kernels (fetched, not built); *-7.2-* build patches/7.2.
# Exit: 0 all passed or skipped, 1 any failure.
# Environment: KVMNC_KERNEL_CACHE, KVMNC_JOBS (see build-kernel.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL_RUNS=(stock-npt debian-6.1-npt debian-7.2-npt patched-npt patched-shadow stock-vmx
	debian-6.1-vmx debian-7.2-vmx patched-vmx patched-vmx-nosnoop patched-vmx-shadow
	stock-selftests patched-selftests stock-vmx-selftests patched-vmx-selftests patched-debug
	patched-7.2-npt patched-7.2-vmx patched-7.2-vmx-nosnoop patched-7.2-vmx-shadow
	patched-7.2-vmx-tdpmmu0 stock-7.2-selftests patched-7.2-selftests stock-7.2-vmx-selftests
	patched-7.2-vmx-selftests patched-7.2-debug
	selftests-compare vmx-selftests-compare 7.2-selftests-compare 7.2-vmx-selftests-compare)
# FLAVOUR:SERIES (build-kernel.sh -S SERIES FLAVOUR)
FLAVOURS=(stock:6.12 patched:6.12 patched-debug:6.12 stock:7.2 patched:7.2 patched-debug:7.2)
DISTRO=(debian-6.12 debian-6.1 debian-7.2)

builddir='' logdir=/var/tmp/kvmnc-kernel-tier
execs=()
full=0
while getopts "B:l:g:Fh" opt; do
	case $opt in
	B) builddir=$OPTARG ;;
	l) logdir=$OPTARG ;;
	g) execs+=("$OPTARG") ;;
	F) full=1 ;;
	*) sed -n '3,33p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
runs=("$@")
[ ${#runs[@]} -ne 0 ] || runs=("${ALL_RUNS[@]}")

T0=$SECONDS
declare -a timings=()
stage() { # NAME COMMAND...
	local name=$1 t rc=0
	shift
	t=$SECONDS
	echo "=== [kernel-tier] $name" >&2
	"$@" || rc=$?
	timings+=("$(printf '%-28s %5d s  exit %d' "$name" $((SECONDS - t)) "$rc")")
	return "$rc"
}
report() {
	echo "=== [kernel-tier] time per stage" >&2
	printf '  %s\n' "${timings[@]}" >&2
	echo "  total                        $((SECONDS - T0)) s" >&2
}
trap report EXIT

# Each flavour the chosen runs need, once, as its own timed stage (77: no
# patches yet, which the runs report as a skip); stock gives only the
# selftests, the stock runs boot Debian's image.  Then each distribution
# kernel the runs boot (fetched and unpacked).
build_kernels() {
	local fl r rc
	for fl in "${FLAVOURS[@]}"; do
		for r in "${runs[@]}"; do
			case $fl:$r in
			stock:6.12:stock-selftests | stock:6.12:stock-vmx-selftests) ;;
			stock:6.12:selftests-compare | stock:6.12:vmx-selftests-compare) ;;
			patched:6.12:patched-npt | patched:6.12:patched-shadow | patched:6.12:patched-vmx*) ;;
			patched:6.12:patched-selftests | patched:6.12:selftests-compare) ;;
			patched:6.12:vmx-selftests-compare) ;;
			patched-debug:6.12:patched-debug) ;;
			stock:7.2:stock-7.2-* | stock:7.2:7.2-*compare) ;;
			patched:7.2:patched-7.2-npt | patched:7.2:patched-7.2-vmx*) ;;
			patched:7.2:patched-7.2-selftests | patched:7.2:7.2-*compare) ;;
			patched-debug:7.2:patched-7.2-debug) ;;
			*) continue ;;
			esac
			rc=0
			stage "kernel ${fl%%:*}-${fl#*:}" "$HERE/build-kernel.sh" -S "${fl#*:}" "${fl%%:*}" >/dev/null || rc=$?
			[ "$rc" = 0 ] || [ "$rc" = 77 ] || exit "$rc"
			break
		done
	done
	for fl in "${DISTRO[@]}"; do
		for r in "${runs[@]}"; do
			case $fl:$r in
			debian-6.12:stock-npt | debian-6.12:stock-vmx | debian-6.12:stock-selftests) ;;
			debian-6.12:stock-vmx-selftests | debian-6.12:selftests-compare) ;;
			debian-6.12:vmx-selftests-compare) ;;
			debian-7.2:stock-7.2-* | debian-7.2:7.2-*compare | "$fl:$fl"-*) ;;
			*) continue ;;
			esac
			stage "distribution kernel $fl" "$HERE/fetch-distro-kernel.sh" "$fl" >/dev/null || exit 1
			break
		done
	done
}

if [ "$full" = 1 ]; then
	export KVMNC_TIER_FULL=1
fi
if [ -n "$builddir" ]; then
	MESON=${MESON:-meson}
	args=(test -C "$builddir" --suite kernel --print-errorlogs --no-rebuild)
	[ "$full" = 0 ] || args+=(--timeout-multiplier 20)
	if [ ${#runs[@]} -ne ${#ALL_RUNS[@]} ]; then
		for r in "${runs[@]}"; do args+=("kernel-$r"); done
	fi
	# Under `ninja kernel-tier` (a run_target: MESON_BUILD_ROOT is set) the
	# outer ninja already built what the tests need; a nested ninja on the
	# same build dir must not run.
	if [ -z "${MESON_BUILD_ROOT:-}" ]; then
		stage "meson compile" "$MESON" compile -C "$builddir"
	fi
	# Build the kernels first so their time shows as its own stage.
	build_kernels
	stage "meson test --suite kernel" "$MESON" "${args[@]}"
	exit 0
fi

mkdir -p "$logdir"
smoke=$logdir/kvm-smoke
stage "compile kvm-smoke" "${CC:-cc}" -static -O2 -Wall -Wextra -D_GNU_SOURCE \
	-I"$HERE/../../libkvmnc" -I"$HERE/../../include" -I"$HERE/../live" \
	-o "$smoke" "$HERE/guest/kvm-smoke.c"
build_kernels

exec_args=()
for e in "${execs[@]}"; do exec_args+=(--guest-exec "$e"); done
failed=()
for r in "${runs[@]}"; do
	if ! stage "run $r" "$HERE/run-qemu.py" --run "$r" --logdir "$logdir" --strict \
		--smoke "$smoke" "${exec_args[@]}" > >(tee "$logdir/$r.tap"); then
		failed+=("$r")
	fi
done
echo "=== [kernel-tier] logs: $logdir" >&2
if [ ${#failed[@]} -ne 0 ]; then
	echo "=== [kernel-tier] FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "=== [kernel-tier] all runs passed (or skipped)" >&2
