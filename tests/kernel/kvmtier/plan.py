# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a run's guest runs, in order: kvm-smoke (runs with a live.h row),
the library's live tests and kvmnc-probe, the series' selftests, the
upstream selftests of the run's list; or, with --qemu-e2e, the run's QEMU
end-to-end cases only.  A plan entry is (name, guest timeout in s,
command); the files are (host path, path in the guest) for the initramfs,
where the guest's /init runs each command from /kvmnc."""

import os
from dataclasses import dataclass, field

from .config import (ALL, LIBRARY_TESTS, PROBE, QEMU_E2E, RUST_VMM,
                     SERIES_PREFIXES, SUITE_TIMEOUT, TIER_DIR,
                     is_series_selftest, published_selftests, read_e2e_runs, read_list,
                     read_suite)
from .initramfs import is_dynamic_elf


@dataclass
class RunPlan:
    plan: list = field(default_factory=list)
    files: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    # The library executables given (--guest-exec) that can run: {name: path}.
    library: dict = field(default_factory=dict)
    # The library programs the run reports on, given or not.
    lib_names: list = field(default_factory=list)
    # (name, path relative to selftests/ or None when the kernel lacks it)
    series: list = field(default_factory=list)
    upstream: list = field(default_factory=list)
    # upstream=ALL runs: (name, reason) left out of the CI subset.
    excluded: list = field(default_factory=list)
    # params: (plan name, sysfs file, wanted value)
    params: list = field(default_factory=list)

    def add(self, name, tmo, cmd, src, dest):
        self.files.append((src, dest))
        self.plan.append((name, tmo, cmd))


def find_selftest(kdir, name):
    """Selftest binary by path ('x86_64/state_test') or, for the series'
    tests, by basename wherever the series put it (x86/ or x86_64/)."""
    base = os.path.join(kdir, "selftests")
    for cand in (name, name.replace("x86/", "x86_64/"), name.replace("x86_64/", "x86/")):
        p = os.path.join(base, cand)
        if os.path.isfile(p):
            return p, os.path.relpath(p, base)
    for root, _, fnames in os.walk(base):
        if os.path.basename(name) in fnames:
            p = os.path.join(root, os.path.basename(name))
            return p, os.path.relpath(p, base)
    return None, None


def guest_timeout(limit, plan):
    """Boot + every program's own limit (guest seconds, which the emulators
    run slower than wall-clock ones under load), bounded by --timeout."""
    return min(limit, 2 * (120 + sum(t for _, t, _ in plan)))


def library_executables(guest_execs, tap):
    """{name: path} of the library executables (kvmnc_guest_execs) that
    exist and are statically linked; a TAP failure for each other one."""
    library = {}
    for exe in guest_execs:
        name = os.path.basename(exe)
        if not os.path.isfile(exe):
            tap.fail(f"guest executable {exe} exists")
            continue
        if is_dynamic_elf(exe):
            tap.fail(f"{name} is statically linked (it has a PT_INTERP; link it with -static)")
            continue
        library[name] = exe
    return library


def library_names(library, must_pass):
    """The required live tests, any further live-* the library adds (among
    them live-memtype), the Rust example VMM, then the probe."""
    required = LIBRARY_TESTS + sorted(n for n in must_pass if n.startswith("live-"))
    names = required + sorted(n for n in library if n.startswith("live-") and n not in required)
    names += [RUST_VMM, PROBE]
    return names


def series_selftest_names(kdir, cfg):
    """The series' selftests, found in its build (is_series_selftest), or,
    when the build has none, one placeholder that reports as a TODO."""
    found = [rel for rel in published_selftests(kdir) if is_series_selftest(rel)]
    return found or ["/".join(p + "*" for p in SERIES_PREFIXES)]


