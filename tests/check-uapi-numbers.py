#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The library's compat header and the kernel series must agree on every
number they share. Reads the UAPI lines each series adds (patches/*/0*.patch)
and libkvmnc/compat-kvm.h, and compares. Prints TAP."""
import glob
import os
import re
import sys

NAMES = ["KVM_DEV_TYPE_VIRTIO", "KVM_DEV_VIRTIO_NONCOHERENT", "KVM_DEV_VIRTIO_NONCOHERENT_SET",
         "KVM_MEM_NON_COHERENT_DMA", "KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA"]


def value(expr):
    expr = re.sub(r"(\d+)U?L{0,2}\b", r"\1", expr.strip())
    if not re.fullmatch(r"[0-9xa-fA-F()<| ]+", expr):
        return None
    return eval(expr, {"__builtins__": {}})  # digits, parens and shifts only


def defs(lines):
    out = {}
    for line in lines:
        m = re.match(r"\s*#\s*define\s+(\w+)\s+(.+?)\s*(/\*.*)?$", line) or \
            re.match(r"\s*(\w+)\s*=\s*([^,]+),", line)
        if m and m.group(1) in NAMES:
            v = value(m.group(2))
            if v is not None:
                out.setdefault(m.group(1), v)
    return out


def series_defs(patches):
    """The shared numbers the UAPI lines of these patches define."""
    added = []
    for p in patches:
        in_uapi = False
        for line in open(p, encoding="utf-8", errors="replace"):
            if line.startswith("+++ "):
                in_uapi = "include/uapi/" in line
            elif in_uapi and line.startswith("+"):
                added.append(line[1:])
    return defs(added)


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Every series directory (patches/6.12, patches/7.2, ...) with a 0001+ patch.
    series = {}
    for d in sorted(glob.glob(os.path.join(top, "patches", "*", "BASE"))):
        d = os.path.dirname(d)
        patches = sorted(p for p in glob.glob(os.path.join(d, "0*.patch"))
                         if not os.path.basename(p).startswith("0000"))
        if patches:
            series[os.path.relpath(d, top)] = patches
    if not series:
        print("1..0 # SKIP no directory patches/*/ holds a series yet")
        return 0  # a TAP skip-all plan; Meson 1.0 calls exit 77 an ERROR
    lib = defs(open(os.path.join(top, "libkvmnc", "compat-kvm.h")).read().splitlines())
    n = bad = 0
    for rel, patches in sorted(series.items()):
        got = series_defs(patches)
        for name in NAMES:
            n += 1
            ok = name in got and name in lib and got[name] == lib[name]
            bad += not ok
            print(f"{'ok' if ok else 'not ok'} {n} - {rel}: {name}: series {got.get(name)},"
                  f" library {lib.get(name)}")
    print(f"1..{n}")
    return 1 if bad else 0


sys.exit(main())
