# SPDX-License-Identifier: LGPL-2.1-or-later
"""The runner's two output streams: TAP on stdout (what Meson's protocol
'tap' reads, one line per check or guest case) and progress on stderr."""

import sys


class Tap:
    def __init__(self, stream=None):
        self.n = 0
        self.failed = []
        self.stream = stream or sys.stdout

    def line(self, ok, desc, directive=None):
        self.n += 1
        desc = desc.replace("#", "\\#").replace("\n", " ")
        s = f"{'ok' if ok else 'not ok'} {self.n} - {desc}"
        if directive:
            s += " # " + directive.replace("#", "").replace("\n", " ")
        print(s, file=self.stream, flush=True)
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
            print("# " + ln, file=self.stream, flush=True)

    def finish(self):
        print(f"1..{self.n}", file=self.stream, flush=True)

    def exit_status(self, strict):
        """Print the plan; with --strict any failure is exit 1, otherwise
        TAP carries the verdict and the exit is 0."""
        self.finish()
        return 1 if (strict and self.failed) else 0


def log(msg):
    print(f"[kernel-tier] {msg}", file=sys.stderr, flush=True)
