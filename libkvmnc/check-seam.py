#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The system-call seam is a rule the build keeps.

Every call the library makes into the kernel, and every allocation, goes
through struct kvmnc_sys (sys.c), so that the unit tests can stand in a fake
kernel and fail each call in turn; every KVM ioctl goes through kvm.c, so
that a struct is filled the same way whoever asks. libkvmnc/meson.build runs
this at configure time and refuses to configure when a library source calls
a raw system call or allocator outside sys.c, or issues SYS(ioctl, ...)
outside kvm.c. (#pragma GCC poison cannot do it: the seam's own members
are named open, ioctl, malloc.)

  check-seam.py DIR   exit 1 and name each offending line
"""
import os
import re
import sys

RAW = ("open", "openat", "close", "read", "write", "ioctl", "fcntl", "fstat", "mmap",
       "munmap", "uname", "syscall", "malloc", "calloc", "realloc", "strdup", "fopen")
# A call: not a member (->x, .x), not part of a longer name, not a SYS() argument.
CALL = re.compile(r"(?<![\w.>])(%s)\s*\(" % "|".join(RAW))


def strip(text):
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)


def main():
    top = sys.argv[1]
    bad = []
    for name in sorted(os.listdir(top)):
        if not name.endswith((".c", ".h")) or name == "sys.c":
            continue
        with open(os.path.join(top, name), encoding="utf-8") as f:
            lines = strip(f.read()).split("\n")
        for no, line in enumerate(lines, 1):
            for m in CALL.finditer(line):
                bad.append("%s:%d: raw %s() outside sys.c: use SYS()" % (name, no, m.group(1)))
            if name != "kvm.c" and re.search(r"\bSYS\(\s*ioctl\b", line):
                bad.append("%s:%d: a KVM ioctl outside kvm.c" % (name, no))
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
