#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Kernel tier runner: build (or fetch from cache) a kernel flavour, pack an
initramfs with the guest programs, boot it under an emulator, and report
every guest case as one TAP line on stdout (Meson protocol 'tap').

  run-qemu.py --run RUN --logdir DIR [--smoke kvm-smoke] [--guest-exec EXE]...
  run-qemu.py --run RUN --logdir DIR --qemu-e2e QEMU_BINARY
                                   (the QEMU end-to-end cases of RUN only)
  run-qemu.py --self-test          (the runner's own checks, no boot)

One runner, two emulator backends sharing the initramfs, the plan, the
result framing, the TAP output and the kernel-log checks:
  qemu   qemu-system-x86_64 -accel tcg: AMD SVM (NPT or shadow paging)
  bochs  Bochs 2.7: Intel VMX with EPT, booted from an isolinux ISO

RUN is one of (see RUNS in kvmtier/config.py and tests/kernel/README.md):
  stock-npt, patched-npt, patched-shadow          QEMU, library + probe
  stock-selftests, patched-selftests              QEMU, selftests.list
  patched-debug                                   QEMU -smp 2, lockdep+KASAN
  stock-vmx, patched-vmx, patched-vmx-nosnoop,
  patched-vmx-shadow                              Bochs, library + probe
  stock-vmx-selftests, patched-vmx-selftests      Bochs, selftests-vmx.list
  selftests-compare, vmx-selftests-compare        no boot: per-test results
                                                  of stock and patched must
                                                  be identical

The library's expectations for each run come from the one table in
tests/live/live.h (t_expectations), named by the run's KVMNC_EXPECT.

--qemu-e2e QEMU_BINARY: for a Bochs run listed in
integrations/qemu/e2e/runs.txt, the initramfs gets the static patched QEMU,
the e2e firmware and qemu-e2e.sh, and the plan is that run's cases only
(one TAP line each, with its own timeout) after the usual boot and
kernel-log checks; logs go to DIR/<run>-qemu-e2e/.

Exit status is 0 whenever TAP was produced (failures are "not ok" lines),
unless --strict is given: then 1 on any failure.  The serial console log,
the result stream and a JSON summary land in DIR/<run>/.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

# Run from any cwd: the package sits next to this script.  No bytecode
# caches: the script runs from the source tree, which builds and CI's
# package stage expect to stay clean.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kvmtier.config import (COMPARES, DEBUG_BANNERS, EXPANDED, LIBRARY_TESTS, LIVE_H, PROBE,
                            QEMU_E2E, RUNS, SERIES_SELFTESTS, load_expectations, read_denylist,
                            read_e2e_runs, read_list)
from kvmtier import initramfs
from kvmtier.emulators import bochs_env, boot, tcg_accel, wait_guest
from kvmtier.initramfs import is_dynamic_elf
from kvmtier.results import (check_kernel_log, check_kunit, check_probe_json, compare, e2e_sptes,
                             guest_cpus, memtypes, parse_results, report_guest_test,
                             save_summary)
from kvmtier.tap import Tap, log


def build_kernel(flavour, tap):
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(HERE, "build-kernel.sh"), flavour],
                       stdout=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if p.returncode == 77:
        return None, "no 0001+ patch in patches/ yet (only the cover letter or nothing)"
    if p.returncode != 0:
        tap.fail(f"build kernel '{flavour}' (build-kernel.sh exit {p.returncode}, see stderr)")
        return None, None
    out = p.stdout.strip().splitlines()[-1]
    stamp = open(os.path.join(out, "stamp"), encoding="utf-8").read()
    tap.ok(f"kernel '{flavour}' ready in {dt:.0f} s ({os.path.basename(out)})")
    tap.diag(stamp.strip())
    return out, None


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


def qemu_e2e_plan(run, qemu, fwdir):
    """(plan, files) of the QEMU end-to-end cases of RUN: the static QEMU,
    the firmware build-fw.sh wrote to fwdir and the driver go to /kvmnc."""
    cases = read_e2e_runs().get(run)
    if not cases:
        raise ValueError(f"run {run} has no QEMU end-to-end cases in {QEMU_E2E}/runs.txt")
    files = [(qemu, "/kvmnc/qemu-system-x86_64"),
             (os.path.join(fwdir, "fw.bin"), "/kvmnc/fw/fw.bin"),
             (os.path.join(fwdir, "fw.env"), "/kvmnc/fw/fw.env"),
             (os.path.join(QEMU_E2E, "qemu-e2e.sh"), "/kvmnc/qemu-e2e.sh")]
    plan = [(case, tmo, f"./qemu-e2e.sh --qemu ./qemu-system-x86_64 --fw ./fw {args}".strip())
            for case, tmo, args in cases]
    return plan, files


