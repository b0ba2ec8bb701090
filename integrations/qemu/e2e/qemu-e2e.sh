#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# qemu-e2e.sh: the QEMU end-to-end check, run as root inside a guest whose
# kernel has KVM on Intel VMX with EPT and the kvmmmu tracepoints (the
# kernel tier's Bochs runs).  Busybox sh and awk are enough.
#
#   qemu-e2e.sh --qemu BIN --fw DIR --scope off|slot|vm|vm-irreversible
#               (--expect-nc T --expect-plain T --expect-mechanism NAME |
#                --no-sptes --expect-mechanism NAME | --expect-refused)
#
# Starts the patched QEMU with -accel kvm,noncoherent-dma=SCOPE, plain RAM
# as the first NUMA node and a memory-backend-ram with noncoherent=on as
# the second, and DIR/fw.bin (build-fw.sh) as the firmware, which writes
# to both and exits through isa-debug-exit.  Meanwhile it records
# kvmmmu:kvm_mmu_set_spte for QEMU's threads only (set_event_pid with
# event-fork) and then checks the memory type of every SPTE KVM made for
# the pages the guest wrote: T is the EPT memory-type field with the
# ignore-PAT bit, (spte >> 3) & 0xf, in hex: e = WB with IPAT (guest PAT
# ignored), 6 = WB without IPAT (guest PAT honored).  It also checks the
# mechanism QEMU reports (trace event kvm_noncoherent_dma) and, when the
# VM has non-coherent memory, that migration is blocked.
#
# --expect-refused: QEMU must refuse the non-coherent backend at startup
# (no mechanism within the scope) with its reasons, and never run.
# --no-sptes: no tracing and no memory-type checks, for hosts where the
# SPTEs say nothing (shadow paging, AMD); everything else is checked.
#
# Output: TAP.  Exit: 0 all passed, 1 a check failed, 77 cannot run here
# (no /dev/kvm, no tracefs or no kvmmmu events), with the reason.
set -u

QEMU='' FW='' SCOPE='' WANT_NC='' WANT_PLAIN='' WANT_MECH='' REFUSED=0 SPTES=1
while [ $# -gt 0 ]; do
	case $1 in
	--qemu) QEMU=$2; shift ;;
	--fw) FW=$2; shift ;;
	--scope) SCOPE=$2; shift ;;
	--expect-nc) WANT_NC=$2; shift ;;
	--expect-plain) WANT_PLAIN=$2; shift ;;
	--expect-mechanism) WANT_MECH=$2; shift ;;
	--expect-refused) REFUSED=1 SPTES=0 ;;
	--no-sptes) SPTES=0 ;;
	*) echo "Bail out! unknown argument $1"; exit 1 ;;
	esac
	shift
done
if [ -z "$QEMU" ] || [ -z "$FW" ] || [ -z "$SCOPE" ] ||
	{ [ $REFUSED = 0 ] && [ -z "$WANT_MECH" ]; } ||
	{ [ $SPTES = 1 ] && { [ -z "$WANT_NC" ] || [ -z "$WANT_PLAIN" ]; }; }; then
	echo "Bail out! usage: $0 --qemu BIN --fw DIR --scope S (--expect-nc T --expect-plain T --expect-mechanism M | --no-sptes --expect-mechanism M | --expect-refused)"
	exit 1
fi

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { # COND-EXIT-STATUS DESCRIPTION
	if [ "$1" = 0 ]; then ok "$2"; else not_ok "$2"; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 77; }
diag() { sed 's/^/# /' "$@"; }

[ -c /dev/kvm ] || skip_all "no /dev/kvm"
[ -x "$QEMU" ] || { echo "Bail out! $QEMU is not executable"; exit 1; }
[ -r "$FW/fw.bin" ] && [ -r "$FW/fw.env" ] || { echo "Bail out! no $FW/fw.bin or fw.env"; exit 1; }
# shellcheck source=/dev/null # written by build-fw.sh
. "$FW/fw.env"

