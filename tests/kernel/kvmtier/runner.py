# SPDX-License-Identifier: LGPL-2.1-or-later
"""One boot run from kernel to summary: build (or take from the cache) the
run's kernel flavour with build-kernel.sh, plan and boot the guest, then
judge it: the kernel log, one TAP line per guest program, the probe's JSON
against live.h's row, KUnit; last, summary.json in the run's log dir.
With --qemu-e2e the guest runs the run's QEMU end-to-end cases instead."""

import os
import subprocess
import time

from .config import (ALL, DEFAULT_PATCHES, EXPANDED, FULL_ENV, LIVE_H, PROBE, QEMU_E2E, RUNS,
                     RUST_VMM, TIER_DIR, load_expectations, read_denylist)
from .emulators import boot
from .initramfs import is_dynamic_elf
from .plan import guest_timeout, qemu_e2e_plan, run_plan
from .results import (cases_not_run, check_kernel_log, check_kunit, check_probe_json, e2e_sptes,
                      guest_cpus, memtypes, report_guest_test, save_summary, skip_reason)
from .tap import Tap, log


def ready_kernel(what, script, args, arg, tap):
    """(output dir, skip reason) from build-kernel.sh or
    fetch-distro-kernel.sh (given args; arg names it in the TAP line);
    (None, None) after a TAP failure."""
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(TIER_DIR, script)] + args, stdout=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if p.returncode == 77:
        series = args[args.index("-S") + 1] if "-S" in args else DEFAULT_PATCHES
        return None, (f"no 0001+ patch in patches/{series}/ yet (only the cover letter or"
                      " nothing)")
    if p.returncode != 0:
        tap.fail(f"{what} '{arg}' ({script} exit {p.returncode}, see stderr)")
        return None, None
    out = p.stdout.strip().splitlines()[-1]
    stamp = open(os.path.join(out, "stamp"), encoding="utf-8").read()
    tap.ok(f"{what} '{arg}' ready in {dt:.0f} s ({os.path.basename(out)})")
    tap.diag(stamp.strip())
    if "\nfollowed=" in "\n" + stamp:
        tap.diag(f"NOTE: {what} '{arg}' is not the pinned version (see followed= above)")
    return out, None


def run_kernels(cfg, tap):
    """(kernel dir to boot, selftests dir, skip reason): a distribution
    kernel (cfg kernel) and/or a build-kernel.sh flavour, whose output gives
    the selftests, and the kernel where the run boots no distribution's."""
    stdir = skip = None
    if cfg.get("flavour"):
        # The TAP line names the flavour and its series (patched-7.2): CI's
        # "time of each run" table reads "kernel 'FLAVOUR' ready in N s".
        series = cfg.get("patches", DEFAULT_PATCHES)
        stdir, skip = ready_kernel("kernel", "build-kernel.sh", ["-S", series, cfg["flavour"]],
                                   f"{cfg['flavour']}-{series}", tap)
        if stdir is None:
            return None, None, skip
    if not cfg.get("kernel"):
        return stdir, stdir, None
    kdir, skip = ready_kernel("distribution kernel", "fetch-distro-kernel.sh", [cfg["kernel"]],
                              cfg["kernel"], tap)
    return kdir, stdir, skip


def run(a, logdir):
    """The run a.run (a RUNS entry); returns the exit status."""
    tap = Tap()
    t_start = time.monotonic()
    cfg = RUNS[a.run]
    want = None
    if cfg.get("expect"):
        want = load_expectations().get(cfg["expect"])
        if want is None:
            print(f"Bail out! KVMNC_EXPECT={cfg['expect']} has no row in {LIVE_H}", flush=True)
            return 1
    kdir, stdir, skip = run_kernels(cfg, tap)
    if skip:
        print(f"1..0 # SKIP {skip}", flush=True)
        save_summary(logdir, {"skipped": skip})
        return 0
    if kdir is None:
        return tap.exit_status(a.strict)
    if a.qemu_e2e:
        return run_qemu_e2e(a, tap, cfg, kdir, logdir, t_start)
    return run_guest(a, tap, cfg, (kdir, stdir), logdir, t_start, want)


