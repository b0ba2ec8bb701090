#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# qemu-e2e.sh: the QEMU end-to-end check, run as root inside a guest whose
# kernel has KVM on Intel VMX with EPT and the kvmmmu tracepoints (the
# kernel tier's Bochs runs).  Busybox sh and awk are enough.
#
#   qemu-e2e.sh --qemu BIN --fw DIR --scope off|slot|vm|vm-irreversible
#               [--migrate blocked|none] [--honor-guest-pat on|off|auto]
#               [--display DRIVER] [--hotplug-display DRIVER]
#               [--hotplug-dimm [--expect-flush]]
#               (--expect-nc T --expect-plain T --expect-mechanism NAME |
#                --no-sptes --expect-mechanism NAME | --expect-refused |
#                --expect-display-refused | --migrate-file --expect-mechanism NAME)
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
# --migrate: what a migration attempt before the guest runs must meet
# (default blocked: QEMU 7.2's series blocks migration while the VM holds
# non-coherent memory; none: do not try, the 10.2 series migrates it).
# --honor-guest-pat: the 10.2 series' accelerator property (on: the quirk
# is disabled through libkvmnc, so the effective scope is vm-irreversible).
# --display: a bochs-drm display (bochs-display, VGA) on the command line;
# --hotplug-display: device_add it over QMP before the guest runs, which
# must fail when guest PAT is honored VM-wide (the quirk disabled).
# --expect-display-refused: QEMU must refuse to start because of --display.
# --hotplug-dimm: a memory hot-plug and unplug over QMP.  Before the guest
# runs, object-add creates a third memory-backend-ram with noncoherent=on
# and device_add plugs it as a pc-dimm (at DIMM_GPA); device_del follows
# the cont.  DIR/fw-hotplug.bin writes and reads back the DIMM's pages
# too, then ejects it through the ACPI memory hotplug registers as a guest
# OS would.  Checked on top of the usual: the DIMM's slot went through
# libkvmnc when it was plugged and was removed from it when the slot was
# deleted on eject, DEVICE_DELETED came, and its SPTEs (range "dimm") have
# the non-coherent memory type.
# --expect-flush (with --hotplug-dimm, on the kernel series): KVM flushed
# the caches for each DIMM SPTE, its host physical address and size, when
# it was installed and again when the eject zapped it
# (kvmmmu:kvm_mmu_flush_noncoherent_dma, recorded like the SPTEs; the
# zap is the eject's, since the slot no longer exists when the VM goes).
# --migrate-file: the non-coherent backend is a shared file that this
# script writes while QEMU holds it (a writer outside the guest, as a
# device would be); QEMU migrates to a file ("exec:cat > file"), a second
# QEMU with an empty backend file takes it with -incoming, and that file
# must be byte for byte what was written, with the
# coherent-copy path (trace ram_noncoherent_flush/resend) on both sides.
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
MIGRATE=blocked HONOR='' DISPLAY='' HOTPLUG='' DISPLAY_REFUSED=0 MIGFILE=0 DIMM=0 FLUSH=0
while [ $# -gt 0 ]; do
	case $1 in
	--migrate) MIGRATE=$2; shift ;;
	--honor-guest-pat) HONOR=$2; shift ;;
	--display) DISPLAY=$2; shift ;;
	--hotplug-display) HOTPLUG=$2; shift ;;
	--hotplug-dimm) DIMM=1 ;;
	--expect-flush) FLUSH=1 ;;
	--expect-display-refused) DISPLAY_REFUSED=1 SPTES=0 ;;
	--migrate-file) MIGFILE=1 SPTES=0 ;;
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
	{ [ $REFUSED = 0 ] && [ $DISPLAY_REFUSED = 0 ] && [ -z "$WANT_MECH" ]; } ||
	{ [ $SPTES = 1 ] && { [ -z "$WANT_NC" ] || [ -z "$WANT_PLAIN" ]; }; }; then
	echo "Bail out! usage: $0 --qemu BIN --fw DIR --scope S (--expect-nc T --expect-plain T --expect-mechanism M | --no-sptes --expect-mechanism M | --expect-refused)"
	exit 1
fi

