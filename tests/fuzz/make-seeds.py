#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the seed corpora of the fuzz harnesses to corpus/<harness>/.

Each seed is a small, valid encoding of a scenario in the input layout the
harness reads (see the comment at the top of fuzz-region.c and fuzz-open.c),
so that fuzzing starts from deep paths: every fake personality, every scope
and forced mechanism, regions created, moved and deleted, devices, the
migration helpers, queries with odd struct sizes, and kernel failures.

Deterministic: running it again rewrites the same files (seed-*.bin only;
other files in the corpus directories, such as minimized crash inputs, are
kept). Usage: make-seeds.py [OUTDIR]   (default: corpus/ next to this file)
"""
import os
import struct
import sys

# Index order of fake_personalities[] in tests/unit/fake-kernel.c.
PERSONALITIES = [
    "debian-6.1", "stable-6.12-intel", "stable-6.12-intel-nosnoop", "upstream-6.18-intel",
    "amd-npt", "amd-npt-6.1", "chromeos-6.6", "chromeos-6.12", "patched-6.12",
    "patched-6.12-amd-shadow", "patched-6.12-private-vm", "pvm-shadow", "type32-collision",
    "arm64", "no-scratch-vm", "no-permission", "old-api",
    "seed-rfc-6.12", "loongarch-type12", "tdx-6.16", "needs-vm-type", "sandboxed",
    "unprivileged", "stable-6.12-clearcpuid-ss", "patched-v1-nosnoop", "patched-v1-ept0",
    "patched-v2-nosnoop", "patched-v2-ept0", "patched-v2",
]
P = {name: i for i, name in enumerate(PERSONALITIES)}

SCOPE_SLOT, SCOPE_VM, SCOPE_IRREV = 0, 1, 2
MECH_NONE, MECH_NATIVE, MECH_FLAG, MECH_VIRTIO, MECH_QUIRK = range(5)

REGION_SZ = 56  # sizeof(struct kvmnc_region) on LP64
OPTS_SZ = 32  # sizeof(struct kvmnc_open_opts) on LP64 (1.1)
FEAT_SZ = 1184  # sizeof(struct kvmnc_features) on LP64 (1.1)
# Index into fz_errnos[] in fuzz-common.h.
ERR = {"EINTR": 0, "ENOMEM": 1, "EMFILE": 2, "EIO": 4, "EINVAL": 5, "ENOTTY": 6,
       "EBADF": 7, "EPERM": 8, "EFAULT": 13, "EAGAIN": 14, "EEXIST": 16}


# ---- fuzz-region ----------------------------------------------------------

def r_header(pers, scope=SCOPE_SLOT, mech=MECH_NONE):
    """Byte 0 personality, byte 1 scope (b % 3) and forced mechanism (0x80 | mech << 2)."""
    b = 0
    for cand in range(256):
        want_mech = (cand >> 2) % 5 if cand & 0x80 else MECH_NONE
        if cand % 3 == scope and want_mech == mech and (mech != MECH_NONE or not cand & 0x80):
            b = cand
            break
    return bytes([P[pers], b])


def slot_byte(slot_id, as_id=0):
    assert 0 <= slot_id < 24 and as_id in (0, 1)
    return bytes([(as_id << 5) | slot_id])


def r_region(slot_id, gpa_page, pages, hva_page=0, nc=False, flags=0, as_id=0, sz_mode=0,
             sz_arg=0, trailing=b"", op=0):
    """A structured set_region operation (opcode op % 16 in 0..6; 14: the VMM-owned path)."""
    mode = sz_mode << 1
    if trailing:
        mode |= 0x10
    f = (flags & 3) | (4 if nc else 0)
    out = bytes([op, mode, f, gpa_page, pages & 7, hva_page]) + slot_byte(slot_id, as_id)
    if sz_mode:
        out += bytes([sz_arg])
        if sz_mode >= 2 and trailing:
            out += trailing
    return out


def r_raw_region(fields, sz_mode=0, sz_arg=0):
    """A raw set_region: the struct's bytes as given (slot, flags, gpa, size, hva, off, fd, kf)."""
    slot, flags, gpa, size, hva, off, memfd, kflags = fields
    body = struct.pack("<QIIQQQQiI", REGION_SZ, slot, flags, gpa, size, hva, off, memfd, kflags)
    out = bytes([0, 1 | (sz_mode << 1)]) + body
    if sz_mode:
        out += bytes([sz_arg])
    return out


