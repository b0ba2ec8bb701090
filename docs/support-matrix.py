#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the support-matrix tables of the docs from docs/support-matrix.tsv.

The same table drives tests/unit/test-matrix.c, so what the README and the
mechanism pages say each kernel answers is what the library is tested to
answer. Each generated table sits between two marker comments in its file;
nothing outside them is touched.

  docs/support-matrix.py [--top DIR] --write   rewrite the generated tables
  docs/support-matrix.py [--top DIR] --check   TAP: fail where a committed
                                               table differs (with a diff),
                                               where the table is malformed,
                                               or where a kernel-tier row
                                               disagrees with tests/live/live.h
"""
import argparse
import difflib
import os
import re
import sys

MECHS = ["native", "memslot_flag", "virtio_device", "guest_pat_quirk"]
TITLES = {
    "native": "native",
    "memslot_flag": "memslot_flag",
    "virtio_device": "virtio_device",
    "guest_pat_quirk": "guest_pat_quirk",
}
RECOMMENDED = ["none"] + MECHS
COLUMNS = ["personality", "query", "kernel"] + MECHS + ["recommended", "checked", "readme"]
ERRNOS = {"EPERM", "EACCES", "EINVAL", "ENOENT", "EPROTO", "EMFILE", "ENOMEM", "EOPNOTSUPP",
          "ENODATA"}
CHECKED = {
    "unit": "unit",
}
# The kernel tier's runs: tcg:RUN (QEMU TCG, AMD SVM), vmx:RUN (Bochs, Intel
# VMX with EPT); RUN is the KVMNC_EXPECT row of tests/live/live.h it checks.
TIERS = {"tcg": "TCG tier", "vmx": "VMX tier"}
LIVE_MECH = {"KVMNC_MECH_NONE": "none", "KVMNC_MECH_NATIVE": "native",
             "KVMNC_MECH_MEMSLOT_FLAG": "memslot_flag",
             "KVMNC_MECH_VIRTIO_DEVICE": "virtio_device",
             "KVMNC_MECH_GUEST_PAT_QUIRK": "guest_pat_quirk"}

TSV = "docs/support-matrix.tsv"
README = "README.md"
MECH_PAGE = "docs/guide/mechanisms/%s.md"


class TableError(Exception):
    pass


def parse_answer(cell, where):
    """'yes' / 'no' / 'unknown(EPERM)', optionally ': keyword' -> (answer, errno, keyword)."""
    answer, _, keyword = cell.partition(": ")
    m = re.fullmatch(r"unknown\((E[A-Z]+)\)", answer)
    if m:
        if m.group(1) not in ERRNOS:
            raise TableError("%s: unknown errno %s (known: %s)"
                             % (where, m.group(1), ", ".join(sorted(ERRNOS))))
        return ("unknown", m.group(1), keyword)
    if answer not in ("yes", "no"):
        raise TableError("%s: answer '%s' is not yes, no or unknown(ERRNO)" % (where, cell))
    return (answer, None, keyword)


def read_table(path):
    rows = []
    header = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cells = line.split("\t")
            where = "%s:%d" % (path, lineno)
            if header is None:
                if cells != COLUMNS:
                    raise TableError("%s: header must be: %s" % (where, "\t".join(COLUMNS)))
                header = cells
                continue
            if len(cells) != len(COLUMNS):
                raise TableError("%s: %d columns, want %d" % (where, len(cells), len(COLUMNS)))
            r = dict(zip(COLUMNS, cells))
            r["where"] = where
            if any("|" in c or "`" in c for c in cells):
                raise TableError("%s: no '|' or '`' in cells (they become Markdown)" % where)
            if not re.fullmatch(r"probe|vm:\d+", r["query"]):
                raise TableError("%s: query '%s' is not probe or vm:N" % (where, r["query"]))
            m = re.fullmatch(r"error\((E[A-Z]+)\)", r["recommended"])
            if m:
                r["error"] = m.group(1)
                if any(r[k] != "-" for k in MECHS):
                    raise TableError("%s: an error row has - for every mechanism" % where)
                r["answers"] = {}
            else:
                r["error"] = None
                if r["recommended"] not in RECOMMENDED:
                    raise TableError("%s: recommended '%s' is not one of %s"
                                     % (where, r["recommended"], ", ".join(RECOMMENDED)))
                r["answers"] = {k: parse_answer(r[k], "%s: %s" % (where, k)) for k in MECHS}
            checked = r["checked"].split(",")
            for c in checked:
                if c not in CHECKED and not re.fullmatch(r"(tcg|vmx):[a-z0-9.-]+", c):
                    raise TableError("%s: checked '%s' is not unit, tcg:RUN or vmx:RUN"
                                     % (where, c))
            if r["personality"] == "-" and "unit" in checked:
                raise TableError("%s: unit needs a personality" % where)
            if r["personality"] != "-" and "unit" not in checked:
                raise TableError("%s: a row with a personality is checked by unit" % where)
            if r["readme"] not in ("yes", "no"):
                raise TableError("%s: readme is yes or no" % where)
            r["checked"] = checked
            rows.append(r)
    if not rows:
        raise TableError("%s: no rows" % path)
    return rows


def read_live_expectations(path):
    """tests/live/live.h t_expectations: {name: (native, flag, device, quirk, recommended)}."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    body = re.search(r"t_expectations\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if not body:
        raise TableError("%s: no t_expectations table" % path)
    out = {}
    for m in re.finditer(r'\{"([a-z0-9.-]+)",\s*(-?\d+),\s*(-?\d+),\s*(-?\d+),\s*(-?\d+),\s*'
                         r'(KVMNC_MECH_\w+)\s*[,}]', body.group(1)):
        out[m.group(1)] = tuple(int(m.group(i)) for i in range(2, 6)) + (LIVE_MECH[m.group(6)],)
    return out


