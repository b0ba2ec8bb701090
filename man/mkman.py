#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turn one man/<name>.<section>.scd page into roff through scdoc.

Pages are plain scdoc plus three directives, each alone on a line, that
fill in what must not drift from the code:

  @SYNOPSIS@          the #include and the declarations, copied from
                      include/kvmnc.h, of every name on the page's NAME line
  @SYNOPSIS a b ...@  the same for an explicit list: functions, typedefs,
                      "struct x", "enum x", macros (KVMNC_MEM_* globs)
  @ERRORS@            the rows of docs/errors.md ("Bad input and what it
                      gets") whose call column names a function on the page
  @HISTORY@           the release and symbol version that introduced each
                      function, from libkvmnc/libkvmnc.map
  @ALLPAGES@          a reference to every other page (for libkvmnc(7))

and checks the page: the NAME line lists exactly the page and its aliases,
and a section-3 name is an exported function or a public struct (or the
build stops); a function page has every section a function page needs,
@ERRORS@ exactly when docs/errors.md has rows for it, and @HISTORY@, and
every name(section) reference in bold points at a page that exists (or,
with --strict, the build stops; without, it warns).
"""
import argparse
import fnmatch
import os
import re
import subprocess
import sys

FUNC_SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "RETURN VALUE", "ERRORS",
                 "THREAD SAFETY", "HISTORY", "SEE ALSO"]
STRUCT_SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "HISTORY", "SEE ALSO"]
SYNOPSIS_WIDTH = 76


class PageError(Exception):
    pass


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


class Header:
    """The declarations of include/kvmnc.h, by name."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        bare = strip_comments(self.text)
        self.functions = {}
        for m in re.finditer(r"^KVMNC_API\s+([^;]*?\b(kvmnc_\w+)\s*\([^;]*\))\s*;", bare, re.M):
            self.functions[m.group(2)] = " ".join(m.group(1).split())
        # Bodies keep their comments: they are the field documentation.
        self.blocks = {}
        for m in re.finditer(r"^((struct|enum) (kvmnc_\w+) \{\n.*?^\};)", self.text, re.M | re.S):
            self.blocks[m.group(2) + " " + m.group(3)] = m.group(1)
        self.typedefs = {}
        for m in re.finditer(r"^(typedef [^;]*?\b(kvmnc_\w+)\b[^;]*;)", bare, re.M):
            self.typedefs[m.group(2)] = " ".join(m.group(1).split())
        self.macros = {}
        for m in re.finditer(r"^#define\s+(KVMNC_\w+)(\([^)]*\))?[ \t]+(.*)$", bare, re.M):
            body = m.group(3)
            # A body continued over several lines is machinery (KVMNC_OPTS):
            # the page describes its use; the synopsis shows the signature.
            if body.rstrip().endswith("\\"):
                body = "/* ... */"
            # C++ and C may each define it (KVMNC_OPTS_INIT): show C's, the later one.
            self.macros[m.group(1)] = "#define " + m.group(1) + (m.group(2) or "") + " " + \
                " ".join(body.split())
        self.sz_structs = {n.split()[1] for n, body in self.blocks.items()
                           if n.startswith("struct ") and re.search(r"\{\n\s*size_t sz;", body)}

    def structs(self):
        return {n.split()[1] for n in self.blocks if n.startswith("struct ")}

    def takes_handle(self, fn):
        return re.search(r"\(.*\bstruct kvmnc \*", self.functions[fn]) is not None

    def takes_sz_struct(self, fn):
        return any(re.search(r"\bstruct %s \*" % s, self.functions[fn]) for s in self.sz_structs)


def read_map(path):
    """{symbol: node} in the order the nodes appear."""
    with open(path, encoding="utf-8") as f:
        text = strip_comments(f.read())
    symbols = {}
    for node in re.finditer(r"(LIBKVMNC_[0-9.]+)\s*\{(.*?)\}", text, re.S):
        body = re.sub(r"\blocal:.*", "", node.group(2), flags=re.S)
        for sym in re.findall(r"\b(kvmnc_\w+)\s*;", body):
            symbols.setdefault(sym, node.group(1))
    return symbols


def scd_escape(text):
    return re.sub(r"([\\*_])", r"\\\1", text)


def md_to_scd(cell):
    """docs/errors.md cell text (code spans, plain words) to scdoc."""
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", cell)):
        if i % 2:
            out.append("*" + scd_escape(part) + "*")
        else:
            out.append(scd_escape(part))
    return "".join(out).strip()


def format_prototype(decl):
    if len(decl) < SYNOPSIS_WIDTH:
        return decl + ";"
    open_at = decl.index("(")
    params = [p.strip() for p in decl[open_at + 1:-1].split(",")]
    lines, line = [], decl[:open_at + 1]
    for i, p in enumerate(params):
        piece = p + ("," if i < len(params) - 1 else ")")
        if len(line) + len(piece) + 1 > SYNOPSIS_WIDTH and not line.endswith("("):
            lines.append(line.rstrip())
            line = " " * (open_at + 1)
        line += piece + " "
    lines.append(line.rstrip())
    return "\n".join(lines) + ";"


def synopsis(header, items):
    blocks = []
    protos = []
    for item in items:
        if item in header.functions:
            protos.append(format_prototype(header.functions[item]))
            continue
        if protos:
            blocks.append("\n".join(protos))
            protos = []
        if item in header.blocks:
            blocks.append(header.blocks[item].expandtabs(4))
        elif "struct " + item in header.blocks:
            blocks.append(header.blocks["struct " + item].expandtabs(4))
        elif item in header.typedefs:
            blocks.append(header.typedefs[item])
        elif any(fnmatch.fnmatchcase(m, item) for m in header.macros):
            blocks.append("\n".join(header.macros[m] for m in header.macros
                                    if fnmatch.fnmatchcase(m, item)))
        else:
            raise PageError("@SYNOPSIS@: %s is not declared in include/kvmnc.h" % item)
    if protos:
        blocks.append("\n".join(protos))
    body = "#include <kvmnc.h>\n\n" + "\n\n".join(blocks)
    # Inside a literal block scdoc still reads backslashes.
    body = body.replace("\\", "\\\\")
    return "```\n" + body + "\n```\n\nCompile and link with *pkg-config --cflags --libs libkvmnc*."


class ErrorTable:
    """The bad-input table of docs/errors.md, each row with the calls it covers."""

    GROUPS = {
        "every handle call": "takes_handle",
        "every struct-taking call": "takes_sz_struct",
    }

    def __init__(self, path, header, exported):
        self.rows = []
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        try:
            start = lines.index("## Bad input and what it gets")
        except ValueError:
            raise PageError("%s: no '## Bad input and what it gets' section" % path)
        previous = None
        seen_header = False
        for lineno, line in enumerate(lines[start + 1:], start + 2):
            if line.startswith("## "):
                break
            if not line.startswith("|"):
                continue
            # Markdown escapes a pipe inside a cell as \|.
            row = line.strip()[1:]
            if row.endswith("|") and not row.endswith("\\|"):
                row = row[:-1]
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]
            if len(cells) != 4:
                raise PageError("%s:%d: want 4 columns (input | call | errno | test), got %d"
                                % (path, lineno, len(cells)))
            if not seen_header:
                seen_header = True
                continue
            if set(cells[0]) <= set("-: "):
                continue
            calls = set()
            for item in (i.strip() for i in cells[1].split(",")):
                named = re.findall(r"`(kvmnc_\w+)", item)
                if named:
                    calls.update(named)
                elif item == "same" and previous is not None:
                    calls.update(previous)
                elif item in self.GROUPS:
                    pred = getattr(header, self.GROUPS[item])
                    calls.update(fn for fn in header.functions if pred(fn))
                else:
                    raise PageError("%s:%d: call '%s' is not a `kvmnc_...` name, 'same', or one "
                                    "of: %s" % (path, lineno, item, ", ".join(self.GROUPS)))
            unknown = sorted(calls - set(exported))
            if unknown:
                raise PageError("%s:%d: %s not in libkvmnc.map" % (path, lineno, ", ".join(unknown)))
            previous = calls
            self.rows.append((cells[0], calls, cells[2]))

    def for_functions(self, functions):
        return [r for r in self.rows if r[1] & set(functions)]

    def scdoc(self, functions):
        out = ["[[ *Return value*", ":< *Condition*"]
        for cond, calls, errno in self.for_functions(functions):
            text = md_to_scd(cond)
            only = sorted(calls & set(functions))
            if len(only) < len(functions):
                text += " (" + ", ".join("*%s*()" % scd_escape(f) for f in only) + " only)"
            out.append("|  " + md_to_scd(errno))
            out.append(":  " + text)
        return "\n".join(out)