def finish(a, tap, logdir, summary, t_start, label):
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    save_summary(logdir, summary)
    log(f"{label}: {len(tap.failed)} failure(s), {summary['seconds']} s total")
    return tap.exit_status(a.strict)


def run_guest(a, tap, cfg, dirs, logdir, t_start, want):
    """The guest programs of the run's plan, each judged.  dirs: the kernel
    to boot and the build whose selftests run (None: the run has none)."""
    kdir, stdir = dirs
    deny = read_denylist(cfg["backend"])
    full = cfg.get("upstream") == ALL and (a.full or os.environ.get(FULL_ENV) == "1")
    if cfg.get("upstream") == ALL:
        tap.diag(f"the whole selftest suite ({'--full' if a.full else FULL_ENV + '=1'})" if full
                 else f"the CI subset of the selftest suite ({cfg['suite']}'s exclusions"
                 f" skipped; run-qemu.py --full or {FULL_ENV}=1 runs them)")
    rp = run_plan(cfg, stdir, a.smoke, a.guest_exec, a.only, tap, full)
    # The whole suite runs for hours under Bochs: no cap below 8 h then.
    timeout = guest_timeout(max(a.timeout, 8 * 3600) if full else a.timeout, rp.plan)
    res, con = boot(a.run, cfg, kdir, rp.plan, rp.files, rp.env, logdir, timeout, tap)
    check_kernel_log(con, tap, debug=cfg.get("debug", False), backend=cfg["backend"])
    if cfg.get("smp", 1) > 1:
        n = guest_cpus(res["init"])
        tap.line(n == cfg["smp"], f"guest sees {cfg['smp']} CPUs (got {n})")
    summary = {"run": a.run, "kernel": os.path.basename(kdir), "backend": cfg["backend"],
               "cpu": cfg["cpu"], "cmdline": cfg.get("cmdline", ""),
               "emulator_seconds": res.get("emulator_seconds"),
               "boot_seconds": res.get("boot_seconds"), "selftests": {},
               "programs": {}, "full": full}
    must_pass = set(cfg.get("must_pass", []))
    if cfg.get("must_pass_series"):
        must_pass |= {st for st, _ in rp.series}
    for name, f, want_v in rp.params:
        t = res["tests"].get(name) or {}
        tap.line(t.get("rc") == 0, f"{f} reads {want_v} (got {' '.join(t.get('out', [])).strip()!r})")
    if cfg.get("expect"):
        if a.smoke:
            summary["programs"]["kvm-smoke"] = report_guest_test(tap, res, "kvm-smoke", "smoke")
        else:
            tap.skip("kvm-smoke", "not given (--smoke)")
    if cfg.get("library"):
        report_library(a, tap, rp, res, must_pass, want, summary)
    report_selftests(tap, rp, res, must_pass, deny, summary, cfg.get("must_run_cases", {}))
    if cfg.get("kunit"):
        check_kunit(tap, con)
    if cfg.get("upstream"):
        save_results_tsv(logdir, res, summary)
    return finish(a, tap, logdir, summary, t_start, a.run)


def save_results_tsv(logdir, res, summary):
    """results.tsv in the run's log dir: one line per selftest, NAME STATUS
    GUEST-SECONDS REASON (a skip's reason, an exclusion's), tab-separated."""
    with open(os.path.join(logdir, "results.tsv"), "w", encoding="utf-8") as f:
        f.write("# test\tresult\tguest seconds\treason\n")
        for name, status in sorted(summary["selftests"].items()):
            t = res["tests"].get(name) or {}
            why = summary["skip_reasons"].get(name) or summary.get("excluded", {}).get(name, "")
            secs = t.get("secs")
            f.write(f"{name}\t{status}\t{'' if secs is None else secs}\t{why}\n")


