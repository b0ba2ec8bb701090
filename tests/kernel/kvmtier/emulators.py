# SPDX-License-Identifier: LGPL-2.1-or-later
"""The two emulator backends and the boot they share.

  qemu   qemu-system-x86_64 -accel tcg: AMD SVM (NPT or shadow paging)
  bochs  Bochs 2.7: Intel VMX with EPT, booted from an isolinux ISO

Both put the guest kernel's console on the first serial port and the
framed results on the second, each in a file of the run's log dir; boot()
packs the initramfs, starts the run's backend, waits for the guest (or
stops it: Bochs cannot power the guest off) and reports whether it reached
init and finished its plan."""

import os
import pty
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tty

from . import initramfs
from .config import VENDOR
from .results import parse_results
from .tap import log

GUEST_RESTART = b"reboot: Restarting system"
LOST_GRACE = 30.0
ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin"
LDLINUX_C32 = "/usr/lib/syslinux/modules/bios/ldlinux.c32"


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


def wait_guest(proc, results, timeout, grace=3.0, polite=True, console=None,
               lost_grace=LOST_GRACE):
    """Wait for the emulator to exit, or for KVMNC-DONE on the results port
    (then give the console `grace` seconds and stop it), or for the
    timeout.  With `console`: a guest that restarted without KVMNC-DONE
    arriving within LOST_GRACE seconds has lost its results (Bochs does not
    exit on the restart): stop then rather than at the timeout.  Returns
    {seconds, boot (seconds until the guest's init ran), timed_out, stopped
    (after KVMNC-DONE), lost (restarted without it)}."""
    t0 = time.monotonic()
    done_at = restart_at = None
    out = {"boot": None, "timed_out": False, "stopped": False, "lost": False}
    while True:
        try:
            proc.wait(timeout=0.5)
            return dict(out, seconds=time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if done_at is None:
            try:
                with open(results, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if out["boot"] is None and b"KVMNC-INIT" in data:
                out["boot"] = round(now - t0, 1)
            if b"KVMNC-DONE" in data:
                done_at = now
        if done_at is None and console and restart_at is None:
            try:
                with open(console, "rb") as f:
                    if GUEST_RESTART in f.read():
                        restart_at = now
            except FileNotFoundError:
                pass
        if done_at is None and restart_at is not None and now - restart_at >= lost_grace:
            stop(proc, polite)
            return dict(out, seconds=now - t0, lost=True)
        if done_at is not None and now - done_at >= grace:
            stop(proc, polite)
            return dict(out, seconds=done_at - t0, stopped=True)
        if now - t0 >= timeout:
            stop(proc, polite)
            return dict(out, seconds=now - t0, timed_out=True)


def stop(proc, polite=True):
    """End an emulator we started (its own process group), politely first
    unless it ignores SIGTERM anyway (Bochs)."""
    sigs = ((signal.SIGTERM, 5), (signal.SIGKILL, 30)) if polite else ((signal.SIGKILL, 30),)
    for sig, wait in sigs:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tcg_accel(smp):
    """-accel for a guest of `smp` CPUs.  Several: one TCG thread for all of
    them.  Under multi-threaded TCG (QEMU 7.2) the patched-debug kernel took
    an int3 Oops at a call site text_poke_bp() was patching (ttwu_do_wakeup,
    while the selftests enabled a tracepoint), in one of four runs of the
    same kernel; single-threaded TCG still interleaves the two vCPUs, so the
    close/SET_ATTR race runs, but no vCPU runs code another one rewrote."""
    return "tcg" if str(smp) == "1" else "tcg,thread=single"


def save_cmdline(logdir, cmd):
    with open(os.path.join(logdir, "emulator-cmdline"), "w", encoding="utf-8") as f:
        f.write(shlex.join(cmd) + "\n")


class Qemu:
    """qemu-system-x86_64 -accel tcg: -kernel/-initrd, serial to files; the
    guest's reboot ends QEMU (-no-reboot)."""
    name = "qemu"

    def __init__(self, cfg):
        self.cfg = cfg

    def cmdline(self, run):
        return (f"console=ttyS0,115200 panic=-1 loglevel=7 tsc_early_khz={host_tsc_khz()}"
                f" kvmnc.run={run} {self.cfg.get('cmdline', '')}").strip()

    def command(self, run, kdir, initrd, console, results):
        smp = str(self.cfg.get("smp", os.environ.get("KVMNC_QEMU_SMP", "1")))
        return [os.environ.get("KVMNC_QEMU", "qemu-system-x86_64"),
                "-accel", tcg_accel(smp), "-cpu", self.cfg["cpu"],
                "-m", os.environ.get("KVMNC_QEMU_MEM", "2G"),
                "-smp", smp, "-nodefaults", "-no-user-config", "-display", "none",
                "-no-reboot", "-monitor", "none",
                "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
                "-chardev", f"file,id=res,path={results}", "-serial", "chardev:res",
                "-kernel", os.path.join(kdir, "bzImage"), "-initrd", initrd,
                "-append", self.cmdline(run)]

    def launch(self, run, kdir, initrd, console, results, logdir, timeout):
        cmd = self.command(run, kdir, initrd, console, results)
        save_cmdline(logdir, cmd)
        log(f"{run}: booting: {shlex.join(cmd)}")
        with open(os.path.join(logdir, "qemu.stderr"), "w", encoding="utf-8") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True)
            w = wait_guest(proc, results, timeout)
        return dict(w, exit=proc.returncode)


class PtyPump:
    """A pseudo-terminal whose output we copy to a file as it comes.  Bochs
    writes its serial ports in "file" mode through stdio buffers that it
    flushes only at exit, and it does not exit after the guest's reboot; in
    "term" mode it write()s each byte to the tty we hand it."""

    def __init__(self, path):
        # Our slave fd stays open until close(): with none open, reading the
        # master gives EIO, before Bochs has even opened the device.
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.name = os.ttyname(self.slave)
        self.out = open(path, "wb")
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the other side is gone
                return
            if not data:
                return
            self.out.write(data)
            self.out.flush()

    def close(self):
        """After the emulator is gone: EIO ends the copy, then the rest goes."""
        os.close(self.slave)
        self.thread.join(timeout=5)
        os.close(self.master)
        self.out.close()


def bochs_env(env):
    """Bochs's environment: the term display wants a TERM it knows. Without
    MALLOC_PERTURB_, which Meson sets for every test: with it Debian's Bochs
    2.7 aborts at start-up ("*** buffer overflow detected ***", measured with
    MALLOC_PERTURB_=143), so it reads memory it never initialised."""
    out = dict(env, TERM="vt100")
    out.pop("MALLOC_PERTURB_", None)
    return out


class Bochs:
    """Bochs 2.7 (Intel VMX with EPT).  No -kernel: bzImage and initramfs go
    on an isolinux ISO booted as a CD-ROM.  Debian's binary has the internal
    debugger, which stops at the first instruction unless an -rc file says
    "c".  The "term" display and both serial ports run on pseudo-terminals
    of ours (no window, no listening socket).  After the guest's reboot the
    BIOS restart ends in a triple fault and Bochs exits 1 or waits in its
    debugger, so completion is judged from KVMNC-DONE and Bochs is stopped
    then."""
    name = "bochs"
    # Guest instructions per emulated second.  With clock sync=none guest
    # time is instruction count / ips, so a guest timeout bounds work, not
    # wall time; 10M is about what Bochs manages on a loaded 2-core CI
    # machine, which keeps guest seconds near wall-clock ones.
    IPS = 10_000_000

    def __init__(self, cfg):
        self.cfg = cfg

    def cmdline(self, run):
        return (f"console=ttyS0,115200 panic=-1 loglevel=7 kvmnc.run={run} "
                f"{self.cfg.get('cmdline', '')}").strip()

    def make_iso(self, run, kdir, initrd, logdir):
        iso = os.path.join(logdir, "boot.iso")
        with tempfile.TemporaryDirectory(dir=logdir) as stage:
            os.makedirs(os.path.join(stage, "isolinux"))
            for src in (ISOLINUX_BIN, LDLINUX_C32):
                shutil.copy(src, os.path.join(stage, "isolinux"))
            shutil.copy(os.path.join(kdir, "bzImage"), os.path.join(stage, "bzImage"))
            shutil.copy(initrd, os.path.join(stage, "initrd"))
            with open(os.path.join(stage, "isolinux", "isolinux.cfg"), "w",
                      encoding="utf-8") as f:
                f.write("DEFAULT kvmnc\nPROMPT 0\nTIMEOUT 0\nLABEL kvmnc\n"
                        "  KERNEL /bzImage\n  INITRD /initrd\n"
                        f"  APPEND {self.cmdline(run)}\n")
            with open(os.path.join(logdir, "xorriso.log"), "w", encoding="utf-8") as err:
                subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso,
                                "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                                "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
                                stage], check=True, stdout=err, stderr=err)
        return iso

    def write_config(self, run, iso, ports, logdir):
        """The bochsrc: 1 GiB unless the run says (megs) or KVMNC_BOCHS_MEGS,
        one CPU, the ISO, both serial ports on our pseudo-terminals."""
        conf = os.path.join(logdir, "bochsrc")
        mem = int(os.environ.get("KVMNC_BOCHS_MEGS", self.cfg.get("megs", 1024)))
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f"""# generated by tests/kernel/run-qemu.py for run {run}
megs: {mem}
cpu: model={self.cfg['cpu']}, count=1, ips={self.IPS}, reset_on_triple_fault=1
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path="{iso}", status=inserted
boot: cdrom
com1: enabled=1, mode=term, dev={ports[0].name}
com2: enabled=1, mode=term, dev={ports[1].name}
display_library: term
clock: sync=none, time0=1767225600
log: "{os.path.join(logdir, 'bochs.log')}"
panic: action=fatal
error: action=report
info: action=report
mouse: enabled=0
speaker: enabled=0
""")
        return conf

    def launch(self, run, kdir, initrd, console, results, logdir, timeout):
        iso = self.make_iso(run, kdir, initrd, logdir)
        rc = os.path.join(logdir, "bochs.rc")
        with open(rc, "w", encoding="ascii") as f:
            f.write("c\n")
        ports = [PtyPump(console), PtyPump(results)]
        display = PtyPump(os.path.join(logdir, "bochs.tty"))
        conf = self.write_config(run, iso, ports, logdir)
        cmd = [os.environ.get("KVMNC_BOCHS", "bochs"), "-q", "-f", conf, "-rc", rc]
        save_cmdline(logdir, cmd)
        log(f"{run}: booting: {shlex.join(cmd)} (kernel: {self.cmdline(run)})")
        try:
            proc = subprocess.Popen(cmd, stdin=display.slave, stdout=display.slave,
                                    stderr=display.slave, env=bochs_env(os.environ),
                                    start_new_session=True, cwd=logdir)
        except OSError:
            for p in ports + [display]:
                p.close()
            raise
        try:
            # Bochs ignores SIGTERM in its debugger (measured: 5 s, then SIGKILL).
            w = wait_guest(proc, results, timeout, polite=False, console=console)
        finally:
            stop(proc, polite=False)
            for p in ports + [display]:
                p.close()
        if w["stopped"]:
            log(f"{run}: stopped Bochs after KVMNC-DONE (it cannot power the guest off)")
        return dict(w, exit=proc.returncode)


