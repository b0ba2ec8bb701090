#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every live test, pointed at a KVM node that does not exist, must skip the
way Meson's TAP reader understands: the plan "1..0 # SKIP reason" and, with
KVMNC_SKIP_EXIT=0 as tests/live/meson.build sets it, exit status 0 (Meson
1.0 reports a TAP test that exits non-zero as an ERROR, whatever its plan
says), a reason (the missing node, or a host the test cannot use at all,
such as live-memtype's non-VMX host), and nothing else on stdout. A host
without /dev/kvm then shows the live suite as skipped instead of failing
it. Without the variable the skip exits 77, which the kernel tier's guest
runner reads."""
import os
import subprocess
import sys


def main():
    exes = sys.argv[1:]
    base = dict(os.environ, KVMNC_DEVICE="/nonexistent/kvm")
    base.pop("KVMNC_EXPECT", None)
    base.pop("KVMNC_SKIP_EXIT", None)
    n = bad = 0
    for exe in exes:
        name = os.path.basename(exe)
        for skip_exit, want in (("0", 0), (None, 77)):
            env = dict(base, KVMNC_SKIP_EXIT=skip_exit) if skip_exit else base
            p = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=60,
                               check=False)
            lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
            ok = (p.returncode == want and len(lines) == 1
                  and lines[0].startswith("1..0 # SKIP ") and len(lines[0]) > len("1..0 # SKIP "))
            n += 1
            bad += not ok
            # A "#" would start a TAP directive inside the description, and
            # Meson 1.0 does not honor the backslash escape.
            seen = repr(lines[:3]).replace("#", "<hash>")
            how = "KVMNC_SKIP_EXIT=0" if skip_exit else "no KVMNC_SKIP_EXIT"
            print(f"{'ok' if ok else 'not ok'} {n} - {name} without a KVM node, {how}:"
                  f" exit {p.returncode} (want {want}), stdout {seen}")
    print(f"1..{n}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