def _add_all(rp, kdir, cfg, only, full):
    """Every selftest of the build but the series' own; the CI subset
    leaves out the suite file's exclusions unless `full`."""
    suite = read_suite(os.path.join(TIER_DIR, cfg["suite"]), cfg["backend"]) \
        if cfg.get("suite") else {}
    for rel in published_selftests(kdir):
        if is_series_selftest(rel) or (only and rel not in only):
            continue
        entry = suite.get(rel, {})
        if entry.get("exclude") and not full:
            rp.excluded.append((rel, entry["exclude"]))
            continue
        tmo, args = entry.get("timeout") or SUITE_TIMEOUT, entry.get("args", "")
        rp.upstream.append((rel, rel))
        rp.add(rel, tmo, f"./st/{rel} {args}".strip(),
               os.path.join(kdir, "selftests", rel), f"/kvmnc/st/{rel}")


def _add_selftests(rp, kdir, cfg, only, full=False):
    if cfg.get("series"):
        for st in series_selftest_names(kdir, cfg):
            path, rel = find_selftest(kdir, st)
            rp.series.append((st, rel))
            if path:
                rp.add(rel, 300, f"./st/{rel}", path, f"/kvmnc/st/{rel}")
    if cfg.get("upstream") == ALL:
        _add_all(rp, kdir, cfg, only, full)
    elif cfg.get("upstream"):
        for name, rest in read_list(os.path.join(TIER_DIR, cfg["upstream"])):
            if only and name not in only:
                continue
            tmo, _, args = (rest or "120").partition(" ")
            path, rel = find_selftest(kdir, name)
            rp.upstream.append((name, rel))
            if path:
                rp.add(rel, int(tmo), f"./st/{rel} {args.strip()}".strip(), path,
                       f"/kvmnc/st/{rel}")


def run_plan(cfg, kdir, smoke, guest_execs, only, tap, full=False):
    """The RunPlan of a boot run (cfg: its RUNS entry); full: the whole
    selftest suite of an upstream=ALL run, its exclusions included."""
    rp = RunPlan()
    for i, (param, want) in enumerate(sorted(cfg.get("params", {}).items())):
        f = f"/sys/module/{param}"
        name = f"param-{i}"
        rp.params.append((name, f, want))
        rp.plan.append((name, 10, f"cat {f} && grep -qx {want} {f}"))
    if cfg.get("expect"):
        rp.env["KVMNC_EXPECT"] = cfg["expect"]
    if cfg.get("expect") and smoke:
        rp.add("kvm-smoke", 60, "./kvm-smoke", smoke, "/kvmnc/kvm-smoke")
    rp.library = library_executables(guest_execs, tap)
    rp.lib_names = library_names(rp.library, set(cfg.get("must_pass", [])))
    if cfg.get("library"):
        for name in rp.lib_names:
            if name in rp.library:
                cmd = f"./{name}" if name != PROBE else f"./{name} --json"
                rp.add(name, 300, cmd, rp.library[name], f"/kvmnc/{name}")
    _add_selftests(rp, kdir, cfg, only, full)
    if not rp.plan:
        rp.plan.append(("true", 10, "true"))
    return rp


def qemu_e2e_plan(run, qemu, fwdir):
    """(plan, files) of the QEMU end-to-end cases of RUN: the static QEMU,
    the firmware build-fw.sh wrote to fwdir and the driver go to /kvmnc."""
    cases = read_e2e_runs().get(run)
    if not cases:
        raise ValueError(f"run {run} has no QEMU end-to-end cases in {QEMU_E2E}/runs.txt")
    files = [(qemu, "/kvmnc/qemu-system-x86_64"),
             (os.path.join(fwdir, "fw.bin"), "/kvmnc/fw/fw.bin"),
             (os.path.join(fwdir, "fw-hotplug.bin"), "/kvmnc/fw/fw-hotplug.bin"),
             (os.path.join(fwdir, "fw.env"), "/kvmnc/fw/fw.env"),
             (os.path.join(QEMU_E2E, "qemu-e2e.sh"), "/kvmnc/qemu-e2e.sh")]
    plan = [(case, tmo, f"./qemu-e2e.sh --qemu ./qemu-system-x86_64 --fw ./fw {args}".strip())
            for case, tmo, args in cases]
    return plan, files