def r_dev(dev_id, enable=True):
    return bytes([7 if enable else 9, dev_id])


def r_copy(mode, length, soff, doff):
    return bytes([10, mode]) + struct.pack("<HHH", length, soff, doff)


def r_query(info, sz):
    return bytes([12, 1 if info else 0]) + struct.pack("<H", sz)


def r_fail(after, err):
    return bytes([13, after - 1, ERR[err]])


R_CLEAR_FAIL = bytes([15])
VMM = 14  # r_region(op=VMM): prepare, the VMM's ioctl, complete


def region_seeds():
    seeds = {}
    for i, pers in enumerate(PERSONALITIES):
        # Every personality with the widest scope, and with one other in turn.
        for scope in sorted({SCOPE_IRREV, i % 2}):
            seq = (r_region(1, 0, 4, 0, nc=True) + r_region(2, 16, 2, 4) +
                   r_dev(3) + r_copy(1, 512, 0, 0) + r_copy(0, 4096, 64, 100) +
                   r_region(1, 32, 4, 0, nc=True) + r_region(1, 0, 0) + r_dev(3, False))
            seeds[f"{pers}-scope{scope}"] = r_header(pers, scope) + seq
    # Forced mechanisms where they exist, and where they do not.
    for pers, scope, mech in [("amd-npt", SCOPE_SLOT, MECH_NATIVE),
                              ("patched-6.12", SCOPE_SLOT, MECH_FLAG),
                              ("patched-6.12", SCOPE_VM, MECH_VIRTIO),
                              ("stable-6.12-intel", SCOPE_IRREV, MECH_QUIRK),
                              ("debian-6.1", SCOPE_SLOT, MECH_FLAG),
                              ("patched-6.12", SCOPE_SLOT, MECH_VIRTIO)]:
        seq = (r_region(3, 0, 2, 2, nc=True) + r_dev(1) + r_dev(2) + r_region(4, 8, 1, 5) +
               r_copy(3, 8192, 8192, 0) + r_region(3, 0, 0) + r_dev(1, False))
        seeds[f"forced-{pers}-{mech}"] = r_header(pers, scope, mech) + seq
    # Struct sizes: old callers, trailing zeros, trailing garbage, below size_t.
    for name, sz_mode, arg, trailing in [("short", 1, 40, b""), ("tiny", 1, 4, b""),
                                        ("long-zero", 2, 30, b""),
                                        ("long-junk", 2, 8, b"\x00\x00\x01\x00\x00\x00\x00\x00")]:
        seeds[f"sz-{name}"] = (r_header("patched-6.12", SCOPE_VM) +
                               r_region(5, 0, 2, 0, nc=True, sz_mode=sz_mode, sz_arg=arg,
                                        trailing=trailing) + r_region(5, 0, 0))
    # Raw structs: slots past the limits, unknown flags, misaligned, wrapping.
    raws = [
        (0x10000 | 7, 0, 0x100000, 0x2000, 0x7f0000001000, 0, 0, 1),
        (0x100000, 0, 0, 0x1000, 0x1000, 0, 0, 0),
        (8, 1 << 7, 0, 0x1000, 0x1000, 0, 0, 0),
        (8, 0, 0x1001, 0x1000, 0x1000, 0, 0, 1),
        (8, 0, 0xfffffffffffff000, 0x2000, 0x1000, 0, 0, 0),
        (8, 4, 0, 0x1000, 0x1000, 0, 3, 1),
        (8, 4, 0, 0x1000, 0x1000, 0x1000, 3, 0),
        (8, 0, 0, 0x1000, 0x1000, 0, 0, 2),
    ]
    for i, f in enumerate(raws):
        seeds[f"raw-{i}"] = r_header("chromeos-6.12") + r_raw_region(f)
    # Changing a slot's coherence, overlaps, second address space, many slots.
    seeds["change-nc"] = (r_header("patched-6.12") + r_region(2, 0, 1, 0, nc=True) +
                          r_region(2, 0, 1, 0, nc=False) + r_region(3, 0, 1) +
                          r_region(2, 4, 1, 1, nc=True, as_id=1))
    seeds["many-slots"] = r_header("chromeos-6.6") + b"".join(
        r_region(i, 4 * i, 2, i % 8, nc=bool(i & 1)) for i in range(20))
    seeds["many-devs"] = r_header("patched-6.12", SCOPE_VM) + b"".join(
        r_dev(i) for i in range(12)) + b"".join(r_dev(i, False) for i in range(0, 12, 2))
    # Queries with odd struct sizes.
    seeds["queries"] = (r_header("amd-npt") + r_query(False, 8) + r_query(False, 7) +
                        r_query(True, 20) + r_query(True, 1000) + r_query(False, 750))
    # Kernel failures at each point of a VIRTIO region and a quirk device.
    for n in range(1, 4):
        for err in ("EINTR", "ENOMEM", "EBADF"):
            seeds[f"fail-virtio-{n}-{err}"] = (r_header("patched-6.12", SCOPE_VM, MECH_VIRTIO) +
                                               r_fail(n, err) + r_region(6, 0, 1, 0, nc=True) +
                                               R_CLEAR_FAIL + r_region(6, 0, 1, 0, nc=True) +
                                               r_fail(n, err) + r_dev(5) + r_fail(n, err) +
                                               r_region(6, 0, 0))
        seeds[f"fail-quirk-{n}"] = (r_header("stable-6.12-intel", SCOPE_IRREV) +
                                    r_fail(n, "EIO") + r_dev(2) + r_region(1, 0, 1, 0, nc=True))
    seeds["fail-at-close"] = (r_header("patched-6.12", SCOPE_VM) + r_dev(1) +
                              r_region(1, 0, 1, 0, nc=True) + r_fail(1, "EINTR"))
    # The VMM-owned path: create, update, delete through the VMM's own ioctl,
    # mixed with the library's, on every mechanism.
    for pers, scope, mech in [("patched-6.12", SCOPE_SLOT, MECH_NONE),
                              ("patched-6.12", SCOPE_VM, MECH_VIRTIO),
                              ("stable-6.12-intel", SCOPE_IRREV, MECH_NONE),
                              ("amd-npt", SCOPE_SLOT, MECH_NONE),
                              ("chromeos-6.6", SCOPE_SLOT, MECH_NONE),
                              ("debian-6.1", SCOPE_IRREV, MECH_NONE)]:
        seq = (r_region(1, 0, 2, 0, nc=True, op=VMM) + r_region(1, 0, 2, 0, nc=True, flags=1,
                                                               op=VMM) +
               r_region(2, 8, 1, 3, op=VMM) + r_region(1, 0, 0, op=VMM) +
               r_region(1, 0, 2, 0, nc=False) + r_region(3, 0, 1, 2, nc=True, op=VMM) +
               r_fail(1, "EINTR") + r_region(4, 16, 1, 4, nc=True, op=VMM) + R_CLEAR_FAIL)
        seeds[f"vmm-{pers}-{scope}-{mech}"] = r_header(pers, scope, mech) + seq
    return seeds


