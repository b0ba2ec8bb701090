# SPDX-License-Identifier: LGPL-2.1-or-later
"""The guest's initramfs: the plan file its /init runs (NAME TIMEOUT
COMMAND lines) and the cpio archive mkinitramfs.sh packs around it with
busybox and the guest programs.  The guest has no libc, so every program
that goes in must be statically linked."""

import os
import struct
import subprocess
import time

from .config import TIER_DIR
from .tap import log


def is_dynamic_elf(path):
    """True when the ELF file has a PT_INTERP segment (needs a libc)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            return None
        phoff, = struct.unpack_from("<Q", hdr, 32)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack("<I", f.read(4))
            if p_type == 3:
                return True
    return False


def write_plan(path, plan):
    with open(path, "w", encoding="utf-8") as f:
        for name, tmo, cmd in plan:
            f.write(f"{name} {tmo} {cmd}\n")


def kernel_modules(kdir, vendor, modparams=None):
    """[(module file, insmod parameters)] a distribution kernel's guest loads
    before its plan, in fetch-distro-kernel.sh's order: the common ones and
    the vendor's (intel | amd); [] for a kernel with KVM built in."""
    order = os.path.join(kdir, "modules.load")
    if not os.path.exists(order):
        return []
    mods = []
    with open(order, encoding="utf-8") as f:
        for ln in f:
            name, role = ln.split()
            if role in ("common", vendor):
                mods.append((os.path.join(kdir, "modules", name + ".ko"),
                             (modparams or {}).get(name, "")))
    return mods


def mkinitramfs(out, planf, files=(), env=None, modules=(), **run_args):
    """Run mkinitramfs.sh: files are (host path, guest path) pairs, env the
    variables the guest's /init exports, modules (file, parameters) pairs
    it loads first."""
    cmd = [os.path.join(TIER_DIR, "mkinitramfs.sh"), "-o", out, "-p", planf]
    for src, dest in files:
        cmd += ["-f", f"{src}={dest}"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    for path, params in modules:
        cmd += ["-m", f"{path}:{params}" if params else path]
    subprocess.run(cmd, check=True, **run_args)


def pack(run, logdir, plan, files, env, modules=()):
    """The run's plan and initramfs in logdir; returns the initramfs path."""
    planf = os.path.join(logdir, "plan")
    write_plan(planf, plan)
    initrd = os.path.join(logdir, "initramfs.cpio")
    t0 = time.monotonic()
    mkinitramfs(initrd, planf, files, env, modules)
    log(f"{run}: initramfs {os.path.getsize(initrd) >> 20} MiB in {time.monotonic() - t0:.1f} s")
    return initrd