def history(functions, symbols):
    by_node = {}
    for fn in functions:
        by_node.setdefault(symbols[fn], []).append(fn)
    lines = []
    for node, fns in by_node.items():
        release = node[len("LIBKVMNC_"):]
        names = ", ".join("*%s*()" % scd_escape(f) for f in fns)
        lines.append("%s: since libkvmnc %s (symbol version *%s*)." % (names, release,
                                                                      scd_escape(node)))
    return "\n\n".join(lines)


def page_sections(text):
    return re.findall(r"^# (.+)$", text, re.M)


def name_line(text):
    m = re.search(r"^# NAME\n\n(.+)$", text, re.M)
    if not m or " - " not in m.group(1):
        raise PageError("no NAME line of the form 'name[, name...] - description'")
    return [n.strip().replace("\\_", "_") for n in m.group(1).split(" - ")[0].split(",")]


def build(args):
    with open(args.input, encoding="utf-8") as f:
        lines = f.read().splitlines()
    # scdoc wants the preamble first: drop the SPDX comment above it.
    while lines and lines[0].startswith("; "):
        lines.pop(0)
    text = "\n".join(lines) + "\n"

    base = os.path.basename(args.output)
    page, section = base.rsplit(".", 1)
    m = re.match(r"^(\S+)\((\w+)\)", text)
    if not m or (m.group(1), m.group(2)) != (page, section):
        raise PageError("preamble must start with %s(%s)" % (page, section))
    text = text.replace("@VERSION@", args.version)

    header = Header(args.header)
    symbols = read_map(args.map)
    names = name_line(text)
    want = [page] + [a for a in args.aliases.split(",") if a]
    if sorted(names) != sorted(want):
        raise PageError("NAME lists %s; man/meson.build installs it as %s"
                        % (", ".join(names), ", ".join(want)))

    # What a page can be built with but must not be installed with (-Dman=enabled).
    drift = []
    functions, structs = [], []
    if section == "3":
        for n in names:
            if n in symbols and n in header.functions:
                functions.append(n)
            elif n in header.structs():
                structs.append(n)
            else:
                raise PageError("%s is neither a function in libkvmnc.map and include/kvmnc.h "
                                "nor a struct in include/kvmnc.h" % n)
        if functions and structs:
            raise PageError("a page documents functions or structs, not both")
        required = FUNC_SECTIONS if functions else STRUCT_SECTIONS
        missing = [s for s in required if s not in page_sections(text)]
        if missing:
            drift.append("missing sections: " + ", ".join(missing))

    errors = ErrorTable(args.errors, header, symbols)
    has_rows = bool(functions and errors.for_functions(functions))
    if functions and has_rows and "@ERRORS@" not in text:
        drift.append("docs/errors.md has rows for %s: the page needs @ERRORS@"
                     % ", ".join(functions))
    if functions and not has_rows and "@ERRORS@" in text:
        drift.append("@ERRORS@, but docs/errors.md has no rows for this page")
    if functions and "@HISTORY@" not in text:
        drift.append("a function page needs @HISTORY@")

    out = []
    for line in text.splitlines():
        d = re.fullmatch(r"@SYNOPSIS(?: ([^@]+))?@", line)
        if d:
            if d.group(1):
                items = re.findall(r"(?:(?:struct|enum) )?[\w*]+", d.group(1))
            else:
                items = ["struct " + n if n in structs else n for n in names]
            out.append(synopsis(header, items))
        elif line == "@ERRORS@":
            if not functions:
                raise PageError("@ERRORS@ is for function pages")
            if has_rows:
                out.append(errors.scdoc(functions))
        elif line == "@ALLPAGES@":
            others = [p for p in args.primary.split(",") if p and p != "%s(%s)" % (page, section)]
            others.sort(key=lambda p: (p[-2], p))
            out.append(",\n".join("*%s*(%s)" % (scd_escape(p[:-3]), p[-2]) for p in others))
        elif line == "@HISTORY@":
            if not functions:
                raise PageError("@HISTORY@ is for function pages")
            out.append(history(functions, symbols))
        elif re.match(r"@[A-Z]", line):
            raise PageError("unknown directive: " + line)
        else:
            out.append(line)
    text = "\n".join(out) + "\n"

    known = set(args.pages.split(","))
    for ref in re.findall(r"\*((?:kvmnc|libkvmnc)[\w\\-]*)\*\((\d)\)", text):
        name = ref[0].replace("\\_", "_") + "(" + ref[1] + ")"
        if name not in known:
            drift.append("reference to %s, which has no page" % name)
    if drift and args.strict:
        raise PageError("; ".join(drift))
    for d in drift:
        print("%s: warning: %s" % (args.input, d), file=sys.stderr)

    res = subprocess.run([args.scdoc], input=text.encode(), capture_output=True)
    if res.returncode != 0:
        raise PageError("scdoc: " + res.stderr.decode().strip())
    # scdoc asks for no hyphenation and ragged-right text before .TH, which
    # the man macros reset; identifiers such as KVM_DEV_TYPE_VIRTIO must not
    # be hyphenated, so ask again after it.
    roff = re.sub(rb"^(\.TH .*\n)", rb"\1.nh\n.ad l\n", res.stdout, count=1, flags=re.M)
    with open(args.output, "wb") as f:
        f.write(roff)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--header", required=True)
    p.add_argument("--map", required=True)
    p.add_argument("--errors", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--scdoc", default="scdoc")
    p.add_argument("--pages", default="", help="every installed name(section), comma-separated")
    p.add_argument("--primary", default="", help="every page's own name(section), comma-separated")
    p.add_argument("--strict", action=argparse.BooleanOptionalAction, default=False,
                   help="fail on a page that has drifted from the code, not only warn")
    p.add_argument("--aliases", default="", help="the other names this page is installed as")
    p.add_argument("input")
    p.add_argument("output")
    args = p.parse_args()
    try:
        build(args)
    except PageError as e:
        print("%s: %s" % (args.input, e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
