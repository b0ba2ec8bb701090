#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The library's compat header and the kernel series must agree on every
number they share. Reads the UAPI lines each series adds
(patches/<base>/0*.patch) and libkvmnc/compat-kvm.h, and compares. Numbers
that differ between the series are names of the library's own: each series
directory must match exactly the library name for its base (SERIES_ALIAS).
A name only newer series define (OPTIONAL) is skipped when a series lacks
it. Prints TAP."""
import glob
import os
import re
import sys

NAMES = ["KVM_DEV_TYPE_VIRTIO", "KVM_DEV_VIRTIO_NONCOHERENT", "KVM_DEV_VIRTIO_NONCOHERENT_SET",
         "KVM_MEM_NON_COHERENT_DMA", "KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA",
         "KVM_CAP_X86_EMULATE_WBINVD"]
OPTIONAL = {"KVM_CAP_X86_EMULATE_WBINVD"}
# Which of the library's names each series directory's number must equal.
SERIES_ALIAS = {
    "6.12": {"KVM_DEV_TYPE_VIRTIO": "KVMNC_DEV_TYPE_VIRTIO_612",
             "KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA": "KVMNC_CAP_NONCOHERENT_DMA_612"},
    "7.2": {"KVM_DEV_TYPE_VIRTIO": "KVMNC_DEV_TYPE_VIRTIO_V3",
            "KVM_CAP_USER_CONFIGURE_NONCOHERENT_DMA": "KVMNC_CAP_NONCOHERENT_DMA_V3"},
}


LIB_NAMES = {name for names in SERIES_ALIAS.values() for name in names.values()}


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


# Enumerators of the bases that a series' implicitly numbered enumerator can
# follow (7.2's include/uapi/linux/kvm.h): the series then adds one.
BASE_ENUM = {"KVM_DEV_TYPE_ARM_VGIC_V5": 16}


def series_defs(patches):
    added = []
    out = {}
    for p in patches:
        in_uapi = False
        prev_enum = None
        for line in open(p, encoding="utf-8", errors="replace"):
            if line.startswith("+++ "):
                in_uapi = "include/uapi/" in line
                continue
            if not in_uapi or line.startswith("-"):
                continue
            m = re.match(r"[+ ]\s*(KVM_\w+),\s*$", line)
            if m and line.startswith("+") and m.group(1) in NAMES and prev_enum in BASE_ENUM:
                out[m.group(1)] = BASE_ENUM[prev_enum] + 1
            if m:
                prev_enum = m.group(1)
            if line.startswith("+"):
                added.append(line[1:])
    out.update(defs(added))
    return out


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Every series directory (patches/6.12, patches/7.2, ...) with a 0001+ patch.
    series = {}
    for d in sorted(glob.glob(os.path.join(top, "patches", "*", "BASE"))):
        d = os.path.dirname(d)
        patches = sorted(p for p in glob.glob(os.path.join(d, "0*.patch"))
                         if not os.path.basename(p).startswith("0000"))
        if patches:
            series[os.path.basename(d)] = patches
    if not series:
        print("1..0 # SKIP no directory patches/*/ holds a series yet")
        return 0  # a TAP skip-all plan; Meson 1.0 calls exit 77 an ERROR
    lib = defs(open(os.path.join(top, "libkvmnc", "compat-kvm.h")).read().splitlines())
    n = bad = 0
    for base, patches in sorted(series.items()):
        got = series_defs(patches)
        for name in NAMES:
            n += 1
            libname = SERIES_ALIAS.get(base, {}).get(name, name)
            if name in OPTIONAL and name not in got:
                print(f"ok {n} - patches/{base}: {name}: library {lib.get(libname)}"
                      " # SKIP the series does not define it")
                continue
            ok = name in got and libname in lib and got[name] == lib[libname]
            bad += not ok
            print(f"{'ok' if ok else 'not ok'} {n} - patches/{base}: {name}: series {got.get(name)},"
                  f" library {libname} = {lib.get(libname)}")
    print(f"1..{n}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