def run_qemu_e2e(a, tap, cfg, kdir, logdir, t_start):
    """The QEMU end-to-end cases of a Bochs run: boot, kernel log, one TAP
    line per case (its driver's own TAP as diagnostics)."""
    qemu = os.path.abspath(a.qemu_e2e)
    if not os.access(qemu, os.X_OK):
        tap.fail(f"QEMU binary {qemu} is executable")
        tap.finish()
        return 1 if a.strict else 0
    if is_dynamic_elf(qemu):
        tap.fail(f"{qemu} is statically linked (the guest has no libc;"
                 " fetch-build.sh builds it so)")
        tap.finish()
        return 1 if a.strict else 0
    fwdir = os.path.join(logdir, "fw")
    subprocess.run([os.path.join(QEMU_E2E, "build-fw.sh"), fwdir], check=True)
    plan, files = qemu_e2e_plan(a.run, qemu, fwdir)
    timeout = min(a.timeout, 2 * (120 + sum(t for _, t, _ in plan)))
    res, con = boot(f"{a.run}-qemu-e2e", cfg, kdir, plan, files, {}, logdir, timeout, tap)
    check_kernel_log(con, tap)
    summary = {"run": a.run, "qemu_e2e": qemu, "kernel": os.path.basename(kdir),
               "backend": cfg["backend"], "cpu": cfg["cpu"],
               "emulator_seconds": res.get("emulator_seconds"),
               "boot_seconds": res.get("boot_seconds"), "programs": {}, "sptes": {}}
    for case, _, _ in plan:
        summary["programs"][case] = report_guest_test(tap, res, case, "library", must_pass=True)
        summary["sptes"][case] = e2e_sptes(res["tests"].get(case, {}))
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    save_summary(logdir, summary)
    log(f"{a.run} (QEMU e2e): {len(tap.failed)} failure(s), {summary['seconds']} s total")
    tap.finish()
    return 1 if (a.strict and tap.failed) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", choices=list(RUNS) + list(COMPARES))
    ap.add_argument("--logdir")
    ap.add_argument("--smoke", help="static kvm-smoke binary")
    ap.add_argument("--guest-exec", action="append", default=[],
                    help="static library executable for the guest (repeatable)")
    ap.add_argument("--no-guest-execs", default="",
                    help="why the library executables were not built (skip reason)")
    ap.add_argument("--cache-dir", default="", help="kernel cache (KVMNC_KERNEL_CACHE)")
    ap.add_argument("--timeout", type=int, default=1800, help="hard emulator timeout, s")
    ap.add_argument("--strict", action="store_true", help="exit 1 on any failure")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this upstream selftest (repeatable; for debugging)")
    # An option only, no environment default: the Meson kernel suite must
    # not change because of a variable left in someone's shell.
    ap.add_argument("--qemu-e2e", default="", metavar="QEMU_BINARY",
                    help="run only RUN's QEMU end-to-end cases (integrations/qemu/e2e/runs.txt)"
                    " with this static patched QEMU")
    ap.add_argument("--self-test", action="store_true",
                    help="check the runner's own parsers and log checks, no boot")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if not a.run or not a.logdir:
        ap.error("--run and --logdir are required")
    if a.cache_dir:
        os.environ["KVMNC_KERNEL_CACHE"] = a.cache_dir
    if a.qemu_e2e and a.run not in read_e2e_runs():
        ap.error(f"--qemu-e2e: run {a.run} has no cases in {QEMU_E2E}/runs.txt")
    logdir = os.path.join(os.path.abspath(a.logdir),
                          a.run + ("-qemu-e2e" if a.qemu_e2e else ""))
    os.makedirs(logdir, exist_ok=True)
    tap = Tap()
    t_start = time.monotonic()

    if a.run in COMPARES:
        stock, patched = COMPARES[a.run]
        return compare(tap, os.path.abspath(a.logdir), stock, patched,
                       RUNS[stock]["backend"], a.strict)

    cfg = RUNS[a.run]
    want = None
    if cfg.get("expect"):
        want = load_expectations().get(cfg["expect"])
        if want is None:
            print(f"Bail out! KVMNC_EXPECT={cfg['expect']} has no row in {LIVE_H}", flush=True)
            return 1
    kdir, skip = build_kernel(cfg["flavour"], tap)
    if skip:
        print(f"1..0 # SKIP {skip}", flush=True)
        save_summary(logdir, {"skipped": skip})
        return 0
    if kdir is None:
        tap.finish()
        return 1 if a.strict else 0
    if a.qemu_e2e:
        return run_qemu_e2e(a, tap, cfg, kdir, logdir, t_start)

    plan, files, env = [], [], {}
    deny = read_denylist(cfg["backend"])
    must_pass = set(cfg.get("must_pass", []))
    library = {}
    if cfg.get("expect"):
        env["KVMNC_EXPECT"] = cfg["expect"]
    if cfg.get("expect") and a.smoke:
        files.append((a.smoke, "/kvmnc/kvm-smoke"))
        plan.append(("kvm-smoke", 60, "./kvm-smoke"))
    # Library executables (kvmnc_guest_execs), statically linked.
    for exe in a.guest_exec:
        name = os.path.basename(exe)
        if not os.path.isfile(exe):
            tap.fail(f"guest executable {exe} exists")
            continue
        if is_dynamic_elf(exe):
            tap.fail(f"{name} is statically linked (it has a PT_INTERP; link it with -static)")
            continue
        library[name] = exe
    # The required live tests, any further live-* the library adds (among
    # them live-memtype), then the probe.
    required = LIBRARY_TESTS + sorted(n for n in must_pass if n.startswith("live-"))
    lib_names = required + sorted(n for n in library
                                  if n.startswith("live-") and n not in required)
    lib_names.append(PROBE)
    if cfg.get("library"):
        for name in lib_names:
            if name in library:
                files.append((library[name], f"/kvmnc/{name}"))
                cmd = f"./{name}" if name != PROBE else f"./{name} --json"
                plan.append((name, 300, cmd))
    series = []
    if cfg.get("series"):
        for st in SERIES_SELFTESTS:
            path, rel = find_selftest(kdir, st)
            series.append((st, rel))
            if path:
                files.append((path, f"/kvmnc/st/{rel}"))
                plan.append((rel, 300, f"./st/{rel}"))
    upstream = []
    if cfg.get("upstream"):
        for name, rest in read_list(os.path.join(HERE, cfg["upstream"])):
            if a.only and name not in a.only:
                continue
            tmo, _, args = (rest or "120").partition(" ")
            path, rel = find_selftest(kdir, name)
            upstream.append((name, rel))
            if path:
                files.append((path, f"/kvmnc/st/{rel}"))
                plan.append((rel, int(tmo), f"./st/{rel} {args.strip()}".strip()))
    if not plan:
        plan.append(("true", 10, "true"))
    # Boot + every program's own limit (guest seconds, which the emulators
    # run slower than wall-clock ones under load), bounded by --timeout.
    timeout = min(a.timeout, 2 * (120 + sum(t for _, t, _ in plan)))

    res, con = boot(a.run, cfg, kdir, plan, files, env, logdir, timeout, tap)
    check_kernel_log(con, tap, debug=cfg.get("debug", False))
    if cfg.get("smp", 1) > 1:
        n = guest_cpus(res["init"])
        tap.line(n == cfg["smp"], f"guest sees {cfg['smp']} CPUs (got {n})")
    summary = {"run": a.run, "kernel": os.path.basename(kdir), "backend": cfg["backend"],
               "cpu": cfg["cpu"], "cmdline": cfg.get("cmdline", ""),
               "emulator_seconds": res.get("emulator_seconds"),
               "boot_seconds": res.get("boot_seconds"), "selftests": {},
               "programs": {}}

    if cfg.get("expect"):
        if a.smoke:
            summary["programs"]["kvm-smoke"] = report_guest_test(tap, res, "kvm-smoke", "smoke")
        else:
            tap.skip("kvm-smoke", "not given (--smoke)")
    if cfg.get("library"):
        for name in lib_names:
            if name not in library:
                why = a.no_guest_execs or "library executable not built (kvmnc_guest_execs lacks it)"
                if name in must_pass and not a.no_guest_execs:
                    tap.fail(f"{name}: must run in this run, but {why}")
                else:
                    tap.skip(name, why)
                continue
            summary["programs"][name] = report_guest_test(
                tap, res, name, "probe" if name == PROBE else "library",
                must_pass=name in must_pass, expand=name in EXPANDED)
        summary["memtypes"] = memtypes(res.get("tests", {}).get("live-memtype", {}))
        if PROBE in library and want:
            check_probe_json(tap, res, want)
    for st, rel in series:
        if rel is None:
            tap.todo(False, f"series selftest {st}", "the series does not add it (yet)")
        else:
            summary["selftests"][rel] = report_guest_test(tap, res, rel, "selftest",
                                                          must_pass=st in must_pass)
    for name, rel in upstream:
        if rel is None:
            tap.fail(f"selftest {name} was built")
            summary["selftests"][name] = "missing"
        else:
            summary["selftests"][name] = report_guest_test(tap, res, rel, "selftest",
                                                           deny.get(name))
    if cfg.get("kunit"):
        check_kunit(tap, con)

    summary["seconds"] = round(time.monotonic() - t_start, 1)
    save_summary(logdir, summary)
    log(f"{a.run}: {len(tap.failed)} failure(s), {summary['seconds']} s total")
    tap.finish()
    return 1 if (a.strict and tap.failed) else 0


