# SPDX-License-Identifier: LGPL-2.1-or-later
"""The runner's own checks (run-qemu.py --self-test, Meson test
kernel-runner-selftest), no boot: each report the kernel-log check exists
for must fail a run and a clean log must pass; the parsers must read what
the guest, live.h and runs.txt say; a guest that lost its results is
stopped early; the emulators get the arguments and environment they need;
the initramfs lets an unprivileged guest program reach /proc, /sys, /tmp."""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

from .config import (ALL, COMPARES, DEBUG_BANNERS, RUNS, TIER_DIR, load_expectations,
                     read_denylist, read_e2e_runs, read_suite)
from .emulators import bochs_env, tcg_accel, wait_guest
from .initramfs import kernel_modules, mkinitramfs, write_plan
from .plan import qemu_e2e_plan, run_plan
from .results import (cases_not_run, check_kernel_log, compare, compare_one, e2e_sptes,
                      guest_cpus, parse_results)
from .tap import Tap

CLEAN_LOG = ("[    0.000000] Linux version 6.12.117\n"
             "[    1.000000] kvm_amd: CPU 0 isn't AMD or Hygon\n"
             "[    2.000000] reboot: Restarting system\n")
SPLATS = [
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


SRSO = ("Speculative Return Stack Overflow: WARNING: See "
        "https://kernel.org/doc/html/latest/admin-guide/hw-vuln/srso.html for mitigation options.")


def log_verdict(text, debug=False, backend=None):
    """The failures the kernel-log check reports on `text`, its TAP unseen."""
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        t = Tap(devnull)
        check_kernel_log(text, t, debug, backend)
    return t.failed


def check_known_messages(tap):
    """A known message passes only where it is expected, only as itself."""
    srso = CLEAN_LOG + "[    0.026811] " + SRSO + "\n"
    tap.line(not log_verdict(srso, backend="qemu"),
             "the SRSO mitigation notice is a known message under QEMU")
    tap.line(bool(log_verdict(srso, backend="bochs")),
             "the SRSO mitigation notice fails a Bochs run (not expected there)")
    tap.line(bool(log_verdict(srso + "[    3.0] " + SPLATS[0] + "\n", backend="qemu")),
             "a WARN trace still fails a run whose log also has a known message")
    tap.line(bool(log_verdict(CLEAN_LOG + "[    0.1] Speculative Return Stack Overflow: WARNING:"
                              " something else\n", backend="qemu")),
             "a changed SRSO line is not taken for the known message")


def check_compare_rule(tap):
    """stock (Debian's config) against patched (the tier's): only a test
    Debian's kernel cannot run may differ, and only by passing on patched."""
    req = "Requirement not met: kvm_has_cap(KVM_CAP_GUEST_MEMFD)"
    cases = [(("pass", "pass", None), True), (("skip", "skip", req), True),
             (("pass", "fail", None), False), (("pass", "skip", None), False),
             (("skip", "pass", req), True), (("skip", "pass", "no /dev/kvm"), False),
             (("skip", "fail", req), False), (("absent", "absent", None), False),
             (("pass", "missing", None), False)]
    for args, want in cases:
        got, _ = compare_one(*args)
        tap.line(got == want, f"compare stock={args[0]} patched={args[1]}"
                 f" ({args[2] or 'no skip reason'}): {'same' if want else 'a regression'}")


def check_modules(tap):
    """A distribution kernel's guest loads the common modules and its CPU's."""
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "modules"))
        with open(os.path.join(d, "modules.load"), "w", encoding="utf-8") as f:
            f.write("irqbypass common\nkvm common\nkvm_intel intel\nkvm_amd amd\n")
        params = {"kvm_intel": "ept=0"}
        names = {v: [(os.path.basename(p), a) for p, a in kernel_modules(d, v, params)]
                 for v in ("intel", "amd")}
        tap.line(names["intel"] == [("irqbypass.ko", ""), ("kvm.ko", ""),
                                    ("kvm_intel.ko", "ept=0")],
                 f"modules for an Intel guest, in order, with parameters (got {names['intel']})")
        tap.line(names["amd"] == [("irqbypass.ko", ""), ("kvm.ko", ""), ("kvm_amd.ko", "")],
                 f"modules for an AMD guest (got {names['amd']})")
        tap.line(kernel_modules(os.path.join(d, "modules"), "intel") == [],
                 "a kernel with KVM built in loads no module")