# The scope QEMU reports: honor-guest-pat=on opens libkvmnc for the quirk.
EFF=$SCOPE
[ "$HONOR" = on ] && EFF=vm-irreversible
ACCEL="kvm,noncoherent-dma=$SCOPE${HONOR:+,honor-guest-pat=$HONOR}"
DISPLAY_ARGS=''
[ -z "$DISPLAY" ] || DISPLAY_ARGS="-device $DISPLAY"

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
BIOS=$FW/fw.bin MEM="${RAM_MB}M"
if [ $DIMM = 1 ]; then
	BIOS=$FW/fw-hotplug.bin MEM="${RAM_MB}M,slots=1,maxmem=$((RAM_MB + DIMM_MB))M"
	[ -r "$BIOS" ] || { echo "Bail out! no $BIOS"; exit 1; }
fi

if [ $MIGFILE = 1 ]; then
	W=$(mktemp -d)
	trap 'rm -rf "$W"' EXIT
	trap 'exit 1' INT TERM HUP
	# QMP from a shell loop: send CMD, then wait (up to 60 s) until the
	# output has a line matching PATTERN.
	qmp_wait() { # OUT PATTERN CMD
		i=0
		while [ $i -lt 60 ] && ! grep -q "$2" "$1" 2>/dev/null; do
			[ -z "$3" ] || echo "$3"
			sleep 1
			i=$((i + 1))
		done
	}
	NC_BYTES=$((NODE_MB * 1048576))
	# The source: an empty backend file, QEMU started (-S), the slot
	# registered; then the file is written from outside the guest.
	dd if=/dev/zero of="$W/src.mem" bs=1048576 count="$NODE_MB" 2>/dev/null
	dd if=/dev/zero of="$W/dst.mem" bs=1048576 count="$NODE_MB" 2>/dev/null
	start() { # NAME MEMFILE [EXTRA ARGS]
		name=$1 mem=$2
		shift 2
		# shellcheck disable=SC2086 # no spaces in the arguments
		timeout -s KILL "${KVMNC_QEMU_TIMEOUT:-240}" \
			"$QEMU" -machine pc,smm=off -accel "$ACCEL" -smp 1 \
			-global apic-common.vapic=off \
			-m "${RAM_MB}M" -nodefaults -no-user-config -display none -S \
			-bios "$FW/fw.bin" \
			-object "memory-backend-ram,id=plain,size=${NODE_MB}M" \
			-object "memory-backend-file,id=nc,size=${NODE_MB}M,mem-path=$mem,share=on,noncoherent=on" \
			-numa node,memdev=plain -numa node,memdev=nc \
			-qmp stdio -trace kvm_noncoherent_dma -trace kvm_noncoherent_region \
			-trace ram_noncoherent_flush -trace ram_noncoherent_resend "$@" \
			>"$W/$name.qmp" 2>"$W/$name.err"
	}
	{
		echo '{"execute":"qmp_capabilities"}'
		qmp_wait "$W/src.qmp" '"return"' ''
		# The writer: 16 MiB of a pattern no page of which is zero.
		yes 'the non-coherent writer was here, not the guest: 0123456789' | head -c "$NC_BYTES" |
			dd of="$W/src.mem" conv=notrunc bs=1048576 2>/dev/null
		echo "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $W/mig\"}}"
		qmp_wait "$W/src.qmp" '"status": *"\(completed\|failed\)"' '{"execute":"query-migrate"}'
		echo '{"execute":"quit"}'
	} | start src "$W/src.mem"
	echo "# source exited with $?; its stderr:"
	grep -v 'ram_noncoherent_flush' "$W/src.err" | diag
	echo "# source: $(grep -c 'ram_noncoherent_flush' "$W/src.err") ram_noncoherent_flush events"
	mech=$(sed -n 's/.*kvm_noncoherent_dma scope \([^ ]*\) mechanism \([^ ]*\) .*/\1 \2/p' "$W/src.err" | head -n1)
	check "$([ "$mech" = "$EFF $WANT_MECH" ]; echo $?)" "QEMU reports scope $EFF, mechanism $WANT_MECH (got '$mech')"
	grep -q "kvm_noncoherent_region .*mechanism $WANT_MECH ret=0" "$W/src.err"
	check $? "the non-coherent slot was registered through libkvmnc ($WANT_MECH)"
	grep -q '"status": *"completed"' "$W/src.qmp"
	check $? "migration to a file completed (not blocked)"
	grep '"error"' "$W/src.qmp" | sed 's/^/# qmp: /'
	grep -q "ram_noncoherent_resend .*$((NC_BYTES / 4096)) pages" "$W/src.err"
	check $? "the source sent the non-coherent block again once stopped ($((NC_BYTES / 4096)) pages)"
	grep -q 'ram_noncoherent_flush .* ret 0' "$W/src.err" && ! grep -q 'ram_noncoherent_flush .* ret -' "$W/src.err"
	check $? "the source flushed the non-coherent pages before reading them (libkvmnc, ret 0)"

	{
		echo '{"execute":"qmp_capabilities"}'
		qmp_wait "$W/dst.qmp" '"status": *"\(completed\|failed\)"' '{"execute":"query-migrate"}'
		echo '{"execute":"quit"}'
	} | start dst "$W/dst.mem" -incoming "exec:cat $W/mig"
	echo "# destination exited with $?; its stderr:"
	grep -v 'ram_noncoherent_flush' "$W/dst.err" | diag
	echo "# destination: $(grep -c 'ram_noncoherent_flush' "$W/dst.err") ram_noncoherent_flush events"
	grep -q '"status": *"completed"' "$W/dst.qmp"
	check $? "the destination took the migration (-incoming)"
	grep -q 'ram_noncoherent_flush .* ret 0' "$W/dst.err" && ! grep -q 'ram_noncoherent_flush .* ret -' "$W/dst.err"
	check $? "the destination flushed the loaded non-coherent pages (libkvmnc, ret 0)"
	cmp -s "$W/src.mem" "$W/dst.mem"
	check $? "the destination's backend is byte for byte what was written on the source ($NC_BYTES bytes)"
	echo "1..$n"
	[ $failed = 0 ]
	exit $?