def initramfs_modes(tap):
    """The guest's tests drop to uid 65534 (live-sandbox): the initramfs root
    must let them reach /proc and /sys, and /tmp must be writable by all."""
    busybox = os.environ.get("BUSYBOX", "/bin/busybox")
    if not os.access(busybox, os.X_OK) or not shutil.which("cpio"):
        tap.skip("initramfs modes", f"needs {busybox} and cpio")
        return
    with tempfile.TemporaryDirectory() as d:
        plan, out = os.path.join(d, "plan"), os.path.join(d, "i.cpio")
        initramfs.write_plan(plan, [("true", 5, "/bin/true")])
        initramfs.mkinitramfs(out, plan, stdout=subprocess.DEVNULL)
        with open(out, "rb") as f:
            listing = subprocess.run(["cpio", "-tv", "--quiet"], stdin=f, capture_output=True,
                                     text=True, check=True).stdout
    modes = {ln.split()[-1]: ln.split()[0] for ln in listing.splitlines() if ln.strip()}
    for path, want in ((".", "drwxr-xr-x"), ("tmp", "drwxrwxrwt"), ("proc", "drwxr-xr-x"),
                       ("sys", "drwxr-xr-x")):
        tap.line(modes.get(path) == want,
                 f"initramfs: {path} is {want} (got {modes.get(path, 'missing')})")


