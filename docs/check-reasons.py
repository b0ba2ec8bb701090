#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every reason kvmnc-probe can print has an entry in the troubleshooting page,
and the reason codes of docs/reasons.tsv are enum kvmnc_reason.

The reasons are the format strings the probe writes into a mechanism's
reason (set_status() and the snprintf() calls that build its parts in
libkvmnc/probe.c) and the messages kvmnc-probe itself writes to standard
error. docs/guide/troubleshooting.md has one entry per format, a heading
of the form

  #### `the format, as the C string reads, escapes undone`

and this check (TAP; Meson test troubleshooting-reasons) fails on a format
without an entry and on an entry whose format no source has any more.

  docs/check-reasons.py [--top DIR]          the check
  docs/check-reasons.py [--top DIR] --list   the formats, one a line
"""
import argparse
import os
import re
import sys

# (file, the calls whose format string is a reason or a message of the tool)
SOURCES = [
    ("libkvmnc/probe.c", ("set_status", "snprintf")),
    ("tools/kvmnc-probe.c", ("fprintf",)),
]
PAGE = "docs/guide/troubleshooting.md"
# A format that only passes another reason through adds nothing to document.
PASS_THROUGH = {"%s"}

STRING = r'"(?:[^"\\\n]|\\.)*"'


def strip_comments(text):
    # Comments only: string literals in this code hold no comment markers.
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def unescape(literal):
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def call_args(text, start):
    """The argument text of the call whose '(' is at @start."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == '"':
            m = re.compile(STRING).match(text, i)
            i = m.end()
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    raise ValueError("unbalanced call at offset %d" % start)


def formats(top):
    """{format: [where, ...]} of every reason format in the sources."""
    out = {}
    for rel, calls in SOURCES:
        with open(os.path.join(top, rel), encoding="utf-8") as f:
            text = strip_comments(f.read())
        for m in re.finditer(r"\b(%s)\s*\(" % "|".join(calls), text):
            if m.group(1) == "set_status" and text[m.start():].startswith("set_status(struct"):
                continue  # the definition
            args = call_args(text, m.end() - 1)
            if m.group(1) == "fprintf" and not args.lstrip().startswith("stderr"):
                continue
            lit = re.search(r"(%s(?:\s*%s)*)" % (STRING, STRING), args)
            if not lit:
                continue  # vsnprintf-style forwarding, no literal
            fmt = "".join(unescape(s) for s in re.findall(STRING, lit.group(1))).rstrip("\n")
            if fmt in PASS_THROUGH:
                continue
            line = text.count("\n", 0, m.start()) + 1
            out.setdefault(fmt, []).append("%s:%d" % (rel, line))
    return out


def entries(top):
    """{format: line} of the page's entries."""
    out = {}
    with open(os.path.join(top, PAGE), encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            m = re.fullmatch(r"#### `(.+)`\n?", line)
            if m:
                out[m.group(1)] = lineno
    return out


def reason_codes(top):
    """TAP lines (ok, text): docs/reasons.tsv, enum kvmnc_reason and probe.c agree."""
    rows = []
    with open(os.path.join(top, "docs/reasons.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            value, name = line.rstrip("\n").split("\t")[:2]
            rows.append((int(value), name))
    with open(os.path.join(top, "include/kvmnc.h"), encoding="utf-8") as f:
        header = strip_comments(f.read())
    body = re.search(r"enum kvmnc_reason \{(.*?)\};", header, re.S).group(1)
    enum = [(int(v), n.lower()) for n, v in re.findall(r"KVMNC_REASON_(\w+) = (\d+)", body)]
    with open(os.path.join(top, "libkvmnc/probe.c"), encoding="utf-8") as f:
        used = set(n.lower() for n in re.findall(r"KVMNC_REASON_(?!MAX\b)(\w+)", strip_comments(f.read())))
    names = set(n for _, n in rows)
    out = [(rows == enum, "docs/reasons.tsv lists enum kvmnc_reason of include/kvmnc.h: %s"
            % ("same names and values" if rows == enum else "%s != %s" % (rows, enum))),
           (sorted(v for v, _ in rows) == list(range(len(rows))),
            "docs/reasons.tsv: values 0..%d, none skipped" % (len(rows) - 1)),
           (used <= names, "libkvmnc/probe.c uses only codes of docs/reasons.tsv%s"
            % ("" if used <= names else ": not %s" % sorted(used - names)))]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--top", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--list", action="store_true")
    args = p.parse_args()

    found = formats(args.top)
    if args.list:
        for fmt in sorted(found):
            print(fmt)
        return 0
    documented = entries(args.top)
    n = bad = 0
    for fmt in sorted(found):
        n += 1
        ok = fmt in documented
        bad += not ok
        print("%s %d - %s: %s" % ("ok" if ok else "not ok", n, ", ".join(found[fmt]), fmt))
        if not ok:
            print("# no entry '#### `%s`' in %s" % (fmt, PAGE))
    for fmt, line in sorted(documented.items(), key=lambda x: x[1]):
        if fmt not in found:
            n += 1
            bad += 1
            print("not ok %d - %s:%d documents a format no source has: %s" % (n, PAGE, line, fmt))
    for ok, text in reason_codes(args.top):
        n += 1
        bad += not ok
        print("%s %d - %s" % ("ok" if ok else "not ok", n, text))
    n += 1
    ok = len(found) > 20
    bad += not ok
    print("%s %d - %d reason formats found in the sources" % ("ok" if ok else "not ok", n,
                                                              len(found)))
    print("1..%d" % n)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
