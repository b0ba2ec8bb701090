#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Kernel tier runner: build (or fetch from cache) a kernel flavour, pack an
initramfs with the guest programs, boot it under QEMU TCG, and report every
guest case as one TAP line on stdout (Meson protocol 'tap').

  run-qemu.py --run RUN --logdir DIR [--smoke kvm-smoke] [--guest-exec EXE]...

RUN is one of:
  stock-npt          stock 6.12 on -cpu EPYC (AMD NPT): kvm-smoke, library
                     live tests + kvmnc-probe --json with KVMNC_EXPECT=stock-npt
  patched-npt        patched on -cpu EPYC: the same with patched-npt, the
                     series' selftests, KUnit suite kvm_x86_memtype
  patched-shadow     patched on -cpu qemu64,+svm (shadow paging)
  stock-selftests    upstream selftests of selftests.list on stock
  patched-selftests  the same on patched
  selftests-compare  no boot: per-test results of the two must be identical
                     (deny-listed tests excepted)

Exit status is 0 whenever TAP was produced (failures are "not ok" lines),
unless --strict is given: then 1 on any failure.  The serial console log,
the result stream and a JSON summary land in DIR/<run>/.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

LIBRARY_TESTS = ["live-probe", "live-handle", "live-memslot", "live-device"]
PROBE = "kvmnc-probe"
SERIES_SELFTESTS = ["virtio_device_test", "noncoherent_dma_memslot_test",
                    "noncoherent_dma_memtype_test"]
KUNIT_SUITE = "kvm_x86_memtype"
KSFT_SKIP = 4

RUNS = {
    "stock-npt": dict(flavour="stock", cpu="EPYC", expect="stock-npt",
                      library=True),
    "patched-npt": dict(flavour="patched", cpu="EPYC", expect="patched-npt",
                        library=True, series=True, kunit=True),
    "patched-shadow": dict(flavour="patched", cpu="qemu64,+svm",
                           expect="patched-shadow", library=True, series=True),
    "stock-selftests": dict(flavour="stock", cpu="EPYC", upstream=True),
    "patched-selftests": dict(flavour="patched", cpu="EPYC", upstream=True),
}

# What kvmnc-probe --json must say, per run: (mechanism, supported) pairs and
# the recommended mechanism (None: not asserted).
PROBE_EXPECT = {
    "stock-npt": ([("virtio_device", False), ("memslot_flag", False),
                   ("native", True)], "native"),
    "patched-npt": ([("virtio_device", True), ("memslot_flag", True)], None),
    "patched-shadow": ([("memslot_flag", False), ("native", False)], None),
}

BAD_LOG = re.compile(r"(WARNING:|BUG:|Oops|Kernel panic|general protection fault"
                     r"|UBSAN:|KASAN:|kernel BUG)")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = []

    def line(self, ok, desc, directive=None):
        self.n += 1
        desc = desc.replace("#", "\\#").replace("\n", " ")
        s = f"{'ok' if ok else 'not ok'} {self.n} - {desc}"
        if directive:
            s += " # " + directive.replace("#", "").replace("\n", " ")
        print(s, flush=True)
        if not ok and not (directive or "").upper().startswith("TODO"):
            self.failed.append(desc)

    def ok(self, desc):
        self.line(True, desc)

    def fail(self, desc):
        self.line(False, desc)

    def skip(self, desc, reason):
        self.line(True, desc, "SKIP " + reason)

    def todo(self, ok, desc, reason):
        self.line(ok, desc, "TODO " + reason)

    def diag(self, text):
        for ln in str(text).splitlines():
            print("# " + ln, flush=True)

    def finish(self):
        print(f"1..{self.n}", flush=True)


def log(msg):
    print(f"[kernel-tier] {msg}", file=sys.stderr, flush=True)


