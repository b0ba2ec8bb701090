# SPDX-License-Identifier: LGPL-2.1-or-later
"""The kernel tier's runner behind tests/kernel/run-qemu.py (see
tests/kernel/README.md, "Layout of the runner"):

  config     the run table, the guest programs, the kernel-log patterns,
             the readers of the list files, live.h's table and runs.txt
  tap        TAP on stdout, progress on stderr
  plan       what a run's guest runs (the plan and the initramfs's files)
  initramfs  the plan file and mkinitramfs.sh; static-ELF check
  emulators  QEMU TCG and Bochs, waiting for and stopping them, boot()
  results    the guest's result stream and console to TAP and summary.json
  runner     one run from kernel build to summary (and --qemu-e2e)
  selftest   --self-test: the runner's own checks, no boot
"""
