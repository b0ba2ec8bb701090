# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the kernel tier runs and what it reads: the run table (RUNS, and
COMPARES for the stock/patched comparisons), the guest programs a run can
take, the kernel-log patterns every boot is checked against, and the
readers of the tier's other inputs: the selftest lists, the deny-list,
the expectation table of tests/live/live.h and the QEMU end-to-end cases
of integrations/qemu/e2e/runs.txt."""

import os
import re

# The tier's scripts and list files sit next to this package.
TIER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIVE_H = os.path.join(TIER_DIR, "..", "live", "live.h")
QEMU_E2E = os.path.join(TIER_DIR, "..", "..", "integrations", "qemu", "e2e")

LIBRARY_TESTS = ["live-probe", "live-handle", "live-memslot", "live-device"]
PROBE = "kvmnc-probe"
# The Rust example VMM (bindings/rust/kvmnc-vmm-example): crosvm's blob flow
# on the Rust crates, given to the tier when cargo built it statically.
RUST_VMM = "kvmnc-vmm-example"
# Library programs whose own TAP lines become the run's (each SPTE check).
EXPANDED = ("live-memtype", RUST_VMM)
SERIES_SELFTESTS = ["virtio_device_test", "noncoherent_dma_memslot_test",
                    "noncoherent_dma_memtype_test"]
KUNIT_SUITE = "kvm_x86_memtype"
KSFT_SKIP = 4
VMX_CPU = "corei7_haswell_4770"

# kernel: a distribution's own kernel (distro-kernels.txt: fetched by exact
# version, its KVM modules loaded from the initramfs) to boot; without it
# the run boots its flavour's kernel.  flavour: build-kernel.sh flavour,
# for the kernel and for the selftests (stock: selftests only, of the base
# the debian-6.12 image is built from); backend: qemu | bochs; cpu: the
# model; smp: guest CPUs; cmdline: extra kernel arguments; modparams:
# {module: "param=value ..."} for insmod; expect: the live.h row
# (KVMNC_EXPECT; also makes kvm-smoke run); library: live-* + kvmnc-probe;
# series: the series' selftests; kunit: the series' KUnit suite;
# must_pass: guest programs whose skip is a failure in this run;
# upstream: selftest list file; debug: lockdep + KASAN must be active.
#
# "stock" is Debian's own 6.12 image of the very source patches/BASE pins
# (what a Debian 12 user with the 6.12 kernel runs); debian-6.1 is the
# kernel Debian 12 installs by default, debian-7.2 sid's (upstream 7.2).
STOCK = "debian-6.12"
# Bochs's Haswell model sets CPUID.1's HT flag with a logical-processor
# count (EBX[23:16]) smaller than leaf 4's core count, and the 6.12 and 7.2
# images' parse_legacy() (topology_common.c) WARNs on that at boot (6.1
# predates that code). Clearing HT skips the legacy SMT decoding; KVM never
# reads it.
# The tier's own kernels (no SMP) never decode the topology.
BOCHS_DISTRO_CMDLINE = "clearcpuid=ht"
RUNS = {
    "stock-npt": dict(kernel=STOCK, backend="qemu", cpu="EPYC", expect="stock-npt",
                      library=True),
    "patched-npt": dict(flavour="patched", backend="qemu", cpu="EPYC", expect="patched-npt",
                        library=True, series=True, kunit=True),
    "patched-shadow": dict(flavour="patched", backend="qemu", cpu="qemu64,+svm",
                           expect="patched-shadow", library=True, series=True),
    "stock-selftests": dict(kernel=STOCK, flavour="stock", backend="qemu", cpu="EPYC",
                            upstream="selftests.list"),
    "patched-selftests": dict(flavour="patched", backend="qemu", cpu="EPYC",
                              upstream="selftests.list"),
    # The series' concurrency proof: two CPUs, lockdep and KASAN, under
    # which the library's live tests (live-concurrency: threads enabling
    # devices and closing handles at once) run too.
    "patched-debug": dict(flavour="patched-debug", backend="qemu", cpu="EPYC", smp=2,
                          expect="patched-npt", library=True, series=True, kunit=True,
                          debug=True, must_pass=["virtio_device_test"]),
    "debian-6.1-npt": dict(kernel="debian-6.1", backend="qemu", cpu="EPYC",
                           expect="debian-6.1-npt", library=True),
    "debian-7.2-npt": dict(kernel="debian-7.2", backend="qemu", cpu="EPYC",
                           expect="debian-7.2-npt", library=True),
    # Intel VMX with EPT under Bochs; live-memtype reads the SPTEs' memory type.
    "stock-vmx": dict(kernel=STOCK, backend="bochs", cpu=VMX_CPU, expect="stock-vmx",
                      cmdline=BOCHS_DISTRO_CMDLINE, library=True,
                      must_pass=["live-memtype", RUST_VMM]),
    "patched-vmx": dict(flavour="patched", backend="bochs", cpu=VMX_CPU, expect="patched-vmx",
                        library=True, series=True, kunit=True,
                        must_pass=["live-memtype", RUST_VMM, "noncoherent_dma_memtype_test"]),
    "patched-vmx-nosnoop": dict(flavour="patched", backend="bochs", cpu=VMX_CPU,
                                cmdline="clearcpuid=ss", expect="patched-vmx-nosnoop",
                                library=True, series=True, must_pass=["live-memtype"]),
    "patched-vmx-shadow": dict(flavour="patched", backend="bochs", cpu=VMX_CPU,
                               cmdline="kvm_intel.ept=0", expect="patched-vmx-shadow",
                               library=True, series=True, must_pass=["live-memtype"]),
    "debian-6.1-vmx": dict(kernel="debian-6.1", backend="bochs", cpu=VMX_CPU,
                           cmdline=BOCHS_DISTRO_CMDLINE, expect="debian-6.1-vmx", library=True,
                           must_pass=["live-memtype"]),
    "debian-7.2-vmx": dict(kernel="debian-7.2", backend="bochs", cpu=VMX_CPU,
                           cmdline=BOCHS_DISTRO_CMDLINE, expect="debian-7.2-vmx", library=True,
                           must_pass=["live-memtype", RUST_VMM]),
    "stock-vmx-selftests": dict(kernel=STOCK, flavour="stock", backend="bochs", cpu=VMX_CPU,
                                cmdline=BOCHS_DISTRO_CMDLINE, upstream="selftests-vmx.list"),
    "patched-vmx-selftests": dict(flavour="patched", backend="bochs", cpu=VMX_CPU,
                                  upstream="selftests-vmx.list"),
}
# The vendor module a backend's CPU takes (fetch-distro-kernel.sh's roles).
VENDOR = {"qemu": "amd", "bochs": "intel"}
COMPARES = {
    "selftests-compare": ("stock-selftests", "patched-selftests"),
    "vmx-selftests-compare": ("stock-vmx-selftests", "patched-vmx-selftests"),
}

# What the guest kernel log must never show.  Lockdep and RCU reports start
# with "WARNING:" and KASAN/KFENCE ones with "BUG:", but they are listed on
# their own too, so that a changed prefix still fails the run.
BAD_LOG = re.compile(r"(WARNING:|BUG:|Oops|Kernel panic|general protection fault"
                     r"|UBSAN:|KASAN:|KFENCE:|kernel BUG"
                     r"|possible circular locking|possible recursive locking"
                     r"|inconsistent lock state|possible irq lock inversion"
                     r"|suspicious RCU usage|DEBUG_LOCKS_WARN_ON|lockdep is turned off"
                     r"|INFO: task \S+ blocked for more than|rcu_\w+ detected stalls"
                     r"|sleeping function called from invalid context)")
# Messages a distribution kernel prints under an emulator that carry one of
# BAD_LOG's words but report no kernel problem: each the exact line (after
# the timestamp), the backends it is expected on, and why.  A matching line
# is left out of the BAD_LOG scan and shown as a diagnostic; anything else,
# a WARN trace included, still fails the run.
KNOWN_LOG = [
    (re.compile(r"Speculative Return Stack Overflow: WARNING: See "
                r"https://kernel\.org/doc/html/latest/admin-guide/hw-vuln/srso\.html"
                r" for mitigation options\."),
     ("qemu",),
     "a pr_warn of srso_select_mitigation(): QEMU's EPYC model has the SRSO bug bit and no"
     " microcode fix, and the cloud kernels enable the mitigation; a message, not a trace"),
]
# Proof that the debug flavour's checkers are really on.
DEBUG_BANNERS = [
    ("lockdep (PROVE_LOCKING) is active", re.compile(r"Lock dependency validator")),
    ("KASAN is active", re.compile(r"KernelAddressSanitizer initialized")),
]


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


def read_denylist(backend):
    """{name: reason} for this backend: an entry whose reason starts with
    @qemu or @bochs applies to that backend only."""
    deny = {}
    for name, rest in read_list(os.path.join(TIER_DIR, "selftests-denylist.txt")):
        m = re.match(r"^@(\w+)\s+(.*)$", rest)
        if m:
            if m.group(1) != backend:
                continue
            rest = m.group(2)
        deny[name] = rest
    return deny


def load_expectations(path=LIVE_H):
    """The rows of t_expectations in tests/live/live.h, as {name: dict}:
    native, memslot_flag, virtio_device, guest_pat_quirk (bool) and
    recommended (mechanism name or None), as kvmnc-probe --json spells them."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"t_expectations\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if not m:
        raise ValueError(f"{path}: no t_expectations[] initializer")
    rows = {}
    for r in re.finditer(r'\{\s*"([^"]+)"\s*,([^{}]*)\}', m.group(1)):
        vals = [v.strip() for v in r.group(2).split(",")]
        if len(vals) < 5 or not all(v in ("0", "1") for v in vals[:4]):
            raise ValueError(f"{path}: cannot read row {r.group(1)!r}: {vals}")
        mech = re.fullmatch(r"KVMNC_MECH_(\w+)", vals[4])
        if not mech:
            raise ValueError(f"{path}: row {r.group(1)!r}: recommended {vals[4]!r}")
        rec = mech.group(1).lower()
        rows[r.group(1)] = {
            "native": vals[0] == "1", "memslot_flag": vals[1] == "1",
            "virtio_device": vals[2] == "1", "guest_pat_quirk": vals[3] == "1",
            "recommended": None if rec == "none" else rec,
        }
    return rows


def e2e_runs_file():
    """integrations/qemu/e2e/runs.txt for the QEMU 7.2 series, runs-SERIES.txt
    for another one (KVMNC_QEMU_SERIES, as for integrations/qemu/fetch-build.sh)."""
    series = os.environ.get("KVMNC_QEMU_SERIES", "7.2")
    return os.path.join(QEMU_E2E, "runs.txt" if series == "7.2" else f"runs-{series}.txt")


def read_e2e_runs(path=None):
    """{run: [(case, timeout, args)]} from integrations/qemu/e2e/runs.txt
    (RUN CASE TIMEOUT ARGS lines), or the file e2e_runs_file() names."""
    path = path or e2e_runs_file()
    out = {}
    for run, rest in read_list(path):
        parts = rest.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"{path}: bad line for {run}: {rest!r} (want RUN CASE TIMEOUT ARGS)")
        out.setdefault(run, []).append((parts[0], int(parts[1]),
                                        parts[2].strip() if len(parts) > 2 else ""))
    return out
