# SPDX-License-Identifier: LGPL-2.1-or-later
"""From what the guest wrote to TAP lines and summary.json: the parsers of
the framed result stream (KVMNC-INIT/BEGIN/END/RESULT/DONE on the second
serial port), of KUnit's KTAP on the console and of the programs' own
diagnostics (SPTE memory types), the kernel-log check, one TAP line per
guest program, the kvmnc-probe --json checks against live.h's row, and the
stock/patched comparison of two runs' summaries."""

import json
import os
import re

from .config import (BAD_LOG, DEBUG_BANNERS, KNOWN_LOG, KSFT_SKIP, KUNIT_SUITE, PROBE,
                     is_series_selftest, read_denylist)


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


def guest_cpus(init):
    m = re.search(r"\bcpus=(\d+)", init or "")
    return int(m.group(1)) if m else None


def memtypes(test):
    """{case: {slot: memory type}} from live-memtype's output lines
    "# CASE: SLOT (KIND): N SPTE(s), memory type X"."""
    out = {}
    for ln in test.get("out", []):
        m = re.match(r"^# (.+): (plain slot|second slot) \((plain|non-coherent)\): (\d+) "
                     r"SPTE\(s\), memory type (.+)$", ln)
        if m:
            out.setdefault(m.group(1), {})[f"{m.group(2)} ({m.group(3)})"] = m.group(5)
    return out


def e2e_sptes(test):
    """{range: [(spte, memory type)]} from qemu-e2e.sh's diagnostic lines
    "# RANGE gfn 0x.. level N spte 0x.. type 0x.."."""
    out = {}
    for ln in test.get("out", []):
        m = re.match(r"^# (nc|plain) gfn \S+ level \d+ spte (0x[0-9a-f]+) type (0x[0-9a-f])$", ln)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return out


def known_message(line, backend):
    """The reason a KNOWN_LOG entry gives for line on backend, or None."""
    for pat, backends, why in KNOWN_LOG:
        if backend in backends and pat.search(line):
            return why
    return None


def check_kernel_log(con, tap, debug=False, backend=None):
    bad = []
    for ln in con.splitlines():
        ln = ln.rstrip("\r")
        if not BAD_LOG.search(ln):
            continue
        why = known_message(ln, backend)
        if why:
            tap.diag(f"known message, not a finding ({why}): {ln}")
        else:
            bad.append(ln)
    if bad:
        tap.fail(f"guest kernel log has no WARNING/BUG/Oops/panic/lockdep/KASAN report"
                 f" ({len(bad)} hit(s))")
        tap.diag("\n".join(bad[:20]))
    else:
        tap.ok("guest kernel log has no WARNING/BUG/Oops/panic/lockdep/KASAN report")
    if debug:
        for desc, pat in DEBUG_BANNERS:
            tap.line(bool(pat.search(con)), f"debug kernel: {desc} (console banner)")


def _status(kind, rc):
    """pass/skip/fail/timeout from a guest program's exit status; kvmnc-probe
    exits 1 for "no mechanism usable", which its JSON checks judge."""
    skiprc = 77 if kind in ("library", "smoke") else KSFT_SKIP
    if rc == 0 or (kind == "probe" and rc == 1):
        return "pass"
    if rc == skiprc:
        return "skip"
    if rc == 137:
        return "timeout"
    return "fail"


def skip_reason(out):
    """The program's last line that mentions a skip (else its last line),
    stripped of TAP's skip framing."""
    lastline = next((ln for ln in reversed(out) if "skip" in ln.lower()),
                    next((ln for ln in reversed(out) if ln.strip()), ""))
    lastline = re.sub(r"^\s*(1\.\.0\s*)?#?\s*(SKIP\b)?\s*-?\s*", "", lastline).replace("#", "")
    return lastline.strip()[:200]


def report_guest_test(tap, res, name, kind, deny=None, must_pass=False, expand=False):
    """One TAP line for a guest program.  kind: 'library' (77 skip),
    'selftest' (4 skip), 'smoke' (77 skip, its TAP lines expanded), 'probe'.
    expand: its TAP lines become the run's too.  A skip of a must_pass
    program is a failure.  Returns one of pass/skip/fail/timeout/missing."""
    t = res["tests"].get(name)
    if t is None or t.get("rc") is None:
        tap.fail(f"{name}: no result from the guest (crashed or timed out before it ran)")
        return "missing"
    rc, out = t["rc"], t.get("out", [])
    secs = t.get("secs")
    tap.diag(f"--- {name} (exit {rc}, {secs} s) ---")
    tap.diag("\n".join(out[-60:]))
    if kind == "smoke" or expand:
        for ln in out:
            m = re.match(r"^(not ok|ok) \d+ - (.*?)(?:\s+#\s*((?:SKIP|TODO)\b.*))?$", ln)
            if m:
                tap.line(m.group(1) == "ok", f"{name}: {m.group(2)}", m.group(3))
    status = _status(kind, rc)
    desc = f"{name} ({status}, exit {rc}, {secs} s)"
    if deny is not None and status != "skip":
        tap.todo(status == "pass", desc, f"deny-listed: {deny}")
    elif status == "pass":
        tap.ok(desc)
    elif status == "skip" and must_pass:
        tap.fail(f"{desc}: must run for real in this run, but skipped: {skip_reason(out)}")
    elif status == "skip":
        tap.skip(desc, skip_reason(out) or "skipped")
    else:
        tap.fail(desc)
    return status


