#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One seccomp test: run PROGRAM under run-filtered and check how it ended.
#
#   run-test.sh RUN-FILTERED EXPECT PROGRAM [ARGS...]
#
# EXPECT:
#   kvm-ok   needs /dev/kvm (skip, 77, without it); must exit 0 or 1 (1: this
#            host offers no mechanism), never die of a signal
#   sigsys   must be killed by SIGSYS (a call outside the list)
#   eperm    run with --errno: the refused call must fail with EPERM (exit 3)
#   exit:N   must exit with status N
set -uo pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 RUN-FILTERED EXPECT PROGRAM [ARGS...]" >&2
	exit 2
fi
runner=$1
expect=$2
shift 2

if ! "$runner" --check; then
	echo "SKIP: this kernel cannot install the seccomp filter"
	exit 77
fi

mode=()
case $expect in
kvm-ok)
	if [ ! -e /dev/kvm ]; then
		echo "SKIP: no /dev/kvm on this machine"
		exit 77
	fi
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo "SKIP: /dev/kvm is not readable and writable by $(id -un)"
		exit 77
	fi
	;;
eperm) mode=(--errno) ;;
sigsys | exit:*) ;;
*)
	echo "unknown expectation '$expect'" >&2
	exit 2
	;;
esac

echo "+ $runner ${mode[*]} -- $*"
"$runner" "${mode[@]}" -- "$@"
rc=$?
sig=""
if [ $rc -gt 128 ] && [ $rc -lt 160 ]; then
	sig=$(kill -l $((rc - 128)) 2>/dev/null || echo "$((rc - 128))")
fi
echo "exit status $rc${sig:+ (signal SIG$sig)}"

case $expect in
kvm-ok)
	if [ "$sig" = SYS ]; then
		echo "FAIL: killed by SIGSYS: a system call or ioctl outside docs/seccomp.md's list"
		echo "      (rerun with '$runner --log -- $*' and look at dmesg, or use strace -f)"
		exit 1
	fi
	[ $rc -le 1 ] || { echo "FAIL: want exit status 0 or 1"; exit 1; }
	;;
sigsys)
	[ "$sig" = SYS ] || { echo "FAIL: want death by SIGSYS"; exit 1; }
	;;
eperm)
	[ $rc -eq 3 ] || { echo "FAIL: want exit status 3 (EPERM)"; exit 1; }
	;;
exit:*)
	[ $rc -eq "${expect#exit:}" ] || { echo "FAIL: want exit status ${expect#exit:}"; exit 1; }
	;;
esac
echo "PASS"