def read_list(path):
    """NAME REST lines of a list file, comments and blanks skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            parts = ln.split(None, 1)
            out.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return out


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


def parse_results(path):
    """Parse the KVMNC-* framed result stream of the guest's ttyS1."""
    res = {"init": None, "done": False, "tests": {}, "order": []}
    cur = None
    buf = []
    try:
        data = open(path, "rb").read().decode("utf-8", "replace")
    except FileNotFoundError:
        return res
    for ln in data.replace("\r", "").split("\n"):
        if ln.startswith("KVMNC-INIT "):
            res["init"] = ln[len("KVMNC-INIT "):]
        elif ln.startswith("KVMNC-BEGIN "):
            cur = ln.split()[1]
            buf = []
            res["order"].append(cur)
            res["tests"][cur] = {"rc": None, "secs": None, "out": buf}
        elif ln.startswith("KVMNC-END "):
            cur = None
        elif ln.startswith("KVMNC-RESULT "):
            parts = ln.split()
            t = res["tests"].setdefault(parts[1], {"out": []})
            t["rc"] = int(parts[2])
            t["secs"] = int(parts[3]) if len(parts) > 3 else None
        elif ln.startswith("KVMNC-DONE"):
            res["done"] = True
        elif cur is not None:
            buf.append(ln)
    return res


def parse_kunit(console):
    """{suite: [(ok, case, directive)]} from the KTAP on the console.
    Suites are the "# Subtest:" lines at indent 4 under the top-level KTAP
    header and their cases the results at indent 4; a parameterised case's
    per-parameter results (indent 8) are listed too, as "case.param",
    before the case's own line."""
    suites = {}
    cur = None
    param_case = None
    pfx = re.compile(r"^\[\s*\d+\.\d+\]\s?")
    result = re.compile(r"^(not ok|ok) \d+ (.+?)(?:\s+#\s*(.*))?$")
    for raw in console.splitlines():
        ln = pfx.sub("", raw.rstrip("\r"))
        indent = len(ln) - len(ln.lstrip(" "))
        body = ln.strip()
        m = re.match(r"^# Subtest: (.+)$", body)
        if m:
            if indent == 4:
                cur = m.group(1).strip()
                suites.setdefault(cur, [])
            elif indent == 8:
                param_case = m.group(1).strip()
            continue
        m = result.match(body)
        if not m:
            continue
        if indent == 8 and cur is not None and param_case:
            suites[cur].append((m.group(1) == "ok", f"{param_case}.{m.group(2)}", m.group(3) or ""))
        elif indent == 4 and cur is not None:
            suites[cur].append((m.group(1) == "ok", m.group(2), m.group(3) or ""))
            param_case = None
        elif indent == 0:
            cur = None
    return suites