def check_tier(rows, live):
    """Rows the kernel tier's runs check must say what tests/live/live.h expects."""
    problems = []
    for r in rows:
        for c in r["checked"]:
            tier, _, run = c.partition(":")
            if tier not in TIERS:
                continue
            if run not in live:
                problems.append("%s: %s is not a KVMNC_EXPECT run of tests/live/live.h"
                                % (r["where"], c))
                continue
            want = live[run]
            have = tuple({"yes": 1, "no": 0}.get(r["answers"][k][0], None) for k in MECHS)
            # live.h orders them native, flag, device, quirk, as MECHS does.
            if have != want[:4] or r["recommended"] != want[4]:
                problems.append("%s: the table says %s, recommended %s; tests/live/live.h "
                                "expects %s for %s" % (r["where"], have, r["recommended"],
                                                       want, run))
    return problems


def md_answer(a):
    answer, errno, keyword = a
    text = {"yes": "yes", "no": "no", "unknown": "could not tell"}[answer]
    inner = []
    if errno:
        inner.append("`-%s`" % errno)
    if keyword:
        inner.append("`%s`" % keyword)
    return text + (" (%s)" % "; ".join(inner) if inner else "")


def md_checked(checked):
    out = []
    for c in checked:
        tier, _, run = c.partition(":")
        if tier in TIERS:
            out.append("%s (`%s`)" % (TIERS[tier], run))
        else:
            out.append(CHECKED[c])
    return ", ".join(out)


def md_error(r):
    call = "kvmnc_probe()" if r["query"] == "probe" else "kvmnc_open()"
    return "`%s` returns `-%s`" % (call, r["error"])


LEGEND = (
    "Text in code type is part of the reason the probe gives (`kvmnc-probe` prints it). "
    "Checked by: *unit*, the unit tests replay the row against the fake kernel "
    "(`tests/unit/test-matrix.c`); *TCG tier* and *VMX tier*, the named run of "
    "the kernel tier (`tests/kernel/`: QEMU TCG on AMD SVM, Bochs on Intel VMX "
    "with EPT) expects the same answer from the real kernel."
)


