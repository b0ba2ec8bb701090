#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-fw.sh OUTDIR: assemble fw.S into OUTDIR/fw.bin (the -bios image of
# the end-to-end guest) and, with HOTPLUG defined, OUTDIR/fw-hotplug.bin
# (the same, then the hot-plugged pc-dimm until its eject), and write
# OUTDIR/fw.env, the guest-physical layout the driver (qemu-e2e.sh) checks
# the SPTEs of.  The layout is defined here only.  Needs binutils (as, ld).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 1; }
OUT=$1
mkdir -p "$OUT"

# Plain RAM (the first NUMA node, 0-16 MiB) and the non-coherent backend
# (the second node, 16-32 MiB): NPAGES pages in each.
PLAIN_GPA=0x200000
NC_GPA=0x1000000
NPAGES=16
# The hot-plugged DIMM: QEMU's pc machine puts its device memory at 4 GiB
# when the RAM ends below it (the firmware checks the address QEMU reports).
DIMM_GPA=0x100000000
DIMM_MB=16

build() { # NAME [--defsym ...]
	name=$1
	shift
	as --32 --defsym PLAIN_GPA=$PLAIN_GPA --defsym NC_GPA=$NC_GPA --defsym NPAGES=$NPAGES \
		"$@" -o "$OUT/$name.o" "$HERE/fw.S"
	ld -m elf_i386 -Ttext=0 -e 0 --oformat binary -o "$OUT/$name.bin" "$OUT/$name.o"
	rm -f "$OUT/$name.o"
	size=$(wc -c <"$OUT/$name.bin")
	[ "$size" -eq 65536 ] || { echo "$name.bin is $size bytes, want 65536" >&2; exit 1; }
}
build fw
build fw-hotplug --defsym HOTPLUG=1 --defsym DIMM_GPA_LO=$((DIMM_GPA & 0xffffffff)) \
	--defsym DIMM_GPA_HI=$((DIMM_GPA >> 32))
cat >"$OUT/fw.env" <<ENV
PLAIN_GPA=$PLAIN_GPA
NC_GPA=$NC_GPA
NPAGES=$NPAGES
DIMM_GPA=$DIMM_GPA
DIMM_MB=$DIMM_MB
RAM_MB=32
NODE_MB=16
ENV