# ---- fuzz-open ------------------------------------------------------------

PATHS = [None, "/dev/kvm", "/dev/kvm-alt", "", "/dev/null", "kvm", "/dev/kvm/"]


def o_head(pers, fail_nth=0, err="EINTR", probe=None, probe_sz=0, twice=False):
    """Personality, fault position, errno, then the optional probe."""
    out = bytes([P[pers], fail_nth, ERR[err]])
    if probe is None:
        return out + b"\x00"
    b = 1 | (PATHS.index(probe) << 1) | (0x80 if twice else 0)
    return out + bytes([b]) + struct.pack("<H", probe_sz)


def o_handle(fd_kind=6, scope=0, mech=0, path=None, sz_mode=0, sz_arg=0, null_opts=False,
             null_out=False, query_sz=None, raw=None, last=False):
    """One kvmnc_open(): fd kind, options, out pointer, then a query and whether to stop."""
    out = bytes([fd_kind])
    if null_opts:
        out += b"\x00"
    elif raw is not None:
        out += bytes([0x09 | (sz_mode << 4)]) + raw.ljust(96, b"\x00")[:96]
    else:
        out += bytes([0x01 | (sz_mode << 4), scope | (mech << 2)])
    if not null_opts:
        if sz_mode:
            out += bytes([sz_arg])
        out += bytes([PATHS.index(path)])
    out += b"\xff" if null_out else b"\x00"
    if query_sz is None:
        out += b"\x00"
    else:
        out += b"\x01" + struct.pack("<H", query_sz)
    out += b"\x00" if last else b"\x01"
    return out