def cases_not_run(out, wanted):
    """Of the case-name fragments in wanted, those that no line of a
    kselftest program's output reports as run ("ok N name" without a SKIP
    directive, or "not ok N name", which the program's exit reports)."""
    ran = [ln for ln in out if re.match(r"^(not )?ok \d+ ", ln) and "# SKIP" not in ln]
    return [w for w in wanted if not any(w in ln for ln in ran)]


def check_probe_json(tap, res, want):
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
    for name in ("native", "memslot_flag", "virtio_device", "guest_pat_quirk"):
        m = mech.get(name)
        if not isinstance(m, dict) or not isinstance(m.get("supported"), bool):
            tap.fail(f"probe JSON: mechanisms.{name}.supported missing")
            continue
        got = m["supported"]
        tap.line(got == want[name], f"probe JSON: {name} "
                 f"{'supported' if want[name] else 'NOT supported'}"
                 f" (got {got}: {m.get('reason', '')!r})")
    tap.line(obj.get("recommended") == want["recommended"],
             f"probe JSON: recommended == {want['recommended']!r} (got {obj.get('recommended')!r})")
    want_rc = 0 if want["recommended"] else 1
    tap.line(t["rc"] == want_rc, f"{PROBE} --json exit status {want_rc} (got {t['rc']})")


def check_kunit(tap, con):
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


def save_summary(logdir, summary):
    with open(os.path.join(logdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True)


# kselftest's TEST_REQUIRE() skip: the kernel lacks a capability the test
# needs (a config choice), as opposed to a failure to run.
REQUIREMENT = "Requirement not met"


def compare_one(stock, patched, stock_why):
    """(verdict, note) of one selftest: stock runs Debian's own kernel, with
    Debian's config, and patched our build of the same source with the
    tier's config, so a test may run only on patched because the tier
    enables what Debian does not. That difference is no regression; any
    other is a failure."""
    if stock == patched and stock not in ("absent", "missing"):
        return True, ""
    if stock == "skip" and patched == "pass" and REQUIREMENT in (stock_why or ""):
        return True, f"runs on patched only: Debian's kernel skips it ({stock_why})"
    return False, ""


def compare(tap, base, stock_run, patched_run, backend, strict):
    """Per-test results of the two runs' summaries (in base/<run>/) must be
    identical, deny-listed tests of `backend` excepted, and a test whose
    requirement Debian's config does not meet (compare_one)."""
    deny = read_denylist(backend)
    sums = {}
    for run in (stock_run, patched_run):
        p = os.path.join(base, run, "summary.json")
        try:
            sums[run] = json.load(open(p, encoding="utf-8"))
        except (OSError, ValueError):
            print(f"Bail out! {p} missing: run the {run} test first "
                  f"(meson test --suite kernel runs it before this one)", flush=True)
            return 1 if strict else 0
    for run, s in sums.items():
        if "skipped" in s:
            print(f"1..0 # SKIP {run} was skipped: {s['skipped']}", flush=True)
            return 0
    if sums[stock_run].get("full", False) != sums[patched_run].get("full", False):
        print(f"Bail out! {stock_run} and {patched_run} ran different selftest sets (one the"
              " whole suite, one the CI subset): run both the same way", flush=True)
        return 1 if strict else 0
    st, pt = sums[stock_run]["selftests"], sums[patched_run]["selftests"]
    why = sums[stock_run].get("skip_reasons", {})
    for name in sorted(set(st) | set(pt)):
        s, p = st.get(name, "absent"), pt.get(name, "absent")
        desc = f"{name}: stock={s} patched={p}"
        if name in deny:
            tap.skip(desc, f"deny-listed: {deny[name]}")
            continue
        if s == p == "excluded":
            tap.skip(desc, f"not in the CI subset: {sums[stock_run]['excluded'].get(name)}")
            continue
        if s == "absent" and is_series_selftest(name):
            # The series' own selftest: the base has none to compare with;
            # the patched run itself judges it, here it must not fail.
            tap.line(p in ("pass", "skip"), f"{desc} (the series' own selftest)")
            continue
        ok, note = compare_one(s, p, why.get(name))
        tap.line(ok, f"{desc} ({note})" if note else desc)
    return tap.exit_status(strict)