fi

T=/sys/kernel/tracing
EV=$T/events/kvmmmu/kvm_mmu_set_spte
FEV=$T/events/kvmmmu/kvm_mmu_flush_noncoherent_dma
if [ $SPTES = 1 ]; then
	[ -d $T/events ] || mount -t tracefs nodev $T 2>/dev/null
	[ -d $T/events ] || skip_all "no tracefs at $T (kernel without CONFIG_EVENT_TRACING)"
	[ -d $EV ] || skip_all "no kvmmmu:kvm_mmu_set_spte event (KVM built without tracepoints?)"
fi
if [ $FLUSH = 1 ] && { [ $SPTES = 0 ] || [ $DIMM = 0 ]; }; then
	echo "Bail out! --expect-flush needs --hotplug-dimm and the SPTEs"
	exit 1
fi
[ $FLUSH = 0 ] || [ -d $FEV ] || {
	echo "Bail out! --expect-flush: no kvmmmu:kvm_mmu_flush_noncoherent_dma event (a kernel without the series?)"
	exit 1
}
# The events recorded for QEMU's threads.
EVENTS=$EV
[ $FLUSH = 0 ] || EVENTS="$EV $FEV"
events() { for e in $EVENTS; do echo "$1" >"$e/enable"; done; }

W=$(mktemp -d)
# Whatever happens from here on, stop the event and forget the filter.
cleanup() {
	if [ $SPTES = 1 ]; then
		events 0 2>/dev/null
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
	events 0
	echo >$T/trace
	# This shell's pid, inherited by QEMU and its threads: nothing else
	# the guest runs meanwhile is recorded.
	echo 1 >$T/options/event-fork
	echo $$ >$T/set_event_pid
	events 1
	echo 1 >$T/tracing_on
fi

# QMP on stdin: with -S the memory slots exist before the guest runs, so
# a migration attempt there must meet the blocker; then the guest runs.
{
	echo '{"execute":"qmp_capabilities"}'
	if [ $REFUSED = 0 ] && [ "$EFF" != off ] && [ "$MIGRATE" = blocked ]; then
		echo '{"execute":"migrate","arguments":{"uri":"exec:cat >/dev/null"}}'
	fi
	if [ -n "$HOTPLUG" ]; then
		echo "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"$HOTPLUG\",\"id\":\"hotdisplay\"}}"
	fi
	if [ $DIMM = 1 ]; then
		echo "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-backend-ram\",\"id\":\"hp\",\"size\":$((DIMM_MB * 1048576)),\"noncoherent\":true}}"
		echo '{"execute":"device_add","arguments":{"driver":"pc-dimm","id":"dimm0","memdev":"hp"}}'
	fi
	echo '{"execute":"cont"}'
	# Whenever it comes, the firmware ejects the DIMM only after using it.
	[ $DIMM = 0 ] || echo '{"execute":"device_del","arguments":{"id":"dimm0"}}'
} >"$W/qmp.in"
DIMM_ARGS=''
[ $DIMM = 0 ] || DIMM_ARGS="-chardev file,id=con,path=$W/con -device isa-debugcon,iobase=0xe9,chardev=con"
# Under its own time limit, so that a hung QEMU still leaves a report.
# shellcheck disable=SC2086 # DISPLAY_ARGS, DIMM_ARGS: no spaces in their words
timeout -s KILL "${KVMNC_QEMU_TIMEOUT:-240}" \
	"$QEMU" -machine pc,smm=off -accel "$ACCEL" -smp 1 $DISPLAY_ARGS $DIMM_ARGS \
	-global apic-common.vapic=off \
	-m "$MEM" -nodefaults -no-user-config -display none -S \
	-bios "$BIOS" \
	-object "memory-backend-ram,id=plain,size=${NODE_MB}M" \
	-object "memory-backend-ram,id=nc,size=${NODE_MB}M,noncoherent=on" \
	-numa node,memdev=plain -numa node,memdev=nc \
	-device isa-debug-exit,iobase=0xf4,iosize=4 \
	-qmp stdio -trace kvm_noncoherent_dma -trace kvm_noncoherent_region \
	-trace kvm_noncoherent_region_removed -trace kvm_set_user_memory \
	<"$W/qmp.in" >"$W/qmp.out" 2>"$W/qemu.err"
rc=$?
: >"$W/trace"
if [ $SPTES = 1 ]; then
	events 0
	echo 0 >$T/tracing_on
	cat $T/trace >"$W/trace"
	echo >$T/set_event_pid
	echo 0 >$T/options/event-fork
fi

echo "# qemu -accel $ACCEL${DISPLAY:+ -device $DISPLAY} exited with $rc; its stderr:"
diag "$W/qemu.err"

if [ $DISPLAY_REFUSED = 1 ]; then
	check $((rc == 1 ? 0 : 1)) "QEMU refuses to start (exit $rc, want 1)"
	grep -q "honor-guest-pat=on: the VM has $DISPLAY, whose VRAM guests may map uncached" "$W/qemu.err"
	check $? "it says why: $DISPLAY keeps guest PAT ignored, so honor-guest-pat=on cannot be"
	grep -q '"return"' "$W/qmp.out"
	check $((1 - $?)) "the guest never ran (QMP never answered)"
	echo "1..$n"
	[ $failed = 0 ]
	exit $?
fi

if [ $REFUSED = 1 ]; then
	check $((rc == 1 ? 0 : 1)) "QEMU refuses to start (exit $rc, want 1)"
	grep -q "memory backend 'nc' is non-coherent, but the host offers no way to honor guest memory types with noncoherent-dma=$SCOPE" "$W/qemu.err"
	check $? "it says why: backend 'nc' cannot be honored with noncoherent-dma=$SCOPE"
	if [ -n "$DISPLAY" ]; then
		grep -q "noncoherent-dma=$SCOPE: only mechanisms for single memory slots, because the VM has $DISPLAY" "$W/qemu.err"
		check $? "the VM-wide mechanisms were not taken because of $DISPLAY"
	fi
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
check "$([ "$mech" = "$EFF $WANT_MECH" ]; echo $?)" "QEMU reports scope $EFF, mechanism $WANT_MECH (got '$mech')"
grep '"error"' "$W/qmp.out" | sed 's/^/# qmp: /'

if [ -n "$HOTPLUG" ]; then
	grep -q "\"error\".*$HOTPLUG cannot be added: guests may map its VRAM uncached" "$W/qmp.out"
	check $? "device_add $HOTPLUG is refused: guest PAT is honored VM-wide"
fi

if [ $DIMM = 1 ]; then
	echo "# debug console: $(cat "$W/con" 2>/dev/null)"
	grep -q '"error"' "$W/qmp.out"
	check $((1 - $?)) "object-add of the non-coherent backend, device_add and device_del of the pc-dimm answered without error"
	grep -q '"event": *"DEVICE_DELETED".*"device": *"dimm0"' "$W/qmp.out"
	check $? "DEVICE_DELETED dimm0: the guest ejected the DIMM"
	# The DIMM's slot: the one KVM mapped at DIMM_GPA, then deleted there.
	dslot=$(sed -n "s/.*kvm_set_user_memory AddrSpace#0 Slot#\([0-9]*\) .*gpa=$DIMM_GPA size=0x[1-9a-f][0-9a-f]* .*ret=0.*/\1/p" "$W/qemu.err" | head -n1)
	grep "kvm_set_user_memory AddrSpace#0 Slot#$dslot .*gpa=$DIMM_GPA " "$W/qemu.err" | sed 's/^/# slot: /'
	check "$([ -n "$dslot" ]; echo $?)" "KVM mapped the DIMM at $DIMM_GPA (slot ${dslot:-none})"
	awk -v s="Slot#$dslot" -v gpa="gpa=$DIMM_GPA" -v mech="mechanism $WANT_MECH" '
		$0 ~ "kvm_noncoherent_region " s " " && $0 ~ mech " ret=0" { added = NR }
		$0 ~ "kvm_noncoherent_region_removed " s "$" && added { removed = NR }
		$0 ~ "kvm_set_user_memory AddrSpace#0 " s " " && index($0, gpa " size=0x0 ") && $0 ~ "ret=0" { deleted = NR }
		END { exit !(added && removed && deleted && added < removed && removed < deleted) }' "$W/qemu.err"
	check $? "libkvmnc took the DIMM's slot when it was plugged ($WANT_MECH) and let it go when KVM deleted it on eject"
	[ "$(cat "$W/con" 2>/dev/null)" = TE ]
	check $? "the firmware used the DIMM, then saw its slot empty after the eject (debug console 'TE')"
fi

if [ "$EFF" != off ]; then
	if [ "$MIGRATE" = blocked ]; then
		grep -q '"error".*noncoherent=on' "$W/qmp.out"
		check $? "migration is blocked while the VM holds non-coherent memory"
	fi
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
awk -v plain="$PLAIN_GPA" -v nc="$NC_GPA" -v dimm="${DIMM_GPA:-0}" -v hp=$DIMM -v npages="$NPAGES" '
function hex(s,   i, c, v) {
	s = tolower(s); sub(/^0x/, "", s); v = 0
	for (i = 1; i <= length(s); i++) {
		c = index("0123456789abcdef", substr(s, i, 1))
		if (c == 0) return -1
		v = v * 16 + c - 1
	}
	return v
}
BEGIN { p0 = hex(plain) / 4096; n0 = hex(nc) / 4096; d0 = hex(dimm) / 4096 }
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
	else if (hp && g < d0 + npages && g + span > d0) print "dimm", gfn, level, t, spte
}' "$W/trace" >"$W/sptes"