def open_seeds():
    seeds = {}
    for pers in PERSONALITIES:
        seeds[f"{pers}"] = (o_head(pers, probe="/dev/kvm", probe_sz=FEAT_SZ, twice=True) +
                            o_handle(scope=1, query_sz=200) + o_handle(scope=2, query_sz=8))
    for fd_kind in range(6):
        seeds[f"fd-kind-{fd_kind}"] = o_head("patched-6.12") + o_handle(fd_kind=fd_kind)
    for path in PATHS:
        name = "null" if path is None else (path.strip("/").replace("/", "-") or "empty")
        seeds[f"path-{name}"] = (o_head("chromeos-6.12", probe=path, probe_sz=FEAT_SZ) +
                                 o_handle(path=path, query_sz=100))
    for mech in range(5):
        for scope in range(3):
            seeds[f"mech{mech}-scope{scope}"] = o_head("patched-6.12") + o_handle(
                scope=scope, mech=mech, query_sz=FEAT_SZ)
    seeds["opts-null"] = o_head("amd-npt") + o_handle(null_opts=True, last=True)
    seeds["out-null"] = o_head("amd-npt") + o_handle(null_out=True)
    seeds["opts-short"] = o_head("amd-npt") + o_handle(sz_mode=1, sz_arg=12)
    seeds["opts-tiny"] = o_head("amd-npt") + o_handle(sz_mode=1, sz_arg=3)
    seeds["opts-long"] = o_head("amd-npt") + o_handle(sz_mode=2, sz_arg=40)
    raw = struct.pack("<QiiQ", 40, 1, 0, 0) + b"\x00" * 8 + b"\x07"
    seeds["opts-raw-junk"] = o_head("amd-npt") + o_handle(raw=raw, sz_mode=2, sz_arg=17)
    seeds["opts-raw-bad-scope"] = o_head("amd-npt") + o_handle(
        raw=struct.pack("<Qii", 24, 7, -1))
    seeds["probe-sizes"] = (o_head("debian-6.1", probe="/dev/kvm", probe_sz=4) +
                            o_handle(query_sz=9))
    seeds["probe-sizes-big"] = o_head("debian-6.1", probe=None, probe_sz=0) + o_handle(
        query_sz=FEAT_SZ + 40)
    # A failure at each of the first seam calls of the probe and the open.
    for n in range(1, 40, 3):
        for err in (("EINTR", "EIO") if n % 2 else ("ENOMEM", "ENOTTY")):
            seeds[f"fail-{n:02d}-{err}"] = (o_head("patched-6.12", fail_nth=n, err=err,
                                                   probe="/dev/kvm", probe_sz=FEAT_SZ) +
                                            o_handle(scope=2, query_sz=64) + o_handle(scope=1))
    return seeds


def write(outdir, harness, seeds):
    d = os.path.join(outdir, harness)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, f"seed-{name}.bin"), "wb") as fh:
            fh.write(data)
    print(f"{harness}: {len(seeds)} seeds, {sum(len(s) for s in seeds.values())} bytes")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    write(outdir, "fuzz-region", region_seeds())
    write(outdir, "fuzz-open", open_seeds())


if __name__ == "__main__":
    main()
