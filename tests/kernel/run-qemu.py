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
  stock-7.2-selftests, stock-7.2-vmx-selftests,   Debian's 7.2 image, the whole
  patched-7.2-selftests, patched-7.2-vmx-selftests x86 suite of 7.2 (CI subset
                                                  unless --full)
  patched-7.2-npt, -vmx, -vmx-nosnoop,
  -vmx-shadow, -vmx-tdpmmu0, -debug               the 7.2 series (patches/7.2)
  selftests-compare, vmx-selftests-compare,
  7.2-selftests-compare, 7.2-vmx-selftests-compare
                                                  no boot: per-test results
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
import sys

# Run from any cwd: the package sits next to this script.  No bytecode
# caches: the script runs from the source tree, which builds and CI's
# package stage expect to stay clean.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kvmtier import runner, selftest
from kvmtier.config import COMPARES, QEMU_E2E, RUNS, read_e2e_runs
from kvmtier.results import compare
from kvmtier.tap import Tap


def parser():
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
    ap.add_argument("--full", action="store_true",
                    help="runs of the whole selftest suite (stock-7.2-*selftests,"
                    " patched-7.2-*selftests): run it all, the CI subset's exclusions"
                    " included (also: KVMNC_TIER_FULL=1)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this upstream selftest (repeatable; for debugging)")
    # An option only, no environment default: the Meson kernel suite must
    # not change because of a variable left in someone's shell.
    ap.add_argument("--qemu-e2e", default="", metavar="QEMU_BINARY",
                    help="run only RUN's QEMU end-to-end cases (integrations/qemu/e2e/runs.txt)"
                    " with this static patched QEMU")
    ap.add_argument("--self-test", action="store_true",
                    help="check the runner's own parsers and log checks, no boot")
    return ap


def main():
    ap = parser()
    a = ap.parse_args()
    if a.self_test:
        return selftest.self_test()
    if not a.run or not a.logdir:
        ap.error("--run and --logdir are required")
    if a.cache_dir:
        os.environ["KVMNC_KERNEL_CACHE"] = a.cache_dir
    if a.qemu_e2e and a.run not in read_e2e_runs():
        ap.error(f"--qemu-e2e: run {a.run} has no cases in {QEMU_E2E}/runs.txt")
    logdir = os.path.join(os.path.abspath(a.logdir),
                          a.run + ("-qemu-e2e" if a.qemu_e2e else ""))
    os.makedirs(logdir, exist_ok=True)
    if a.run in COMPARES:
        stock, patched = COMPARES[a.run]
        return compare(Tap(), os.path.abspath(a.logdir), stock, patched,
                       RUNS[stock]["backend"], a.strict)
    return runner.run(a, logdir)


if __name__ == "__main__":
    sys.exit(main())