def host_tsc_khz():
    """TCG's guest TSC runs at the host TSC rate.  Without ACPI the guest has
    no HPET/PM timer to calibrate against and PIT calibration fails under
    TCG, so the guest would mark its TSC unusable and its KVM would report
    KVM_GET_TSC_KHZ = 0, which every x86 selftest asserts on.  Hand the
    guest the host's rate instead (tsc_early_khz=)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/tsc_freq_khz", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for ln in f:
                if ln.startswith("cpu MHz"):
                    return int(float(ln.split(":")[1]) * 1000)
    except (OSError, ValueError, IndexError):
        pass
    return 2000000


def boot(run, cfg, kdir, plan, files, env, logdir, timeout, tap):
    """Pack the initramfs, boot QEMU, return (results, console text)."""
    os.makedirs(logdir, exist_ok=True)
    planf = os.path.join(logdir, "plan")
    with open(planf, "w", encoding="utf-8") as f:
        for name, tmo, cmd in plan:
            f.write(f"{name} {tmo} {cmd}\n")
    initrd = os.path.join(logdir, "initramfs.cpio")
    cmd = [os.path.join(HERE, "mkinitramfs.sh"), "-o", initrd, "-p", planf]
    for src, dest in files:
        cmd += ["-f", f"{src}={dest}"]
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    log(f"{run}: initramfs {os.path.getsize(initrd) >> 20} MiB in {time.monotonic() - t0:.1f} s")
    console = os.path.join(logdir, "console.log")
    results = os.path.join(logdir, "results.log")
    for p in (console, results):
        if os.path.exists(p):
            os.unlink(p)
    smp = os.environ.get("KVMNC_QEMU_SMP", "1")
    qemu = [os.environ.get("KVMNC_QEMU", "qemu-system-x86_64"),
            "-accel", "tcg", "-cpu", cfg["cpu"], "-m", os.environ.get("KVMNC_QEMU_MEM", "2G"),
            "-smp", smp, "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-monitor", "none",
            "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
            "-chardev", f"file,id=res,path={results}", "-serial", "chardev:res",
            "-kernel", os.path.join(kdir, "bzImage"), "-initrd", initrd,
            "-append", f"console=ttyS0,115200 panic=-1 loglevel=7 tsc_early_khz={host_tsc_khz()}"
            f" kvmnc.run={run}"]
    with open(os.path.join(logdir, "qemu-cmdline"), "w", encoding="utf-8") as f:
        f.write(shlex.join(qemu) + "\n")
    log(f"{run}: booting: {shlex.join(qemu)}")
    t0 = time.monotonic()
    timed_out = False
    with open(os.path.join(logdir, "qemu.stderr"), "w", encoding="utf-8") as err:
        proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
    dt = time.monotonic() - t0
    log(f"{run}: QEMU ran {dt:.1f} s (exit {proc.returncode}{', TIMED OUT' if timed_out else ''})")
    res = parse_results(results)
    con = open(console, "rb").read().decode("utf-8", "replace") if os.path.exists(console) else ""
    if res["init"] is None:
        tap.fail(f"guest reached init (no KVMNC-INIT; see {console})")
        tap.diag("\n".join(con.splitlines()[-40:]))
    else:
        tap.ok(f"guest reached init: {res['init']}")
    if timed_out:
        tap.fail(f"QEMU finished within {timeout} s (killed after {dt:.0f} s)")
    elif not res["done"]:
        tap.fail(f"guest ran its whole plan (no KVMNC-DONE, QEMU exit {proc.returncode})")
    else:
        tap.ok(f"guest ran its whole plan; QEMU {dt:.1f} s, exit {proc.returncode}")
    res["qemu_seconds"] = round(dt, 1)
    return res, con


def check_kernel_log(con, tap):
    bad = [ln.rstrip("\r") for ln in con.splitlines() if BAD_LOG.search(ln)]
    if bad:
        tap.fail(f"guest kernel log has no WARNING/BUG/Oops/panic ({len(bad)} hit(s))")
        tap.diag("\n".join(bad[:20]))
    else:
        tap.ok("guest kernel log has no WARNING/BUG/Oops/panic")


def report_guest_test(tap, res, name, kind, deny=None):
    """One TAP line for a guest program.  kind: 'library' (77 skip),
    'selftest' (4 skip), 'smoke' (its TAP lines expanded).  Returns one of
    pass/skip/fail/timeout/missing."""
    t = res["tests"].get(name)
    if t is None or t.get("rc") is None:
        tap.fail(f"{name}: no result from the guest (crashed or timed out before it ran)")
        return "missing"
    rc, out = t["rc"], t.get("out", [])
    secs = t.get("secs")
    tap.diag(f"--- {name} (exit {rc}, {secs} s) ---")
    tap.diag("\n".join(out[-60:]))
    if kind == "smoke":
        for ln in out:
            m = re.match(r"^(not ok|ok) \d+ - (.*)$", ln)
            if m:
                tap.line(m.group(1) == "ok", f"{name}: {m.group(2)}")
    skiprc = 77 if kind in ("library", "smoke") else KSFT_SKIP
    lastline = next((ln for ln in reversed(out) if "skip" in ln.lower()),
                    next((ln for ln in reversed(out) if ln.strip()), ""))
    lastline = re.sub(r"^\s*(1\.\.0\s*)?#?\s*(SKIP\b)?\s*-?\s*", "", lastline).replace("#", "")
    if rc == 0 or (kind == "probe" and rc == 1):
        status = "pass"  # kvmnc-probe: 1 = "no mechanism usable", judged by the JSON checks
    elif rc == skiprc:
        status = "skip"
    elif rc == 137:
        status = "timeout"
    else:
        status = "fail"
    desc = f"{name} ({status}, exit {rc}, {secs} s)"
    if deny is not None and status != "skip":
        tap.todo(status == "pass", desc, f"deny-listed: {deny}")
    elif status == "pass":
        tap.ok(desc)
    elif status == "skip":
        tap.skip(desc, lastline.strip()[:200] or "skipped")
    else:
        tap.fail(desc)
    return status


def check_probe_json(tap, res, run):
    t = res["tests"].get(PROBE)
    if not t or t.get("rc") is None:
        return
    text = "\n".join(t.get("out", []))
    start = text.find("{")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:]) if start >= 0 else (None, 0)
    except ValueError as e:
        obj = None
        tap.diag(f"JSON error: {e}")
    if not isinstance(obj, dict):
        tap.fail(f"{PROBE} --json printed one JSON object")
        return
    tap.ok(f"{PROBE} --json printed one JSON object (kernel {obj.get('kernel')!r})")
    mech = obj.get("mechanisms") or {}
    expect, recommended = PROBE_EXPECT[run]
    for name, want in expect:
        m = mech.get(name)
        if not isinstance(m, dict) or not isinstance(m.get("supported"), bool):
            tap.fail(f"probe JSON: mechanisms.{name}.supported missing")
            continue
        got = m["supported"]
        tap.line(got == want, f"probe JSON: {name} {'supported' if want else 'NOT supported'}"
                 f" (got {got}: {m.get('reason', '')!r})")
    if recommended is not None:
        tap.line(obj.get("recommended") == recommended,
                 f"probe JSON: recommended == {recommended!r} (got {obj.get('recommended')!r})")
    rc = t["rc"]
    want_rc = 0 if recommended or any(w for _, w in expect) else None
    if want_rc is not None:
        tap.line(rc == want_rc, f"{PROBE} --json exit status {want_rc} (got {rc})")


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


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, choices=list(RUNS) + ["selftests-compare"])
    ap.add_argument("--logdir", required=True)
    ap.add_argument("--smoke", help="static kvm-smoke binary")
    ap.add_argument("--guest-exec", action="append", default=[],
                    help="static library executable for the guest (repeatable)")
    ap.add_argument("--cache-dir", default="", help="kernel cache (KVMNC_KERNEL_CACHE)")
    ap.add_argument("--timeout", type=int, default=900, help="hard QEMU timeout, s")
    ap.add_argument("--strict", action="store_true", help="exit 1 on any failure")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this upstream selftest (repeatable; for debugging)")
    a = ap.parse_args()
    if a.cache_dir:
        os.environ["KVMNC_KERNEL_CACHE"] = a.cache_dir
    logdir = os.path.join(os.path.abspath(a.logdir), a.run)
    os.makedirs(logdir, exist_ok=True)
    tap = Tap()
    t_start = time.monotonic()

    if a.run == "selftests-compare":
        return compare(a, tap)

    cfg = RUNS[a.run]
    kdir, skip = build_kernel(cfg["flavour"], tap)
    if skip:
        print(f"1..0 # SKIP {skip}", flush=True)
        save_summary(logdir, {"skipped": skip})
        return 0
    if kdir is None:
        tap.finish()
        return 1 if a.strict else 0

    plan, files, env = [], [], {}
    deny = dict(read_list(os.path.join(HERE, "selftests-denylist.txt")))
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
        dyn = is_dynamic_elf(exe)
        if dyn:
            tap.fail(f"{name} is statically linked (it has a PT_INTERP; link it with -static)")
            continue
        library[name] = exe
    # The four required live tests, any further live-* the library adds,
    # then the probe.
    lib_names = LIBRARY_TESTS + sorted(n for n in library
                                       if n.startswith("live-") and n not in LIBRARY_TESTS)
    lib_names.append(PROBE)
    if cfg.get("library"):
        for name in lib_names:
            if name in library:
                files.append((library[name], f"/kvmnc/{name}"))
                cmd = f"./{name}" if name != PROBE else f"./{name} --json"
                plan.append((name, 120, cmd))
    series = []
    if cfg.get("series"):
        for st in SERIES_SELFTESTS:
            path, rel = find_selftest(kdir, st)
            series.append((st, rel))
            if path:
                files.append((path, f"/kvmnc/st/{rel}"))
                plan.append((rel, 120, f"./st/{rel}"))
    upstream = []
    if cfg.get("upstream"):
        for name, rest in read_list(os.path.join(HERE, "selftests.list")):
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
    timeout = min(a.timeout, 90 + sum(t for _, t, _ in plan))

    res, con = boot(a.run, cfg, kdir, plan, files, env, logdir, timeout, tap)
    check_kernel_log(con, tap)
    summary = {"run": a.run, "kernel": os.path.basename(kdir), "cpu": cfg["cpu"],
               "qemu_seconds": res.get("qemu_seconds"), "selftests": {}}

    if cfg.get("expect"):
        if a.smoke:
            report_guest_test(tap, res, "kvm-smoke", "smoke")
        else:
            tap.skip("kvm-smoke", "not given (--smoke)")
    if cfg.get("library"):
        for name in lib_names:
            if name not in library:
                tap.skip(name, "library executable not built yet (kvmnc_guest_execs lacks it)")
                continue
            report_guest_test(tap, res, name, "probe" if name == PROBE else "library")
        if PROBE in library:
            check_probe_json(tap, res, a.run)
    for st, rel in series:
        if rel is None:
            tap.todo(False, f"series selftest {st}", "the series does not add it (yet)")
        else:
            summary["selftests"][rel] = report_guest_test(tap, res, rel, "selftest")
    for name, rel in upstream:
        if rel is None:
            tap.fail(f"selftest {name} was built")
            summary["selftests"][name] = "missing"
        else:
            summary["selftests"][name] = report_guest_test(tap, res, rel, "selftest",
                                                           deny.get(name))
    if cfg.get("kunit"):
        suites = parse_kunit(con)
        tap.diag("KUnit suites on the console: " + (", ".join(sorted(suites)) or "none"))
        cases = suites.get(KUNIT_SUITE)
        if cases is None:
            tap.todo(False, f"KUnit suite {KUNIT_SUITE} ran", "the series does not add it (yet)")
        elif not cases:
            tap.fail(f"KUnit suite {KUNIT_SUITE} has cases")
        for ok, case, directive in cases or []:
            d = f"kunit {KUNIT_SUITE}.{case}"
            if directive.upper().startswith("SKIP"):
                tap.skip(d, directive[4:].strip() or "skipped")
            else:
                tap.line(ok, d)
        for s, cs in sorted(suites.items()):
            if s != KUNIT_SUITE and any(not ok for ok, _, d in cs if not d.upper().startswith("SKIP")):
                tap.fail(f"KUnit suite {s}: all cases pass")

    summary["seconds"] = round(time.monotonic() - t_start, 1)
    save_summary(logdir, summary)
    log(f"{a.run}: {len(tap.failed)} failure(s), {summary['seconds']} s total")
    tap.finish()
    return 1 if (a.strict and tap.failed) else 0


def save_summary(logdir, summary):
    with open(os.path.join(logdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True)


def compare(a, tap):
    base = os.path.abspath(a.logdir)
    deny = dict(read_list(os.path.join(HERE, "selftests-denylist.txt")))
    sums = {}
    for run in ("stock-selftests", "patched-selftests"):
        p = os.path.join(base, run, "summary.json")
        try:
            sums[run] = json.load(open(p, encoding="utf-8"))
        except (OSError, ValueError):
            print(f"Bail out! {p} missing: run the {run} test first "
                  f"(meson test --suite kernel runs it before this one)", flush=True)
            return 1 if a.strict else 0
    for run, s in sums.items():
        if "skipped" in s:
            print(f"1..0 # SKIP {run} was skipped: {s['skipped']}", flush=True)
            return 0
    st, pt = sums["stock-selftests"]["selftests"], sums["patched-selftests"]["selftests"]
    for name in sorted(set(st) | set(pt)):
        s, p = st.get(name, "absent"), pt.get(name, "absent")
        desc = f"{name}: stock={s} patched={p}"
        if name in deny:
            tap.skip(desc, f"deny-listed: {deny[name]}")
        else:
            tap.line(s == p and s not in ("absent", "missing"), desc)
    tap.finish()
    return 1 if (a.strict and tap.failed) else 0


if __name__ == "__main__":
    sys.exit(main())
