#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# host-check.sh QEMU: the end-to-end checks that need no memory-type
# tracing, on this machine's own /dev/kvm (CI runs it on the build host):
# for each noncoherent-dma scope, QEMU either reports the mechanism
# kvmnc-probe recommends within that scope and runs the guest (exit 33,
# migration blocked), or refuses the non-coherent backend with the
# reasons when the scope allows none.  Needs kvmnc-probe (kvmnc-tools or
# the build's tools/) and python3.  Exit 77 without /dev/kvm.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 QEMU" >&2; exit 1; }
QEMU=$1
[ -c /dev/kvm ] || { echo "1..0 # SKIP no /dev/kvm"; exit 77; }
PROBE=${KVMNC_PROBE:-kvmnc-probe}

FW=$(mktemp -d)
trap 'rm -rf "$FW"' EXIT
"$HERE/build-fw.sh" "$FW"

# The narrowest supported mechanism, and the scope each one needs.
json=$("$PROBE" --json || true)
rec=$(printf '%s' "$json" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("recommended") or "none")')
case $rec in
native | memslot_flag) need=slot ;;
virtio_device) need=vm ;;
guest_pat_quirk) need=vm-irreversible ;;
none) need=never ;;
*) echo "Bail out! kvmnc-probe recommends '$rec'"; exit 1 ;;
esac
echo "# kvmnc-probe recommends $rec here (needs noncoherent-dma=$need)"

# The 7.2 series blocks migration while the VM holds non-coherent memory;
# the 10.2 series migrates it with coherent copies.
MIG=blocked
[ "${KVMNC_QEMU_SERIES:-7.2}" = 7.2 ] || MIG=none

rank() { case $1 in slot) echo 1 ;; vm) echo 2 ;; vm-irreversible) echo 3 ;; *) echo 9 ;; esac; }
rc=0
"$HERE/qemu-e2e.sh" --qemu "$QEMU" --fw "$FW" --scope off --no-sptes --expect-mechanism none || rc=1
for scope in slot vm vm-irreversible; do
	if [ "$(rank "$scope")" -ge "$(rank "$need")" ]; then
		"$HERE/qemu-e2e.sh" --qemu "$QEMU" --fw "$FW" --scope $scope --no-sptes \
			--migrate "$MIG" --expect-mechanism "$rec" || rc=1
	else
		"$HERE/qemu-e2e.sh" --qemu "$QEMU" --fw "$FW" --scope $scope --expect-refused || rc=1
	fi
done
exit $rc
