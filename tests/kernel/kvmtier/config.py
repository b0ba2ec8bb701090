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
# The kernel series a run builds (build-kernel.sh -S): patches/<series>/.
DEFAULT_PATCHES = "6.12"
# A series' selftests are found in its selftests build
# (series_selftest_names()), by these prefixes; must_pass may name one by
# its file name.
SERIES_PREFIXES = ("noncoherent", "nc_")
# upstream=ALL: every selftest the base's selftests Makefile builds for x86
# (what build-kernel.sh published), less the series' own; the CI subset
# leaves out the exclusions of the run's `suite` file unless the full suite
# is asked for (run-qemu.py --full, or KVMNC_TIER_FULL=1 in its
# environment).
ALL = "all"
FULL_ENV = "KVMNC_TIER_FULL"
# Guest timeout (s) of a selftest of the whole suite the suite file does
# not set: the guest's init kills it (SIGKILL) after that long.
SUITE_TIMEOUT = 120
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
# upstream: selftest list file, or ALL (with suite: the file of the CI
# subset's exclusions, per-test timeouts and arguments); debug: lockdep +
# KASAN must be active; patches: the series (patches/<patches>/, default
# DEFAULT_PATCHES) the flavour builds; must_pass_series: every series
# selftest found must run for real; must_run_cases: {series selftest:
# [case-name fragments]} whose kselftest cases must run, not skip; params:
# {sysfs file below /sys/module: value} the guest must read (a module
# parameter given on the kernel command line took effect); megs: Bochs
# guest memory (MiB, default 1024).
#
# "stock" is Debian's own 6.12 image of the very source patches/6.12/BASE pins
# (what a Debian 12 user with the 6.12 kernel runs); debian-6.1 is the
# kernel Debian 12 installs by default, debian-7.2 sid's (upstream 7.2).
STOCK = "debian-6.12"
# The series selftest's page-migration case, which needs two NUMA nodes.
MOVE_PAGES = {"noncoherent_dma_test": ["4KiB: move_pages"]}
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
                        library=True, series=True),
    "patched-shadow": dict(flavour="patched", backend="qemu", cpu="qemu64,+svm",
                           expect="patched-shadow", library=True, series=True),
    "stock-selftests": dict(kernel=STOCK, flavour="stock", backend="qemu", cpu="EPYC",
                            upstream="selftests.list"),
    "patched-selftests": dict(flavour="patched", backend="qemu", cpu="EPYC",
                              upstream="selftests.list"),
    # The series' concurrency proof: two CPUs, lockdep and KASAN, under
    # which the library's live tests (live-concurrency: threads enabling
    # devices and closing handles at once) run too.
    # numa=fake=2 (debug.fragment has NUMA_EMU): a second node for the
    # selftest's move_pages() case.
    "patched-debug": dict(flavour="patched-debug", backend="qemu", cpu="EPYC", smp=2,
                          expect="patched-npt", library=True, series=True,
                          debug=True, must_pass=["noncoherent_dma_test"],
                          cmdline="numa=fake=2", must_run_cases=MOVE_PAGES),
    "debian-6.1-npt": dict(kernel="debian-6.1", backend="qemu", cpu="EPYC",
                           expect="debian-6.1-npt", library=True),
    "debian-7.2-npt": dict(kernel="debian-7.2", backend="qemu", cpu="EPYC",
                           expect="debian-7.2-npt", library=True),
    # Intel VMX with EPT under Bochs; live-memtype reads the SPTEs' memory type.
    "stock-vmx": dict(kernel=STOCK, backend="bochs", cpu=VMX_CPU, expect="stock-vmx",
                      cmdline=BOCHS_DISTRO_CMDLINE, library=True,
                      must_pass=["live-memtype", RUST_VMM]),
    "patched-vmx": dict(flavour="patched", backend="bochs", cpu=VMX_CPU, expect="patched-vmx",
                        library=True, series=True,
                        must_pass=["live-memtype", RUST_VMM, "noncoherent_dma_test"]),
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
# The 7.2 series (patches/7.2/): Debian's 7.2 image for stock (the
# debian-7.2 runs' kernel and modules) with the whole x86 selftest suite of
# the same source, and our builds of linux-source-7.2 with the series.
# Until patches/7.2 holds a 0001+ patch the patched-7.2 runs skip.
STOCK_72 = "debian-7.2"
SUITE_72 = "selftests-7.2.txt"
# The suite's 102 static programs make a 183 MiB initramfs, which stays in
# the guest's memory: with Bochs's default 1 GiB, demand_paging_test's
# mmap() failed with ENOMEM (QEMU's guests have 2 GiB).
SUITE_MEGS = 2048
_P72 = dict(flavour="patched", patches="7.2")
RUNS.update({
    "stock-7.2-selftests": dict(kernel=STOCK_72, flavour="stock", patches="7.2", backend="qemu",
                                cpu="EPYC", upstream=ALL, suite=SUITE_72),
    "stock-7.2-vmx-selftests": dict(kernel=STOCK_72, flavour="stock", patches="7.2",
                                    backend="bochs", cpu=VMX_CPU, cmdline=BOCHS_DISTRO_CMDLINE,
                                    upstream=ALL, suite=SUITE_72, megs=SUITE_MEGS),
    "patched-7.2-npt": dict(_P72, backend="qemu", cpu="EPYC", expect="patched-npt",
                            library=True, series=True),
    "patched-7.2-vmx": dict(_P72, backend="bochs", cpu=VMX_CPU, expect="patched-vmx",
                            library=True, series=True, must_pass_series=True,
                            must_pass=["live-memtype", RUST_VMM]),
    "patched-7.2-vmx-nosnoop": dict(_P72, backend="bochs", cpu=VMX_CPU, cmdline="clearcpuid=ss",
                                    expect="patched-vmx-nosnoop", library=True, series=True,
                                    must_pass=["live-memtype"]),
    "patched-7.2-vmx-shadow": dict(_P72, backend="bochs", cpu=VMX_CPU, cmdline="kvm_intel.ept=0",
                                   expect="patched-vmx-shadow", library=True, series=True,
                                   must_pass=["live-memtype"]),
    # The shadow-MMU-for-TDP path (KVM's legacy TDP MMU) with EPT on: kvm is
    # built in, so the parameter is given on the command line, and the run
    # fails unless the guest reads it back.
    "patched-7.2-vmx-tdpmmu0": dict(_P72, backend="bochs", cpu=VMX_CPU, cmdline="kvm.tdp_mmu=N",
                                    expect="patched-vmx", library=True, series=True,
                                    must_pass=["live-memtype"],
                                    params={"kvm/parameters/tdp_mmu": "N"}),
    "patched-7.2-selftests": dict(_P72, backend="qemu", cpu="EPYC", upstream=ALL, suite=SUITE_72,
                                  series=True),
    "patched-7.2-vmx-selftests": dict(_P72, backend="bochs", cpu=VMX_CPU, upstream=ALL,
                                      suite=SUITE_72, series=True, megs=SUITE_MEGS),
    "patched-7.2-debug": dict(flavour="patched-debug", patches="7.2", backend="qemu", cpu="EPYC",
                              smp=2, expect="patched-npt", library=True, series=True,
                              debug=True, must_pass=["noncoherent_dma_test"],
                              cmdline="numa=fake=2", must_run_cases=MOVE_PAGES),
})
# The vendor module a backend's CPU takes (fetch-distro-kernel.sh's roles).
VENDOR = {"qemu": "amd", "bochs": "intel"}
COMPARES = {
    "selftests-compare": ("stock-selftests", "patched-selftests"),
    "vmx-selftests-compare": ("stock-vmx-selftests", "patched-vmx-selftests"),
    "7.2-selftests-compare": ("stock-7.2-selftests", "patched-7.2-selftests"),
    "7.2-vmx-selftests-compare": ("stock-7.2-vmx-selftests", "patched-7.2-vmx-selftests"),
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


def is_series_selftest(rel):
    """Whether a selftest (path below selftests/) is the series' own by
    name: its basename starts with one of SERIES_PREFIXES."""
    return os.path.basename(rel).startswith(SERIES_PREFIXES)


def published_selftests(kdir):
    """Every selftest a build-kernel.sh output holds, as paths below its
    selftests/ (exactly what the base's selftests Makefile builds), sorted."""
    base = os.path.join(kdir, "selftests")
    out = []
    for root, _, fnames in os.walk(base):
        for f in fnames:
            p = os.path.join(root, f)
            if os.access(p, os.X_OK):
                out.append(os.path.relpath(p, base))
    return sorted(out)


def read_suite(path, backend):
    """The suite file of an upstream=ALL run, the entries for `backend`
    only: {name: {"exclude": reason or None, "timeout": s or None,
    "args": str}} from lines NAME [@qemu|@bochs] exclude REASON and
    NAME [@qemu|@bochs] timeout=N [ARGS] (a test may have one of each: the
    timeout then applies to the full suite)."""
    out = {}
    for name, rest in read_list(path):
        m = re.match(r"^@(\w+)\s+(.*)$", rest)
        if m:
            if m.group(1) != backend:
                continue
            rest = m.group(2)
        e = out.setdefault(name, {"exclude": None, "timeout": None, "args": ""})
        word, _, more = rest.partition(" ")
        if word == "exclude":
            if not more.strip():
                raise ValueError(f"{path}: {name}: an exclusion needs its reason")
            e["exclude"] = more.strip()
        elif re.fullmatch(r"timeout=\d+", word):
            e["timeout"], e["args"] = int(word.split("=")[1]), more.strip()
        else:
            raise ValueError(f"{path}: {name}: want 'exclude REASON' or 'timeout=N [ARGS]',"
                             f" got {rest!r}")
    return out