BACKENDS = {"qemu": Qemu, "bochs": Bochs}


def boot(run, cfg, kdir, plan, files, env, logdir, timeout, tap):
    """Pack the initramfs, boot the run's emulator, return (results, console)."""
    os.makedirs(logdir, exist_ok=True)
    modules = initramfs.kernel_modules(kdir, VENDOR[cfg["backend"]], cfg.get("modparams"))
    initrd = initramfs.pack(run, logdir, plan, files, env, modules)
    console = os.path.join(logdir, "console.log")
    results = os.path.join(logdir, "results.log")
    for p in (console, results):
        if os.path.exists(p):
            os.unlink(p)
    backend = BACKENDS[cfg["backend"]](cfg)
    w = backend.launch(run, kdir, initrd, console, results, logdir, timeout)
    secs, timed_out, code = w["seconds"], w["timed_out"], w["exit"]
    log(f"{run}: {backend.name} ran {secs:.1f} s (exit {code}{', TIMED OUT' if timed_out else ''})")
    res = parse_results(results)
    con = open(console, "rb").read().decode("utf-8", "replace") if os.path.exists(console) else ""
    if res["init"] is None:
        tap.fail(f"guest reached init (no KVMNC-INIT; see {console})")
        tap.diag("\n".join(con.splitlines()[-40:]))
    else:
        tap.ok(f"guest reached init: {res['init']}")
    if modules:
        check_modules(tap, res, modules)
    if timed_out:
        tap.fail(f"{backend.name} finished within {timeout} s (killed after {secs:.0f} s)")
    elif not res["done"]:
        why = (f"the guest restarted, and {LOST_GRACE:.0f} s later no KVMNC-DONE had come:"
               " the results port lost its end" if w.get("lost") else f"{backend.name} exit {code}")
        tap.fail(f"guest ran its whole plan (no KVMNC-DONE; {why})")
    else:
        tap.ok(f"guest ran its whole plan; {backend.name} {secs:.1f} s"
               f" (init after {w['boot']} s)")
    res["emulator_seconds"] = round(secs, 1)
    res["boot_seconds"] = w["boot"]
    return res, con


def check_modules(tap, res, modules):
    """The guest's kvm-modules step (a distribution kernel's KVM is modular)."""
    names = " ".join(os.path.basename(p)[:-3] for p, _ in modules)
    t = res["tests"].get("kvm-modules") or {}
    ok = t.get("rc") == 0
    tap.line(ok, f"guest loaded the KVM modules {names} (exit {t.get('rc')}, {t.get('secs')} s)")
    if not ok:
        tap.diag("\n".join(t.get("out", [])[-20:]))