def readme_table(rows):
    lines = ["| kernel | " + " | ".join(TITLES[m] for m in MECHS) + " | recommended | checked by |",
             "|---" * (len(MECHS) + 3) + "|"]
    for r in rows:
        if r["readme"] != "yes":
            continue
        if r["error"]:
            cells = [md_error(r)] + [""] * len(MECHS)
        else:
            cells = [md_answer(r["answers"][m]) for m in MECHS] + [r["recommended"]]
        lines.append("| " + " | ".join([r["kernel"]] + cells + [md_checked(r["checked"])]) + " |")
    return "\n".join(lines) + "\n\n" + LEGEND + "\n"


def mech_table(rows, mech):
    order = {"yes": 0, "unknown": 1, "no": 2}
    chosen = sorted((r for r in rows if not r["error"]),
                    key=lambda r: order[r["answers"][mech][0]])
    lines = ["| kernel | %s | recommended | checked by |" % TITLES[mech], "|---|---|---|---|"]
    for r in chosen:
        lines.append("| %s | %s | %s | %s |" % (r["kernel"], md_answer(r["answers"][mech]),
                                                r["recommended"], md_checked(r["checked"])))
    return "\n".join(lines) + "\n\n" + LEGEND + "\n"


def markers(name):
    begin = ("<!-- %s: begin (generated by docs/support-matrix.py from "
             "docs/support-matrix.tsv; edit those, then run docs/support-matrix.py --write) -->"
             % name)
    return begin, "<!-- %s: end -->" % name


def splice(text, name, body, path):
    begin, end = markers(name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise TableError("%s: want exactly one '%s' and one '%s' line" % (path, begin, end))
    a = text.index(begin) + len(begin)
    b = text.index(end)
    if b < a:
        raise TableError("%s: the end marker comes before the begin marker" % path)
    return text[:a] + "\n" + body + text[b:]


def targets(rows):
    """(path, marker name, generated body)."""
    out = [(README, "support-matrix", readme_table(rows))]
    for m in MECHS:
        out.append((MECH_PAGE % m, "support-matrix " + m, mech_table(rows, m)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--top", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = p.parse_args()

    def path(rel):
        return os.path.join(args.top, rel)

    n = 0
    bad = 0

    def tap(ok, what, detail=""):
        nonlocal n, bad
        n += 1
        bad += not ok
        print("%s %d - %s" % ("ok" if ok else "not ok", n, what))
        for line in detail.splitlines():
            print("# " + line)

    try:
        rows = read_table(path(TSV))
        live = read_live_expectations(path("tests/live/live.h"))
        plan = targets(rows)
        new_texts = []
        for rel, name, body in plan:
            with open(path(rel), encoding="utf-8") as f:
                old = f.read()
            new_texts.append((rel, old, splice(old, name, body, rel)))
    except (TableError, OSError) as e:
        if args.write:
            sys.exit(str(e))
        tap(False, "read %s and the files it generates" % TSV, str(e))
        print("1..%d" % n)
        return 1

    if args.write:
        for rel, old, new in new_texts:
            if new != old:
                with open(path(rel), "w", encoding="utf-8") as f:
                    f.write(new)
                print("wrote %s" % rel)
        return 0

    tap(True, "%s: %d rows, well formed" % (TSV, len(rows)))
    problems = check_tier(rows, live)
    tap(not problems, "rows checked by the kernel tier agree with tests/live/live.h",
        "\n".join(problems))
    for rel, old, new in new_texts:
        diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                            rel, rel + " (generated)"))
        tap(old == new, "%s matches %s" % (rel, TSV),
            diff + ("\nrun docs/support-matrix.py --write" if diff else ""))
    print("1..%d" % n)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
