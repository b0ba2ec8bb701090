#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The library's compat header and the kernel series must agree on every
number they share. Reads the UAPI lines the series adds (patches/0*.patch)
and libkvmnc/compat-kvm.h, and compares. Numbers that differ between the
kernels the library supports (the 6.12 backport, the 7.2 series) are
names of the library's own (ALIASES): the series' number must be one of
them. A name only newer series define (OPTIONAL) is skipped when the
series in patches/ lacks it. Prints TAP."""
import glob
import os
import re
import sys

NAMES = ["KVM_DEV_TYPE_VIRTIO", "KVM_DEV_VIRTIO_NONCOHERENT", "KVM_DEV_VIRTIO_NONCOHERENT_SET",
         "KVM_MEM_NON_COHERENT_DMA", "KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA",
         "KVM_CAP_X86_EMULATE_WBINVD"]
ALIASES = {
    "KVM_DEV_TYPE_VIRTIO": ["KVMNC_DEV_TYPE_VIRTIO_612", "KVMNC_DEV_TYPE_VIRTIO_V3"],
    "KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA": ["KVMNC_CAP_NONCOHERENT_DMA_612",
                                               "KVMNC_CAP_NONCOHERENT_DMA_V3"],
}
OPTIONAL = {"KVM_CAP_X86_EMULATE_WBINVD"}


LIB_NAMES = {a for names in ALIASES.values() for a in names}


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
        if m and (m.group(1) in NAMES or m.group(1) in LIB_NAMES):
            v = value(m.group(2))
            if v is not None:
                out.setdefault(m.group(1), v)
    return out


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    patches = sorted(p for p in glob.glob(os.path.join(top, "patches", "0*.patch"))
                     if not os.path.basename(p).startswith("0000"))
    if not patches:
        print("1..0 # SKIP patches/ holds no series yet")
        return 0  # a TAP skip-all plan; Meson 1.0 calls exit 77 an ERROR
    added = []
    for p in patches:
        in_uapi = False
        for line in open(p, encoding="utf-8", errors="replace"):
            if line.startswith("+++ "):
                in_uapi = "include/uapi/" in line
            elif in_uapi and line.startswith("+"):
                added.append(line[1:])
    series = defs(added)
    lib = defs(open(os.path.join(top, "libkvmnc", "compat-kvm.h")).read().splitlines())
    n = bad = 0
    for name in NAMES:
        n += 1
        known = sorted({lib[a] for a in ALIASES.get(name, [name]) if a in lib})
        if name in OPTIONAL and name not in series:
            print(f"ok {n} - {name}: library {known} # SKIP the series in patches/ does not define it")
            continue
        ok = name in series and series[name] in known
        bad += not ok
        print(f"{'ok' if ok else 'not ok'} {n} - {name}: series {series.get(name)}, library {known}")
    print(f"1..{n}")
    return 1 if bad else 0


sys.exit(main())