T=/sys/kernel/tracing
EV=$T/events/kvmmmu/kvm_mmu_set_spte
if [ $SPTES = 1 ]; then
	[ -d $T/events ] || mount -t tracefs nodev $T 2>/dev/null
	[ -d $T/events ] || skip_all "no tracefs at $T (kernel without CONFIG_EVENT_TRACING)"
	[ -d $EV ] || skip_all "no kvmmmu:kvm_mmu_set_spte event (KVM built without tracepoints?)"
fi

W=$(mktemp -d)
# Whatever happens from here on, stop the event and forget the filter.
cleanup() {
	if [ $SPTES = 1 ]; then
		echo 0 >$EV/enable 2>/dev/null
		echo 0 >$T/tracing_on 2>/dev/null
		echo >$T/set_event_pid 2>/dev/null
		echo 0 >$T/options/event-fork 2>/dev/null
	fi
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ $SPTES = 1 ]; then
	echo 0 >$T/tracing_on
	echo 0 >$EV/enable
	echo >$T/trace
	# This shell's pid, inherited by QEMU and its threads: nothing else
	# the guest runs meanwhile is recorded.
	echo 1 >$T/options/event-fork
	echo $$ >$T/set_event_pid
	echo 1 >$EV/enable
	echo 1 >$T/tracing_on
fi

# QMP on stdin: with -S the memory slots exist before the guest runs, so
# a migration attempt there must meet the blocker; then the guest runs.
{
	echo '{"execute":"qmp_capabilities"}'
	if [ $REFUSED = 0 ] && [ "$SCOPE" != off ]; then
		echo '{"execute":"migrate","arguments":{"uri":"exec:cat >/dev/null"}}'
	fi
	echo '{"execute":"cont"}'
} >"$W/qmp.in"
# Under its own time limit, so that a hung QEMU still leaves a report.
timeout -s KILL "${KVMNC_QEMU_TIMEOUT:-240}" \
	"$QEMU" -machine pc,smm=off -accel "kvm,noncoherent-dma=$SCOPE" -smp 1 \
	-global apic-common.vapic=off \
	-m "${RAM_MB}M" -nodefaults -no-user-config -display none -S \
	-bios "$FW/fw.bin" \
	-object "memory-backend-ram,id=plain,size=${NODE_MB}M" \
	-object "memory-backend-ram,id=nc,size=${NODE_MB}M,noncoherent=on" \
	-numa node,memdev=plain -numa node,memdev=nc \
	-device isa-debug-exit,iobase=0xf4,iosize=4 \
	-qmp stdio -trace kvm_noncoherent_dma -trace kvm_noncoherent_region \
	-trace kvm_set_user_memory \
	<"$W/qmp.in" >"$W/qmp.out" 2>"$W/qemu.err"
rc=$?
: >"$W/trace"
if [ $SPTES = 1 ]; then
	echo 0 >$EV/enable
	echo 0 >$T/tracing_on
	cat $T/trace >"$W/trace"
	echo >$T/set_event_pid
	echo 0 >$T/options/event-fork
fi

echo "# qemu -accel kvm,noncoherent-dma=$SCOPE exited with $rc; its stderr:"
diag "$W/qemu.err"

if [ $REFUSED = 1 ]; then
	check $((rc == 1 ? 0 : 1)) "QEMU refuses to start (exit $rc, want 1)"
	grep -q "memory backend 'nc' is non-coherent, but the host offers no way to honor guest memory types with noncoherent-dma=$SCOPE" "$W/qemu.err"
	check $? "it says why: backend 'nc' cannot be honored with noncoherent-dma=$SCOPE"
	grep -q "noncoherent-dma=$SCOPE: the host offers no way" "$W/qemu.err" &&
		grep -q '^  memslot_flag[ :]' "$W/qemu.err" && grep -q '^  guest_pat_quirk[ :]' "$W/qemu.err"
	check $? "the startup warning lists libkvmnc's reason for each mechanism"
	grep -q '"return"' "$W/qmp.out"
	check $((1 - $?)) "the guest never ran (QMP never answered)"
	echo "1..$n"
	[ $failed = 0 ]
	exit $?
fi