def check_log_patterns(tap):
    tap.line(not log_verdict(CLEAN_LOG), "a clean console passes the kernel-log check")
    for s in SPLATS:
        tap.line(bool(log_verdict(CLEAN_LOG + "[    3.000000] " + s + "\n")),
                 f"the kernel-log check fails on: {s[:60]}")
    banners = ("[    0.1] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc.,"
               " Ingo Molnar\n"
               "[    0.2] kasan: KernelAddressSanitizer initialized (generic)\n")
    tap.line(not log_verdict(CLEAN_LOG + banners, debug=True),
             "debug run: lockdep and KASAN banners are recognised")
    tap.line(len(log_verdict(CLEAN_LOG, debug=True)) == len(DEBUG_BANNERS),
             "debug run: a kernel without lockdep and KASAN fails")


def check_expectations(tap):
    rows = load_expectations()
    for run, cfg in sorted(RUNS.items()):
        if cfg.get("expect"):
            tap.line(cfg["expect"] in rows, f"run {run}: KVMNC_EXPECT={cfg['expect']} has a row"
                     " in live.h")
    tap.line(rows.get("stock-vmx", {}).get("recommended") == "guest_pat_quirk"
             and rows.get("patched-vmx", {}).get("memslot_flag") is True,
             "live.h rows are read field by field (stock-vmx, patched-vmx)")


def check_result_framing(tap):
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


