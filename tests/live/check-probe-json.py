#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""kvmnc-probe --json has every fact a bug report needs (1.0 left out
memslot_flag_cap and the VM-type facts), with the right types, and
--vm-type 0 answers for a VM. Prints TAP; 77 without a usable /dev/kvm."""
import json
import subprocess
import sys

FIELDS = {
    "kernel": str, "cpu_vendor": str, "self_snoop": (bool, type(None)),
    "kvm_api_version": int, "tdp": (bool, type(None)), "quirks_mask": int,
    "memslot_flag_cap": int, "virtio_device_type": int, "vm_types": int,
    "vm_type": (int, type(None)), "vm_private_memory": bool, "vm_protected_state": bool,
    "address_spaces": int, "memslots": int, "probed_on": str, "mechanisms": dict,
    "recommended": (str, type(None)), "libkvmnc": str,
    # Since 1.3 (keys are only ever added).
    "wbinvd_emulation": dict,
}
MECHS = ["virtio_device", "memslot_flag", "guest_pat_quirk", "native"]


def run(tool, *args):
    p = subprocess.run([tool, "--json", *args], capture_output=True, text=True, check=False)
    if p.returncode == 2:
        print(f"1..0 # SKIP kvmnc-probe: {p.stderr.strip()}")
        sys.exit(0)  # a TAP skip-all plan; Meson 1.0 calls exit 77 an ERROR
    return json.loads(p.stdout)


def main():
    tool = sys.argv[1]
    n = bad = 0
    for args in [(), ("--vm-type", "0")]:
        j = run(tool, *args)
        what = " ".join(args) or "host"
        for k, t in FIELDS.items():
            n += 1
            ok = k in j and isinstance(j[k], t) and not (t is int and isinstance(j[k], bool))
            bad += not ok
            print(f"{'ok' if ok else 'not ok'} {n} - {what}: {k} = {j.get(k)!r}")
        n += 1
        ok = all(m in j["mechanisms"] and {"supported", "known", "reason", "code"} <= set(j["mechanisms"][m])
                 for m in MECHS)
        bad += not ok
        print(f"{'ok' if ok else 'not ok'} {n} - {what}: every mechanism with its reason")
        n += 1
        w = j["wbinvd_emulation"]
        ok = {"supported", "known", "reason", "code", "cap"} <= set(w) and \
            isinstance(w["supported"], bool) and isinstance(w["cap"], int) and \
            (w["cap"] in (0, 251)) and (not w["supported"] or w["cap"] == 251)
        bad += not ok
        print(f"{'ok' if ok else 'not ok'} {n} - {what}: wbinvd_emulation = {w!r}")
        n += 1
        ok = j["probed_on"] in ("scratch_vm", "callers_vm", "nowhere")
        bad += not ok
        print(f"{'ok' if ok else 'not ok'} {n} - {what}: probed_on is one of the documented values")
    n += 1
    ok = j["vm_type"] == 0
    bad += not ok
    print(f"{'ok' if ok else 'not ok'} {n} - --vm-type 0 answers for a VM of type 0")
    print(f"1..{n}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