ranges='nc plain'
[ $DIMM = 0 ] || ranges='nc plain dimm'
for range in $ranges; do
	if [ "$range" = plain ]; then want=$WANT_PLAIN; else want=$WANT_NC; fi
	total=$(awk -v r="$range" '$1 == r' "$W/sptes" | wc -l)
	types=$(awk -v r="$range" '$1 == r { print $4 }' "$W/sptes" | sort -u | tr '\n' ' ')
	bad=$(awk -v r="$range" -v w="$want" '$1 == r && $4 != w' "$W/sptes" | wc -l)
	awk -v r="$range" '$1 == r { printf "# %s gfn 0x%s level %s spte 0x%s type 0x%s\n", $1, $2, $3, $5, $4 }' "$W/sptes" | head -n 4
	check "$([ "$total" -gt 0 ] && [ "$bad" = 0 ]; echo $?)" \
		"$range: every SPTE has memory type 0x$want ($total SPTEs, types seen: ${types:-none})"
done
echo "# all kvm_mmu_set_spte events of QEMU: $(grep -c 'kvm_mmu_set_spte:' "$W/trace")"

if [ $FLUSH = 1 ]; then
	# Each DIMM SPTE's host physical address (bits 12-51 of the SPTE) and
	# size, as the flush event prints them: hex without leading zeros.
	awk '$1 == "dimm" {
		sp = $5; sub(/^0x/, "", sp)
		s = sprintf("%016s", sp); gsub(/ /, "0", s)
		hpa = substr(s, 4, 10) "000"; sub(/^0+/, "", hpa)
		size = 4096; for (l = 1; l < $3; l++) size *= 512
		printf "hpa %s size %x\n", (hpa == "" ? "0" : hpa), size
	}' "$W/sptes" | sort -u >"$W/dimm-maps"
	grep 'kvm_mmu_flush_noncoherent_dma:' "$W/trace" | sed 's/.*kvm_mmu_flush_noncoherent_dma: /# flush: /' | head -n 8
	nmaps=$(wc -l <"$W/dimm-maps") missing=0
	while read -r what; do
		for when in installed zapped; do
			grep -q "kvm_mmu_flush_noncoherent_dma: $what $when" "$W/trace" ||
				{ echo "# no '$what $when' flush"; missing=$((missing + 1)); }
		done
	done <"$W/dimm-maps"
	check "$([ "$nmaps" -gt 0 ] && [ $missing = 0 ]; echo $?)" \
		"dimm: KVM flushed the caches of each of its $nmaps mappings when installed and when the eject zapped it (address and size)"
fi

echo "1..$n"
[ $failed = 0 ]