def check_qemu_e2e(tap):
    e2e = read_e2e_runs()
    tap.line(set(e2e) == {"patched-vmx", "stock-vmx"}
             and all(RUNS.get(r, {}).get("backend") == "bochs" for r in e2e),
             f"runs.txt names Bochs runs of RUNS only (got {sorted(e2e)})")
    plan, files = qemu_e2e_plan("stock-vmx", "/q", "/fw")
    tap.line([c for c, _, _ in plan] == [c for c, _, _ in e2e["stock-vmx"]]
             and all(t > 0 for _, t, _ in plan)
             and plan[-1][2].endswith("--fw ./fw --scope slot --expect-refused")
             and ("/q", "/kvmnc/qemu-system-x86_64") in files
             and {d for _, d in files} >= {"/kvmnc/fw/fw.bin", "/kvmnc/fw/fw-hotplug.bin",
                                            "/kvmnc/fw/fw.env", "/kvmnc/qemu-e2e.sh"},
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


def check_lost_guest(tap):
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


def check_emulator_setup(tap):
    tap.line(tcg_accel(1) == "tcg" and tcg_accel("2") == "tcg,thread=single"
             and tcg_accel(RUNS["patched-debug"]["smp"]) == "tcg,thread=single",
             "QEMU runs an SMP guest on one TCG thread (patched-debug included)")
    benv = bochs_env({"MALLOC_PERTURB_": "143", "PATH": "/bin"})
    tap.line("MALLOC_PERTURB_" not in benv and benv.get("TERM") == "vt100"
             and benv.get("PATH") == "/bin",
             "Bochs runs without Meson's MALLOC_PERTURB_, with TERM=vt100")


def initramfs_modes(tap):
    """The guest's tests drop to uid 65534 (live-sandbox): the initramfs root
    must let them reach /proc and /sys, and /tmp must be writable by all."""
    busybox = os.environ.get("BUSYBOX", "/bin/busybox")
    if not os.access(busybox, os.X_OK) or not shutil.which("cpio"):
        tap.skip("initramfs modes", f"needs {busybox} and cpio")
        return
    with tempfile.TemporaryDirectory() as d:
        plan, out = os.path.join(d, "plan"), os.path.join(d, "i.cpio")
        write_plan(plan, [("true", 5, "/bin/true")])
        mkinitramfs(out, plan, stdout=subprocess.DEVNULL)
        with open(out, "rb") as f:
            listing = subprocess.run(["cpio", "-tv", "--quiet"], stdin=f, capture_output=True,
                                     text=True, check=True).stdout
    modes = {ln.split()[-1]: ln.split()[0] for ln in listing.splitlines() if ln.strip()}
    for path, want in ((".", "drwxr-xr-x"), ("tmp", "drwxrwxrwt"), ("proc", "drwxr-xr-x"),
                       ("sys", "drwxr-xr-x")):
        tap.line(modes.get(path) == want,
                 f"initramfs: {path} is {want} (got {modes.get(path, 'missing')})")


def _fake_build(d, progs):
    """A build-kernel.sh output holding these selftests (empty executables)."""
    for rel in progs:
        p = os.path.join(d, "selftests", rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8"):
            pass
        os.chmod(p, 0o755)


def check_whole_suite(tap):
    """The 7.2 runs: the suite file, the CI subset against the full suite,
    the series' selftests found by name, the compare of such runs."""
    for run, cfg in sorted(RUNS.items()):
        if cfg.get("upstream") == ALL:
            for b in ("qemu", "bochs"):
                try:
                    n = len(read_suite(os.path.join(TIER_DIR, cfg["suite"]), b))
                    tap.ok(f"run {run}: {cfg['suite']} reads for {b} ({n} entries)")
                except (OSError, ValueError) as e:
                    tap.fail(f"run {run}: {cfg['suite']} reads for {b}: {e}")
    for name, (st, pa) in sorted(COMPARES.items()):
        tap.line(st in RUNS and pa in RUNS and RUNS[st]["backend"] == RUNS[pa]["backend"]
                 and RUNS[st].get("upstream") == RUNS[pa].get("upstream"),
                 f"compare {name}: two runs of one backend and one selftest set")
    with tempfile.TemporaryDirectory() as d:
        suite = os.path.join(d, "suite.txt")
        with open(suite, "w", encoding="utf-8") as f:
            f.write("x86/slow_test @bochs exclude too slow under Bochs: 900 s\n"
                    "x86/state_test timeout=30 -v\nx86/bad_test frobnicate\n")
        try:
            read_suite(suite, "qemu")
            tap.fail("a suite line that is neither exclude nor timeout= is refused")
        except ValueError:
            tap.ok("a suite line that is neither exclude nor timeout= is refused")
        with open(suite, "w", encoding="utf-8") as f:
            f.write("x86/slow_test @bochs exclude too slow under Bochs: 900 s\n"
                    "x86/slow_test timeout=900\nx86/state_test timeout=30 -v\n")
        _fake_build(d, ["x86/slow_test", "x86/state_test", "kvm_binary_stats_test",
                        "x86/nc_new_test", "x86/noncoherent_dma_memslot_test"])
        cfg = dict(backend="bochs", upstream=ALL, suite=suite, series=True, patches="7.2")
        ci = run_plan(cfg, d, None, [], [], tap)
        full = run_plan(cfg, d, None, [], [], tap, full=True)
        names = [n for n, _, _ in ci.plan]
        tap.line(ci.excluded == [("x86/slow_test", "too slow under Bochs: 900 s")]
                 and "x86/slow_test" not in names,
                 f"the CI subset leaves the suite file's exclusions out (plan {names})")
        tap.line(("x86/slow_test", 900, "./st/x86/slow_test") in full.plan and not full.excluded,
                 "the full suite runs them, with their own timeout")
        tap.line(("x86/state_test", 30, "./st/x86/state_test -v") in ci.plan
                 and ("kvm_binary_stats_test", 120, "./st/kvm_binary_stats_test") in ci.plan,
                 "suite timeouts and arguments, the default timeout elsewhere")
        tap.line([st for st, _ in ci.series] == ["x86/nc_new_test",
                                                 "x86/noncoherent_dma_memslot_test"]
                 and not any(n in ("x86/nc_new_test",) for n, _ in ci.upstream),
                 f"the series' selftests are found by name, not run twice (got {ci.series})")
        cfg["backend"] = "qemu"
        tap.line(not run_plan(cfg, d, None, [], [], tap).excluded,
                 "an @bochs exclusion leaves the QEMU runs alone")
        os.makedirs(os.path.join(d, "logs", "s"))
        os.makedirs(os.path.join(d, "logs", "p"))

        def cmp(stock, patched, full_p=False):
            for run, sel, fl in (("s", stock, False), ("p", patched, full_p)):
                with open(os.path.join(d, "logs", run, "summary.json"), "w",
                          encoding="utf-8") as f:
                    json.dump({"selftests": sel, "full": fl, "skip_reasons": {},
                               "excluded": {"x86/slow_test": "slow"}}, f)
            with open(os.devnull, "w", encoding="utf-8") as null, \
                    contextlib.redirect_stdout(null):
                return compare(Tap(null), os.path.join(d, "logs"), "s", "p", "bochs", True)
        base = {"x86/state_test": "pass", "x86/slow_test": "excluded"}
        tap.line(cmp(base, dict(base, **{"x86/nc_new_test": "pass"})) == 0,
                 "compare: the series' own selftest (absent on stock) passing, exclusions skipped")
        tap.line(cmp(base, dict(base, **{"x86/nc_new_test": "fail"})) == 1,
                 "compare: the series' own selftest failing is a failure")
        tap.line(cmp(base, dict(base, **{"x86/other_new_test": "pass"})) == 1,
                 "compare: another selftest absent on stock is a failure")
        tap.line(cmp(base, base, full_p=True) == 1,
                 "compare: a full run against a CI-subset run is refused")


def check_must_run_cases(tap):
    """A case that skipped, or never ran, is reported; one that ran is not."""
    out = ["TAP version 13", "1..3", "ok 1 4KiB: munmap flushes the old pages",
           "ok 2 # SKIP 4KiB: move_pages: one NUMA node (boot with numa=fake=2)",
           "not ok 3 2MiB hugetlbfs: level 2 SPTEs"]
    tap.line(cases_not_run(out, ["4KiB: move_pages"]) == ["4KiB: move_pages"],
             "must_run_cases: a skipped case is not run")
    tap.line(cases_not_run(out, ["4KiB: munmap", "2MiB hugetlbfs"]) == []
             and cases_not_run(out, ["no such case"]) == ["no such case"],
             "must_run_cases: cases that ran (passed or failed) count, absent ones do not")
    ran = out[:3] + ["ok 2 4KiB: move_pages flushes old pages, re-faults new"]
    tap.line(cases_not_run(ran, ["4KiB: move_pages"]) == [],
             "must_run_cases: the move_pages case that ran counts")
    tap.line(all(RUNS[r].get("must_run_cases") and "numa=fake=2" in RUNS[r].get("cmdline", "")
                 for r in ("patched-debug", "patched-7.2-debug")),
             "the debug runs boot with two NUMA nodes and require the move_pages case")


def self_test():
    """All the checks as TAP; exit 1 on any failure."""
    tap = Tap()
    for check in (check_log_patterns, check_known_messages, check_modules, check_compare_rule,
                  check_expectations, check_result_framing, check_qemu_e2e, check_lost_guest,
                  check_emulator_setup, initramfs_modes, check_whole_suite,
                  check_must_run_cases):
        check(tap)
    return tap.exit_status(strict=True)