def self_test():
    """The runner's own checks (Meson test kernel-runner-selftest): each
    report the kernel-log check exists for must fail a run, a clean log
    must pass, and the parsers must read what the guest and live.h say."""
    tap = Tap()

    def log_verdict(text, debug=False):
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            t = Tap(devnull)
            check_kernel_log(text, t, debug)
        return t.failed

    clean = ("[    0.000000] Linux version 6.12.117\n"
             "[    1.000000] kvm_amd: CPU 0 isn't AMD or Hygon\n"
             "[    2.000000] reboot: Restarting system\n")
    tap.line(not log_verdict(clean), "a clean console passes the kernel-log check")
    splats = [
        "WARNING: CPU: 0 PID: 1 at arch/x86/kvm/mmu/mmu.c:123 kvm_mmu_x+0x1/0x2",
        "WARNING: possible circular locking dependency detected",
        "WARNING: possible recursive locking detected",
        "WARNING: inconsistent lock state",
        "WARNING: suspicious RCU usage",
        "BUG: KASAN: slab-use-after-free in kvm_virtio_release+0x10/0x20",
        "BUG: KFENCE: out-of-bounds read in kvm_vm_ioctl+0x1/0x2",
        "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:1",
        "BUG: kernel NULL pointer dereference, address: 0000000000000000",
        "Oops: 0000 [#1] SMP KASAN",
        "Kernel panic - not syncing: Fatal exception",
        "general protection fault, probably for non-canonical address 0xdead: 0000",
        "UBSAN: shift-out-of-bounds in arch/x86/kvm/x86.c:1:1",
        "kernel BUG at mm/slub.c:1!",
        "DEBUG_LOCKS_WARN_ON(1)",
        "INFO: lockdep is turned off.",
        "INFO: task kworker/0:1:12 blocked for more than 120 seconds.",
        "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    ]
    for s in splats:
        tap.line(bool(log_verdict(clean + "[    3.000000] " + s + "\n")),
                 f"the kernel-log check fails on: {s[:60]}")
    banners = ("[    0.1] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar\n"
               "[    0.2] kasan: KernelAddressSanitizer initialized (generic)\n")
    tap.line(not log_verdict(clean + banners, debug=True),
             "debug run: lockdep and KASAN banners are recognised")
    tap.line(len(log_verdict(clean, debug=True)) == len(DEBUG_BANNERS),
             "debug run: a kernel without lockdep and KASAN fails")

    rows = load_expectations()
    for run, cfg in sorted(RUNS.items()):
        if cfg.get("expect"):
            tap.line(cfg["expect"] in rows, f"run {run}: KVMNC_EXPECT={cfg['expect']} has a row"
                     " in live.h")
    tap.line(rows.get("stock-vmx", {}).get("recommended") == "guest_pat_quirk"
             and rows.get("patched-vmx", {}).get("memslot_flag") is True,
             "live.h rows are read field by field (stock-vmx, patched-vmx)")

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "results.log")
        with open(p, "w", encoding="utf-8") as f:
            f.write("KVMNC-INIT 6.12.117 cpus=2 kvm=yes tracefs=yes\r\nKVMNC-BEGIN a\r\nline\r\n"
                    "KVMNC-END a\r\nKVMNC-RESULT a 77 3\r\nKVMNC-DONE\r\n")
        r = parse_results(p)
        tap.line(r["done"] and r["tests"]["a"]["rc"] == 77 and r["tests"]["a"]["out"] == ["line"]
                 and guest_cpus(r["init"]) == 2, "the result framing is parsed")
    deny = read_denylist("bochs")
    tap.line("x86_64/nested_exceptions_test" not in deny,
             "a deny-list entry for @qemu does not apply to bochs")

    e2e = read_e2e_runs()
    tap.line(set(e2e) == {"patched-vmx", "stock-vmx"}
             and all(RUNS.get(r, {}).get("backend") == "bochs" for r in e2e),
             f"runs.txt names Bochs runs of RUNS only (got {sorted(e2e)})")
    plan, files = qemu_e2e_plan("stock-vmx", "/q", "/fw")
    tap.line([c for c, _, _ in plan] == [c for c, _, _ in e2e["stock-vmx"]]
             and all(t > 0 for _, t, _ in plan)
             and plan[-1][2].endswith("--fw ./fw --scope slot --expect-refused")
             and ("/q", "/kvmnc/qemu-system-x86_64") in files
             and {d for _, d in files} >= {"/kvmnc/fw/fw.bin", "/kvmnc/fw/fw.env",
                                            "/kvmnc/qemu-e2e.sh"},
             "the QEMU e2e plan: runs.txt's cases, timeouts and arguments, the binary,"
             " firmware and driver in the image")
    try:
        qemu_e2e_plan("stock-npt", "/q", "/fw")
        tap.fail("a run without e2e cases is refused")
    except ValueError:
        tap.ok("a run without e2e cases is refused")
    sp = e2e_sptes({"out": ["# nc gfn 0x1000 level 2 spte 0x8600000003200bb7 type 0x6",
                            "# plain gfn 0x200 level 2 spte 0x8600000003000bf7 type 0xe",
                            "ok 7 - nc: every SPTE has memory type 0x6"]})
    tap.line(sp == {"nc": [("0x8600000003200bb7", "0x6")],
                    "plain": [("0x8600000003000bf7", "0xe")]},
             "qemu-e2e.sh's SPTE lines are parsed")
    with tempfile.TemporaryDirectory() as d:
        res, con = os.path.join(d, "results.log"), os.path.join(d, "console.log")
        with open(res, "w", encoding="utf-8") as f:
            f.write("KVMNC-INIT 6.12.117 cpus=1 kvm=yes tracefs=yes\nKVMNC-BEGIN a\nok 1 - x")
        with open(con, "w", encoding="utf-8") as f:
            f.write("[   51.0] reboot: Restarting system\n")
        proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        w = wait_guest(proc, res, 20, polite=False, console=con, lost_grace=0.5)
        tap.line(w["lost"] and not w["timed_out"] and w["seconds"] < 10 and proc.poll() is not None,
                 "a guest that restarted without KVMNC-DONE is stopped, not waited for")
    tap.line(tcg_accel(1) == "tcg" and tcg_accel("2") == "tcg,thread=single"
             and tcg_accel(RUNS["patched-debug"]["smp"]) == "tcg,thread=single",
             "QEMU runs an SMP guest on one TCG thread (patched-debug included)")
    benv = bochs_env({"MALLOC_PERTURB_": "143", "PATH": "/bin"})
    tap.line("MALLOC_PERTURB_" not in benv and benv.get("TERM") == "vt100"
             and benv.get("PATH") == "/bin",
             "Bochs runs without Meson's MALLOC_PERTURB_, with TERM=vt100")
    initramfs_modes(tap)
    tap.finish()
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