check $((rc == 33 ? 0 : 1)) "the firmware read back what it wrote and exited through isa-debug-exit (exit $rc, want 33)"

mech=$(sed -n 's/.*kvm_noncoherent_dma scope \([^ ]*\) mechanism \([^ ]*\) .*/\1 \2/p' "$W/qemu.err" | head -n1)
check "$([ "$mech" = "$SCOPE $WANT_MECH" ]; echo $?)" "QEMU reports scope $SCOPE, mechanism $WANT_MECH (got '$mech')"

if [ "$SCOPE" != off ]; then
	grep -q '"error".*noncoherent=on' "$W/qmp.out"
	check $? "migration is blocked while the VM holds non-coherent memory"
	grep '"error"' "$W/qmp.out" | sed 's/^/# qmp: /'
	# The non-coherent backend's slot went through libkvmnc.
	grep -q "kvm_noncoherent_region .*mechanism $WANT_MECH ret=0" "$W/qemu.err"
	check $? "the non-coherent slot was registered through libkvmnc ($WANT_MECH)"
else
	grep -q 'kvm_noncoherent_region' "$W/qemu.err"
	check $((1 - $?)) "noncoherent-dma=off: no slot goes through libkvmnc"
	grep -q "memory backend 'nc' is non-coherent, but KVM maps it write-back" "$W/qemu.err"
	check $? "noncoherent-dma=off: QEMU warns that the backend is mapped write-back"
fi

if [ $SPTES = 0 ]; then
	echo "1..$n"
	[ $failed = 0 ]
	exit $?
fi

# gfn and memory type of every SPTE in the two written ranges, as
# "range gfn level type spte".  Hex is converted by hand: busybox awk has no
# strtonum.
awk -v plain="$PLAIN_GPA" -v nc="$NC_GPA" -v npages="$NPAGES" '
function hex(s,   i, c, v) {
	s = tolower(s); sub(/^0x/, "", s); v = 0
	for (i = 1; i <= length(s); i++) {
		c = index("0123456789abcdef", substr(s, i, 1))
		if (c == 0) return -1
		v = v * 16 + c - 1
	}
	return v
}
BEGIN { p0 = hex(plain) / 4096; n0 = hex(nc) / 4096 }
/kvm_mmu_set_spte:/ {
	gfn = spte = level = ""
	for (i = 1; i < NF; i++) {
		if ($i == "gfn") gfn = $(i + 1)
		else if ($i == "spte") spte = $(i + 1)
		else if ($i == "level") level = $(i + 1)
	}
	if (gfn == "" || spte == "") next
	g = hex(gfn)
	# A huge page covers 512^(level-1) gfns from an aligned gfn.
	span = 1; for (l = 1; l < level; l++) span *= 512
	t = substr("0123456789abcdef", int(hex(substr(spte, length(spte) - 1)) / 8) % 16 + 1, 1)
	if (g < p0 + npages && g + span > p0) print "plain", gfn, level, t, spte
	else if (g < n0 + npages && g + span > n0) print "nc", gfn, level, t, spte
}' "$W/trace" >"$W/sptes"

for range in nc plain; do
	if [ $range = nc ]; then want=$WANT_NC; else want=$WANT_PLAIN; fi
	total=$(awk -v r=$range '$1 == r' "$W/sptes" | wc -l)
	types=$(awk -v r=$range '$1 == r { print $4 }' "$W/sptes" | sort -u | tr '\n' ' ')
	bad=$(awk -v r=$range -v w="$want" '$1 == r && $4 != w' "$W/sptes" | wc -l)
	awk -v r=$range '$1 == r { printf "# %s gfn 0x%s level %s spte 0x%s type 0x%s\n", $1, $2, $3, $5, $4 }' "$W/sptes" | head -n 4
	check "$([ "$total" -gt 0 ] && [ "$bad" = 0 ]; echo $?)" \
		"$range: every SPTE has memory type 0x$want ($total SPTEs, types seen: ${types:-none})"
done
echo "# all kvm_mmu_set_spte events of QEMU: $(grep -c 'kvm_mmu_set_spte:' "$W/trace")"

echo "1..$n"
[ $failed = 0 ]