def report_library(a, tap, rp, res, must_pass, want, summary):
    """The library's programs: a skip (or, where the run needs it, a
    failure) for each one not given, a TAP line for each that ran."""
    for name in rp.lib_names:
        if name not in rp.library:
            why = a.no_guest_execs or "library executable not built (kvmnc_guest_execs lacks it)"
            if name == RUST_VMM:
                # Optional: it needs cargo (meson option rust); where it was
                # built, a VMX run requires it to run for real.
                tap.skip(name, a.no_guest_execs or "the Rust example VMM was not built"
                         " (no cargo, or -Drust=disabled)")
            elif name in must_pass and not a.no_guest_execs:
                tap.fail(f"{name}: must run in this run, but {why}")
            else:
                tap.skip(name, why)
            continue
        summary["programs"][name] = report_guest_test(
            tap, res, name, "probe" if name == PROBE else "library",
            must_pass=name in must_pass, expand=name in EXPANDED)
    summary["memtypes"] = memtypes(res.get("tests", {}).get("live-memtype", {}))
    if PROBE in rp.library and want:
        check_probe_json(tap, res, want)


def report_selftests(tap, rp, res, must_pass, deny, summary, must_run_cases):
    """The series' selftests (one the kernel lacks is a TODO: the series may
    not add it yet; must_run_cases names kselftest cases of one that must
    not skip), then the upstream ones (one not built is a failure)."""
    for st, rel in rp.series:
        if rel is None:
            tap.todo(False, f"series selftest {st}", "the series does not add it (yet)")
            continue
        summary["selftests"][rel] = report_guest_test(
            tap, res, rel, "selftest",
            must_pass=st in must_pass or os.path.basename(st) in must_pass)
        wanted = must_run_cases.get(os.path.basename(st))
        if wanted:
            missing = cases_not_run((res["tests"].get(rel) or {}).get("out", []), wanted)
            tap.line(not missing, f"{rel}: the cases {wanted} ran, not skipped"
                     + (f" (not run: {missing})" if missing else ""))
    summary["skip_reasons"] = {}
    summary["excluded"] = {}
    for name, why in rp.excluded:
        tap.skip(f"selftest {name}", f"not in the CI subset: {why}")
        summary["selftests"][name] = "excluded"
        summary["excluded"][name] = why
    for name, rel in rp.upstream:
        if rel is None:
            tap.fail(f"selftest {name} was built")
            summary["selftests"][name] = "missing"
            continue
        summary["selftests"][name] = report_guest_test(tap, res, rel, "selftest",
                                                       deny.get(name))
        if summary["selftests"][name] == "skip":
            summary["skip_reasons"][name] = skip_reason(res["tests"][rel].get("out", []))


def run_qemu_e2e(a, tap, cfg, kdir, logdir, t_start):
    """The QEMU end-to-end cases of a Bochs run: boot, kernel log, one TAP
    line per case (its driver's own TAP as diagnostics)."""
    qemu = os.path.abspath(a.qemu_e2e)
    if not os.access(qemu, os.X_OK):
        tap.fail(f"QEMU binary {qemu} is executable")
        return tap.exit_status(a.strict)
    if is_dynamic_elf(qemu):
        tap.fail(f"{qemu} is statically linked (the guest has no libc;"
                 " fetch-build.sh builds it so)")
        return tap.exit_status(a.strict)
    fwdir = os.path.join(logdir, "fw")
    subprocess.run([os.path.join(QEMU_E2E, "build-fw.sh"), fwdir], check=True)
    plan, files = qemu_e2e_plan(a.run, qemu, fwdir)
    timeout = guest_timeout(a.timeout, plan)
    res, con = boot(f"{a.run}-qemu-e2e", cfg, kdir, plan, files, {}, logdir, timeout, tap)
    check_kernel_log(con, tap, backend=cfg["backend"])
    summary = {"run": a.run, "qemu_e2e": qemu, "kernel": os.path.basename(kdir),
               "backend": cfg["backend"], "cpu": cfg["cpu"],
               "emulator_seconds": res.get("emulator_seconds"),
               "boot_seconds": res.get("boot_seconds"), "programs": {}, "sptes": {}}
    for case, _, _ in plan:
        summary["programs"][case] = report_guest_test(tap, res, case, "library", must_pass=True)
        summary["sptes"][case] = e2e_sptes(res["tests"].get(case, {}))
    return finish(a, tap, logdir, summary, t_start, f"{a.run} (QEMU e2e)")
