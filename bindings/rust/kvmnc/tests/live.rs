// SPDX-License-Identifier: LGPL-2.1-or-later
//! The safe API on the real /dev/kvm: the cases the C live tests cover for
//! open, probe, regions, plans, copies and close (tests/live/live-*.c), plus
//! what only Rust adds: fds left behind, drop order, a panic inside a plan
//! guard, handles across threads. Without /dev/kvm each test says SKIP and
//! passes (cargo's harness has no skip).

mod common;

use common::kvm::{self, GuestMem};
use kvmnc::{
    errno, FlagEvidence, Handle, LogLevel, Mechanism, MemFlags, OpenOptions, Reason, Region, Scope,
    Support,
};
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::sync::{Mutex, MutexGuard};

const SLOT_LEN: usize = 0x10000;
const CODE_GPA: u64 = 0x1000;
const NC_GPA: u64 = 0x10000;
// mov ax,0x1000; mov ds,ax; mov byte [0],0x42; hlt: writes GPA 0x10000.
const GUEST_CODE: [u8; 11] = [
    0xb8, 0x00, 0x10, 0x8e, 0xd8, 0xc6, 0x06, 0x00, 0x00, 0x42, 0xf4,
];

// The tests count this process's fds: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// /dev/kvm, or return from the test after saying why it is skipped
/// (a macro: let-else is newer than rustc 1.63).
macro_rules! kvm_or_skip {
    ($test:expr) => {
        match kvm::open_kvm() {
            Ok(k) => k,
            Err(e) => {
                println!(
                    "SKIP {}: {}: {e} (needs a KVM host and permission)",
                    $test,
                    kvm::kvm_path()
                );
                return;
            }
        }
    };
}

/// Runs `f` with the panic message silenced: the panics these tests cause
/// on purpose are not failures to read about in the log.
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = f();
    std::panic::set_hook(hook);
    r
}

fn errno_of<T: std::fmt::Debug>(r: kvmnc::Result<T>) -> i32 {
    r.expect_err("expected an error").errno()
}

#[test]
fn probe_answers_and_refusals() {
    let _s = serial();
    let _kvm = kvm_or_skip!("probe");
    let fds = kvm::count_fds();
    let f = kvmnc::probe().expect("probe /dev/kvm");
    assert_eq!(kvm::count_fds(), fds, "probe leaves no fd open");
    println!(
        "# kernel {}, vendor {}, recommended {}",
        f.kernel_release,
        f.cpu_vendor,
        kvmnc::mechanism_name(f.recommended)
    );
    for m in Mechanism::ALL {
        let s = f.status(m);
        println!("# {}: {} {}", m, s.support.as_raw(), s.reason);
        assert!(
            !matches!(s.support, Support::Unknown(_)),
            "{m}: definitive on a working host"
        );
        assert!(!s.reason.is_empty(), "{m} has a reason");
    }
    assert_eq!(f.kvm_api_version, 12);
    // The recommendation is the narrowest supported mechanism.
    let narrowest = Mechanism::ALL
        .iter()
        .copied()
        .find(|m| f.status(*m).support.is_supported());
    assert_eq!(f.recommended, narrowest);
    assert_eq!(
        f.as_raw().sz,
        std::mem::size_of::<kvmnc::sys::kvmnc_features>()
    );

    let again = kvmnc::probe().unwrap();
    assert_eq!(again.as_raw().recommended, f.as_raw().recommended);
    assert_eq!(again.memslot_flag, f.memslot_flag, "cached answer");

    let p = |path: &str| errno_of(kvmnc::Probe::new().dev_path(path).run());
    assert_eq!(p("/dev/null"), errno::ENOTTY, "a node that is not KVM");
    assert_eq!(p("/nonexistent/kvm"), errno::ENOENT);
    assert_eq!(p("/dev"), errno::ENOTTY, "a directory");
    assert_eq!(p("/dev/kvm/"), errno::ENOENT, "a trailing slash");
    assert_eq!(p("/dev/k\0vm"), errno::EINVAL, "a NUL byte never reaches C");
    assert_eq!(
        p(&format!("/{}", "a".repeat(300))),
        errno::EINVAL,
        "a component over NAME_MAX"
    );
    assert_eq!(kvm::count_fds(), fds, "refusals leave no fd");
}

#[test]
fn open_refuses_what_is_not_a_vm() {
    let _s = serial();
    let kvm = kvm_or_skip!("open");
    let vm = kvm::create_vm(&kvm).unwrap();
    let null = File::open("/dev/null").unwrap();
    let closed = {
        let f = File::open("/dev/null").unwrap();
        f.as_raw_fd()
    };
    let fds = kvm::count_fds();
    assert_eq!(errno_of(Handle::open(&null)), errno::ENOTTY, "/dev/null");
    assert_eq!(
        errno_of(Handle::open(&kvm)),
        errno::ENOTTY,
        "the KVM system fd"
    );
    // A raw fd that is closed: refused before the library sees it.
    struct Raw(i32);
    impl AsRawFd for Raw {
        fn as_raw_fd(&self) -> i32 {
            self.0
        }
    }
    assert_eq!(
        errno_of(Handle::open(&Raw(closed))),
        errno::EBADF,
        "a closed fd"
    );
    assert_eq!(errno_of(Handle::open(&Raw(-1))), errno::EBADF, "fd -1");
    let bad_path = OpenOptions::new().dev_path("/dev/\0kvm").open(&vm);
    assert_eq!(errno_of(bad_path), errno::EINVAL);
    assert_eq!(kvm::count_fds(), fds, "failed opens leave no fd");
}

#[test]
fn handle_lifecycle_and_fd_hygiene() {
    let _s = serial();
    let kvm = kvm_or_skip!("handle");
    let vm = kvm::create_vm(&kvm).unwrap();
    let fds = kvm::count_fds();
    let h = OpenOptions::new().scope(Scope::Vm).open(&vm).unwrap();
    // The handle's own duplicate of the VM fd, nothing else.
    assert_eq!(kvm::count_fds(), fds + 1);
    // One VM, one handle (1.2): a second is refused before anything is
    // tried on the VM. The crate passes the library a duplicate of the VM
    // fd, so this is the kcmp() path of the check, not the equal number:
    // where kcmp() is missing (a kernel without CONFIG_KCMP, as the kernel
    // tier's) or denied, the library cannot tell, as docs/errors.md says.
    let kcmp = {
        let dup = vm.try_clone().unwrap();
        kvm::kcmp_same_file(&vm, &dup)
    };
    match kcmp {
        Ok(same) => {
            assert!(same, "kcmp() sees a duplicate as the same file");
            assert_eq!(
                errno_of(Handle::open(&vm)),
                errno::EISCONN,
                "a second handle on the same VM"
            );
            assert_eq!(
                errno_of(OpenOptions::new().scope(Scope::VmIrreversible).open(&vm)),
                errno::EISCONN,
                "whatever the options"
            );
        }
        Err(e) => {
            println!("# kcmp(): {e}: another fd of the VM cannot be told apart");
            Handle::open(&vm)
                .expect("without kcmp() the duplicate is not detected (documented)")
                .close()
                .unwrap();
        }
    }
    assert_eq!(kvm::count_fds(), fds + 1, "a refusal leaves no fd");
    // Another VM is another matter: its own handle, side by side.
    let vm2 = kvm::create_vm(&kvm).unwrap();
    let h2 = Handle::open(&vm2).expect("a handle on a second VM");
    let info = h.info().unwrap();
    println!(
        "# regions use {}, devices use {}",
        kvmnc::mechanism_name(info.region_mechanism),
        kvmnc::mechanism_name(info.device_mechanism)
    );
    assert_eq!(info.scope, Scope::Vm);
    assert_eq!(h2.info().unwrap().scope, Scope::Slot);
    assert!(
        !h.is_noncoherent().unwrap(),
        "a fresh VM holds nothing non-coherent"
    );
    let f = h.features().unwrap();
    assert_eq!(f.recommended, kvmnc::probe().unwrap().recommended);
    h.close().expect("close");
    drop(h2);
    drop(vm2);
    assert_eq!(kvm::count_fds(), fds, "closing leaves no fd");
    // Closed, the VM takes a handle again.
    Handle::open(&vm)
        .expect("a new handle once the first is closed")
        .close()
        .unwrap();
    assert_eq!(kvm::count_fds(), fds);
    // SAFETY-free check that the caller's fd is untouched: it still answers.
    assert!(kvm::check_extension(&vm, kvm::KVM_CAP_USER_MEMORY2) >= 0);
}

#[test]
fn drop_order_does_not_matter() {
    let _s = serial();
    let kvm = kvm_or_skip!("drop order");
    let fds = kvm::count_fds();
    // The VMM closes its VM fd first: the handle's duplicate keeps the VM.
    let vm = kvm::create_vm(&kvm).unwrap();
    let h = Handle::open(&vm).unwrap();
    drop(vm);
    assert!(h.info().is_ok(), "the handle outlives the caller's fd");
    // A snapshot does not borrow the handle: it may outlive it.
    let snap = h.snapshot().unwrap();
    drop(h);
    assert_eq!(snap.ranges().count(), 0);
    assert_eq!(
        snap.advise(kvmnc::MigrationMode::None).unwrap().action,
        kvmnc::MigrationAction::Plain
    );
    drop(snap);
    assert_eq!(kvm::count_fds(), fds, "nothing left");
}

/// The C live-memslot cases for one mechanism (None: automatic).
fn regions_with(kvm: &File, mech: Option<Mechanism>) {
    let name = kvmnc::mechanism_name(mech);
    let vm = kvm::create_vm(kvm).unwrap();
    let mut low = GuestMem::new(SLOT_LEN).unwrap();
    let ncmem = GuestMem::new(SLOT_LEN).unwrap();
    low.as_mut_slice()[CODE_GPA as usize..][..GUEST_CODE.len()].copy_from_slice(&GUEST_CODE);
    let h = match OpenOptions::new()
        .scope(Scope::VmIrreversible)
        .mechanism(mech)
        .open(&vm)
    {
        Err(e) if mech.is_some() && e.is_unsupported() => {
            println!("# {name}: forced open refused, as the probe said");
            assert!(!kvmnc::probe()
                .unwrap()
                .status(mech.unwrap())
                .support
                .is_supported());
            return;
        }
        r => r.unwrap(),
    };
    let info = h.info().unwrap();
    if mech.is_some() {
        assert_eq!(
            info.region_mechanism, mech,
            "forced mechanism is the region mechanism"
        );
    }
    let plain = Region::new(0, 0, SLOT_LEN as u64, low.addr());
    let mut nc = Region::new(1, NC_GPA, SLOT_LEN as u64, ncmem.addr()).noncoherent(true);
    // SAFETY: both mappings outlive the VM (dropped after it below).
    unsafe { h.set_region(&plain) }.unwrap();
    let r = unsafe { h.set_region(&nc) };
    match info.region_mechanism {
        None => {
            assert!(
                r.unwrap_err().is_unsupported(),
                "no mechanism: non-coherent region refused"
            );
            nc = nc.noncoherent(false);
            unsafe { h.set_region(&nc) }.expect("the same region as plain memory");
        }
        Some(m) => {
            println!("# {name}: non-coherent region via {m}");
            r.unwrap();
            assert!(h.is_noncoherent().unwrap());
            assert!(h.hva_is_noncoherent(ncmem.as_ptr(), 1).unwrap());
            assert!(h.gpa_is_noncoherent(0, NC_GPA, 1).unwrap());
        }
    }
    assert!(
        !h.gpa_is_noncoherent(0, 0, 1).unwrap(),
        "plain memory is coherent"
    );
    assert_eq!(
        kvm::run_real_mode(kvm, &vm, CODE_GPA).unwrap(),
        kvm::KVM_EXIT_HLT,
        "guest writes into the region and halts"
    );
    let mut byte = [0u8];
    h.copy_from_guest(&mut byte, &ncmem.as_slice()[..1])
        .unwrap();
    assert_eq!(byte[0], 0x42, "the guest's byte through the coherent read");

    let moved =
        Region::new(1, 0x20000, SLOT_LEN as u64, ncmem.addr()).noncoherent(nc.is_noncoherent());
    unsafe { h.set_region(&moved) }.expect("move the region");
    unsafe { h.set_region(&Region::delete(1)) }.expect("delete the region");
    if info.region_mechanism != Some(Mechanism::GuestPatQuirk) {
        assert!(!h.is_noncoherent().unwrap(), "nothing non-coherent left");
    }
    drop(h);
    drop(vm);
}

/// `case` automatically, then with each mechanism forced (exercised where
/// the probe calls it usable, refused where not), as the C live tests do;
/// no fd may be left behind.
fn every_mechanism(what: &str, case: fn(&File, Option<Mechanism>)) {
    let _s = serial();
    let kvm = kvm_or_skip!(what);
    let fds = kvm::count_fds();
    let forced = [
        Mechanism::MemslotFlag,
        Mechanism::VirtioDevice,
        Mechanism::Native,
    ];
    for m in std::iter::once(None).chain(forced.iter().copied().map(Some)) {
        case(&kvm, m);
    }
    assert_eq!(kvm::count_fds(), fds, "no fd left behind");
}

#[test]
fn regions_through_the_library() {
    every_mechanism("regions", regions_with);
}

/// The C live-vmm cases: the VMM's own ioctl inside a plan.
fn plans_with(kvm: &File, mech: Option<Mechanism>) {
    let vm = kvm::create_vm(kvm).unwrap();
    let a = GuestMem::new(SLOT_LEN).unwrap();
    let b = GuestMem::new(SLOT_LEN).unwrap();
    let h = match OpenOptions::new()
        .scope(Scope::VmIrreversible)
        .mechanism(mech)
        .open(&vm)
    {
        Err(e) if mech.is_some() && e.is_unsupported() => return,
        r => r.unwrap(),
    };
    let info = h.info().unwrap();

    let plain = Region::new(0, 0, SLOT_LEN as u64, a.addr()).flags(MemFlags::LOG_DIRTY_PAGES);
    let plan = h.prepare_region(&plain).unwrap();
    assert_eq!(
        plan.flags(),
        MemFlags::LOG_DIRTY_PAGES,
        "plain: the VMM's flags unchanged"
    );
    assert_eq!(plan.mechanism(), None);
    // SAFETY: `a` outlives the VM.
    let ret = unsafe {
        kvm::set_user_memory_region(&vm, 0, plan.flags().bits(), 0, SLOT_LEN as u64, a.addr())
    };
    plan.complete(ret).expect("outcome reported");

    // crosvm's way of asking: the flag in the region's own flags.
    let blob =
        Region::new(1, 0x100000, SLOT_LEN as u64, b.addr()).flags(MemFlags::NON_COHERENT_DMA);
    match h.prepare_region(&blob) {
        Err(e) => {
            assert!(info.region_mechanism.is_none() && e.is_unsupported(), "{e}");
            let f = h.features().unwrap();
            println!("# no mechanism for the blob: {}", f.memslot_flag.reason);
        }
        Ok(plan) => {
            println!(
                "# plan flags {:#x} (added {:#x}) via {}",
                plan.flags().bits(),
                plan.add_flags().bits(),
                kvmnc::mechanism_name(plan.mechanism())
            );
            assert_eq!(plan.mechanism(), info.region_mechanism);
            assert!(h.is_noncoherent().unwrap(), "a planned region counts");
            let ret = unsafe {
                kvm::set_user_memory_region(
                    &vm,
                    1,
                    plan.flags().bits(),
                    0x100000,
                    SLOT_LEN as u64,
                    b.addr(),
                )
            };
            assert_eq!(ret, Ok(()), "the VMM's ioctl with the planned flags");
            plan.complete(ret).unwrap();
            assert!(
                h.is_noncoherent().unwrap(),
                "the library sees the VMM's slot"
            );
            let del = h.prepare_region(&Region::delete(1)).unwrap();
            let ret = unsafe { kvm::set_user_memory_region(&vm, 1, 0, 0x100000, 0, 0) };
            del.complete(ret).unwrap();
            if info.region_mechanism != Some(Mechanism::GuestPatQuirk) {
                assert!(!h.is_noncoherent().unwrap());
            }
        }
    };
}

#[test]
fn vmm_owned_memslots() {
    every_mechanism("plans", plans_with);
}

#[test]
fn plan_guard_leaves_nothing_pending() {
    let _s = serial();
    let kvm = kvm_or_skip!("plan guard");
    let vm = kvm::create_vm(&kvm).unwrap();
    let mem = GuestMem::new(SLOT_LEN).unwrap();
    let h = Handle::open(&vm).unwrap();
    let r = Region::new(2, 0, SLOT_LEN as u64, mem.addr());

    let plan = h.prepare_region(&r).unwrap();
    assert_eq!(
        errno_of(h.prepare_region(&r)),
        errno::EALREADY,
        "a second plan waits"
    );
    assert_eq!(errno_of(h.region_removed(2)), errno::EALREADY);
    drop(plan);
    // Dropped without an outcome: reported as not made, the slot is free.
    h.prepare_region(&r)
        .unwrap()
        .complete(Err(errno::EEXIST))
        .unwrap();

    // A panic between prepare and complete, as a VMM bug would have it.
    let caught = quietly(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _plan = h.prepare_region(&r).unwrap();
            panic!("the VMM panics before its ioctl");
        }))
    });
    assert!(caught.is_err());
    let plan = h
        .prepare_region(&r)
        .expect("the panic left no pending plan");
    assert!(!h.is_noncoherent().unwrap());
    // An outcome without an errno still reads as a failure.
    plan.complete(Err(0)).unwrap();
    assert_eq!(
        errno_of(h.region_removed(2)),
        errno::ENOENT,
        "a failure leaves nothing"
    );

    // complete_io hands the ioctl's result back.
    let plan = h.prepare_region(&r).unwrap();
    let ret = unsafe {
        kvm::set_user_memory_region(&vm, 2, plan.flags().bits(), 0, SLOT_LEN as u64, mem.addr())
    };
    let io = plan.complete_io(ret.map_err(std::io::Error::from_raw_os_error));
    assert!(io.is_ok());
    let plan = h.prepare_region(&Region::delete(2)).unwrap();
    let ret = unsafe { kvm::set_user_memory_region(&vm, 2, 0, 0, 0, 0) };
    plan.complete(ret).unwrap();
}

#[test]
fn devices() {
    let _s = serial();
    let kvm = kvm_or_skip!("devices");
    let vm = kvm::create_vm(&kvm).unwrap();
    let fds = kvm::count_fds();
    let mut o = OpenOptions::new().scope(Scope::Vm);
    if kvmnc::probe().unwrap().virtio_device.support.is_supported() {
        o = o.mechanism(Some(Mechanism::VirtioDevice));
    }
    let h = o.open(&vm).unwrap();
    let info = h.info().unwrap();
    println!(
        "# devices use {}",
        kvmnc::mechanism_name(info.device_mechanism)
    );
    match info.device_mechanism {
        None => {
            assert!(h.device_enable(0x10).unwrap_err().is_unsupported());
            assert!(!h.is_noncoherent().unwrap());
            assert_eq!(kvm::count_fds(), fds + 1, "refusal leaves no fd");
        }
        Some(m) => {
            h.device_enable(0x10).unwrap();
            h.device_enable(0x10).expect("enable again is a no-op");
            let per_dev = usize::from(m == Mechanism::VirtioDevice);
            assert_eq!(kvm::count_fds(), fds + 1 + per_dev);
            assert!(h.is_noncoherent().unwrap());
            assert_eq!(h.info().unwrap().enabled_devices, 1);
            h.device_disable(0x10).unwrap();
        }
    }
    assert_eq!(
        errno_of(h.device_disable(0x10)),
        errno::ENOENT,
        "not enabled"
    );
    drop(h);
    assert_eq!(kvm::count_fds(), fds, "no fd left behind");
}

#[test]
fn copies_and_snapshots() {
    let _s = serial();
    let kvm = kvm_or_skip!("copies");
    let vm = kvm::create_vm(&kvm).unwrap();
    let mut mem = GuestMem::new(SLOT_LEN).unwrap();
    let h = Handle::open(&vm).unwrap();
    unsafe { h.set_region(&Region::new(0, 0, SLOT_LEN as u64, mem.addr())) }.unwrap();

    let src: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    h.copy_to_guest(&mut mem.as_mut_slice()[..4096], &src)
        .unwrap();
    let mut back = vec![0u8; 4096];
    h.copy_from_guest(&mut back, &mem.as_slice()[..4096])
        .unwrap();
    assert_eq!(back, src, "coherent memory copies as memcpy does");
    assert_eq!(
        errno_of(h.copy_from_guest(&mut back[..1], &src[..2])),
        errno::EINVAL
    );
    h.flush(&mem.as_slice()[..4096]).unwrap();
    h.flush(&[]).expect("a length of 0 checks the handle only");
    assert!(!h.hva_is_noncoherent(mem.as_ptr(), SLOT_LEN).unwrap());
    assert_eq!(
        errno_of(h.hva_is_noncoherent(std::ptr::null(), 1)),
        errno::EINVAL
    );
    assert_eq!(
        errno_of(h.gpa_is_noncoherent(7, 0, 1)),
        errno::EINVAL,
        "no address space 7"
    );

    let snap = h.snapshot().unwrap();
    assert_eq!(snap.ranges().count(), 0);
    assert_eq!(
        snap.noncoherent_regions() + snap.planned_regions() + snap.enabled_devices(),
        0
    );
    assert_eq!(snap.region_mechanism(), h.info().unwrap().region_mechanism);
    println!(
        "# cache maintenance: {:?}, {} / {}",
        snap.cache_maintenance(),
        snap.invalidate_insn(),
        snap.writeback_insn()
    );
    assert!(!h.is_stale(&snap).unwrap());
    let advice = snap.advise(kvmnc::MigrationMode::Postcopy).unwrap();
    assert_eq!(
        advice.action,
        kvmnc::MigrationAction::Plain,
        "{}",
        advice.reason
    );
    assert!(!advice.reason.is_empty());
    // Snapshots are Send + Sync: read from another thread.
    let gen = std::thread::scope(|s| s.spawn(|| snap.generation()).join().unwrap());
    assert_eq!(gen, snap.generation());
}

#[test]
fn handles_across_threads() {
    let _s = serial();
    let kvm = kvm_or_skip!("threads");
    let vm = kvm::create_vm(&kvm).unwrap();
    let mem = GuestMem::new(SLOT_LEN * 4).unwrap();
    let h = std::sync::Arc::new(Handle::open(&vm).unwrap());
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let h = h.clone();
            let addr = mem.addr() + u64::from(t) * SLOT_LEN as u64;
            s.spawn(move || {
                for _ in 0..50 {
                    let r = Region::new(t, u64::from(t) * SLOT_LEN as u64, SLOT_LEN as u64, addr);
                    let plan = h.prepare_region(&r).unwrap();
                    plan.complete(Err(errno::ECANCELED)).unwrap();
                    assert!(!h.is_noncoherent().unwrap());
                    h.info().unwrap();
                }
            });
        }
    });
    // Moved to another thread and closed there.
    let h = std::sync::Arc::try_unwrap(h).unwrap();
    std::thread::spawn(move || h.close().unwrap())
        .join()
        .unwrap();
}

#[test]
fn log_callback() {
    let _s = serial();
    let kvm = kvm_or_skip!("log");
    let vm = kvm::create_vm(&kvm).unwrap();
    let seen = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    kvmnc::set_log(kvmnc::LogLevel::Debug, move |_, msg| {
        // The callback may call back into the library.
        let _ = kvmnc::probe();
        sink.lock().unwrap().push(msg.to_string());
    });
    drop(Handle::open(&vm).unwrap());
    kvmnc::set_log(kvmnc::LogLevel::Debug, |_, _| {
        panic!("a panicking logger must not unwind into C")
    });
    quietly(|| drop(Handle::open(&vm).unwrap()));
    kvmnc::clear_log();
    let seen = seen.lock().unwrap();
    println!("# {} messages, first: {:?}", seen.len(), seen.first());
    assert!(
        seen.iter().any(|m| m.contains("handle on VM fd")),
        "{seen:?}"
    );
}

// ---- 1.2 ------------------------------------------------------------------

/// The invariants between a mechanism's answer and its code (kvmnc_features(3),
/// docs/reasons.tsv), for a probe's answer and a handle's alike.
fn check_codes(what: &str, f: &kvmnc::Features) {
    for m in Mechanism::ALL {
        let s = f.status(m);
        println!("# {what} {m}: code {} ({:?})", s.code, s.code);
        assert_ne!(s.code, Reason::Unset, "{m}: a 1.2 library fills the code");
        assert!(
            !matches!(s.code, Reason::Unknown(_)),
            "{m}: a code of 1.2's table"
        );
        assert!(s.code.name().is_some(), "{m}: the library names it");
        assert_eq!(
            s.support.is_supported(),
            s.code == Reason::Supported,
            "{m}: supported exactly when the code says so ({})",
            s.reason
        );
        assert_eq!(
            matches!(s.support, Support::Unknown(_)),
            s.code == Reason::CouldNotTell,
            "{m}: could not tell exactly when the code says so ({})",
            s.reason
        );
    }
    // Codes that belong to one mechanism only (the "mechanisms" column).
    assert_ne!(f.native.code, Reason::NoSelfSnoop);
    assert_ne!(f.native.code, Reason::OtherMeaning);
    assert_ne!(f.guest_pat_quirk.code, Reason::IgnoresGuestPat);
    assert_ne!(f.memslot_flag.code, Reason::NativeAlready);
    if f.memslot_flag.support.is_supported() {
        assert_ne!(f.memslot_flag_evidence, FlagEvidence::None);
    } else {
        assert_eq!(f.memslot_flag_evidence, FlagEvidence::None);
    }
    if f.memslot_flag_evidence != FlagEvidence::Capability {
        assert_eq!(f.memslot_flag_cap, 0, "a capability only as evidence");
    }
    if f.recommended.is_none() {
        // A host without any mechanism (this one, as the CI runs it):
        // nothing may claim "supported", and each code says why not.
        for m in Mechanism::ALL {
            assert_ne!(f.status(m).code, Reason::Supported, "{m}");
        }
    }
}

#[test]
fn reason_codes() {
    let _s = serial();
    let kvm = kvm_or_skip!("reason codes");
    let f = kvmnc::probe().unwrap();
    check_codes("probe", &f);
    // The codes are the library's, read as they were written.
    let raw = f.as_raw();
    assert_eq!(f.native.code.as_raw(), raw.native_reason);
    assert_eq!(f.memslot_flag.code.as_raw(), raw.memslot_flag_reason);
    assert_eq!(f.virtio_device.code.as_raw(), raw.virtio_device_reason);
    assert_eq!(f.guest_pat_quirk.code.as_raw(), raw.guest_pat_quirk_reason);
    // The same facts through a handle: the codes the VM's answer gives.
    let vm = kvm::create_vm(&kvm).unwrap();
    let h = Handle::open(&vm).unwrap();
    let hf = h.features().unwrap();
    check_codes("handle", &hf);
    for m in Mechanism::ALL {
        assert_eq!(hf.status(m).code, f.status(m).code, "{m}: the VM agrees");
    }
}

#[test]
fn vm_wide_arming() {
    let _s = serial();
    let kvm = kvm_or_skip!("vm-wide arming");
    for scope in [Scope::Slot, Scope::Vm] {
        let vm = kvm::create_vm(&kvm).unwrap();
        let fds = kvm::count_fds();
        let h = OpenOptions::new().scope(scope).open(&vm).unwrap();
        let info = h.info().unwrap();
        println!(
            "# {scope:?}: regions use {}",
            kvmnc::mechanism_name(info.region_mechanism)
        );
        match info.region_mechanism {
            None => {
                // No mechanism for regions (this host): refused, nothing made.
                assert_eq!(errno_of(h.vm_wide_arm()), errno::EOPNOTSUPP);
                assert_eq!(kvm::count_fds(), fds + 1, "a refusal creates no device");
            }
            Some(m) => {
                h.vm_wide_arm().unwrap();
                h.vm_wide_arm().expect("arming an armed handle is a no-op");
                // The VIRTIO device is created now; nothing else makes any.
                let dev = usize::from(m == Mechanism::VirtioDevice);
                assert_eq!(kvm::count_fds(), fds + 1 + dev);
            }
        }
        assert!(
            !h.is_noncoherent().unwrap(),
            "arming declares no memory non-coherent"
        );
        h.vm_wide_disarm().expect("disarm");
        h.vm_wide_disarm()
            .expect("disarming a disarmed handle is 0 too");
        assert_eq!(kvm::count_fds(), fds + 1, "disarmed: the device is gone");
        drop(h);
        assert_eq!(kvm::count_fds(), fds);
    }
}

#[test]
fn plan_abort_and_resync() {
    let _s = serial();
    let kvm = kvm_or_skip!("abort and resync");
    let vm = kvm::create_vm(&kvm).unwrap();
    let mem = GuestMem::new(SLOT_LEN).unwrap();
    let h = Handle::open(&vm).unwrap();
    let info = h.info().unwrap();
    let r = Region::new(3, 0, SLOT_LEN as u64, mem.addr());

    // Abort: the slot is free again, and nothing is left to remove.
    let plan = h.prepare_region(&r).unwrap();
    assert_eq!(errno_of(h.prepare_region(&r)), errno::EALREADY);
    plan.abort().expect("abort a waiting plan");
    assert_eq!(errno_of(h.region_removed(3)), errno::ENOENT);
    // The C call behind it answers ENOENT when no plan waits.
    // SAFETY: an open handle.
    let r2 = unsafe { kvmnc::sys::kvmnc_region_abort(h.as_raw(), 3) };
    assert_eq!(r2, -errno::ENOENT);

    // A non-coherent plan's VM-wide step goes with the abort.
    let fds = kvm::count_fds();
    match h.prepare_region(&r.noncoherent(true)) {
        Err(e) => assert!(info.region_mechanism.is_none() && e.is_unsupported(), "{e}"),
        Ok(plan) => {
            assert!(h.is_noncoherent().unwrap(), "a planned region counts");
            plan.abort().unwrap();
            assert!(!h.is_noncoherent().unwrap(), "aborted: it no longer does");
        }
    }
    assert_eq!(kvm::count_fds(), fds, "nothing left by the abort");

    // Resync with the VMM's table: an empty VM forgets nothing.
    assert_eq!(h.region_resync(&[]).unwrap(), 0);
    // A memslot made through the library, then deleted behind its back.
    // SAFETY: `mem` outlives the VM.
    unsafe { h.set_region(&r) }.unwrap();
    let del = unsafe { kvm::set_user_memory_region(&vm, 3, 0, 0, 0, 0) };
    assert_eq!(del, Ok(()), "the VMM's own delete");
    let plan = h
        .prepare_region(&Region::new(4, 0x10_0000, SLOT_LEN as u64, mem.addr()))
        .unwrap();
    // Slot 3 is gone from the VMM's table, slot 4's plan waits: kept.
    let forgotten = h.region_resync(&[]).unwrap();
    // The library knows plain memslots only where devices have a mechanism.
    let knows_plain = info.device_mechanism.is_some();
    assert_eq!(forgotten, usize::from(knows_plain));
    assert_eq!(errno_of(h.region_removed(3)), errno::ENOENT);
    assert_eq!(
        errno_of(h.region_removed(4)),
        errno::EALREADY,
        "a waiting plan survives the resync"
    );
    plan.abort().unwrap();
}

#[test]
fn snapshot_ranges_by_index() {
    let _s = serial();
    let kvm = kvm_or_skip!("snapshot ranges");
    let vm = kvm::create_vm(&kvm).unwrap();
    let mem = GuestMem::new(SLOT_LEN).unwrap();
    let h = OpenOptions::new().scope(Scope::Vm).open(&vm).unwrap();
    let nc = Region::new(5, 0x20_0000, SLOT_LEN as u64, mem.addr()).noncoherent(true);
    // SAFETY: `mem` outlives the VM.
    let made = match unsafe { h.set_region(&nc) } {
        Ok(()) => true,
        Err(e) if e.is_unsupported() => false,
        Err(e) => panic!("{e}"),
    };
    let snap = h.snapshot().unwrap();
    println!("# {} ranges", snap.len());
    assert_eq!(snap.ranges().len(), snap.len());
    assert_eq!(snap.is_empty(), !made, "the region, or nothing (this host)");
    assert!(snap.range(snap.len()).is_none(), "past count");
    assert!(snap.range(usize::MAX).is_none());
    if made {
        let r = snap.range(0).unwrap();
        assert_eq!(r.slot, 5);
        assert_eq!(r.userspace_addr, mem.addr());
        assert_eq!(r.memory_size, SLOT_LEN as u64);
        assert_eq!(
            r.why & kvmnc::sys::KVMNC_RANGE_REGION,
            kvmnc::sys::KVMNC_RANGE_REGION
        );
        assert_eq!(snap.ranges().next(), Some(r));
    }
    // The raw snapshot's stride is what the crate asked for.
    assert_eq!(
        snap.as_raw().range_sz,
        std::mem::size_of::<kvmnc::sys::kvmnc_range>()
    );
}

#[test]
fn handle_log_routing() {
    let _s = serial();
    let kvm = kvm_or_skip!("handle log");
    let vm = kvm::create_vm(&kvm).unwrap();
    let mem = GuestMem::new(SLOT_LEN).unwrap();
    let process = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = process.clone();
    kvmnc::set_log(LogLevel::Debug, move |_, msg| {
        sink.lock().unwrap().push(msg.to_string())
    });
    let h = std::sync::Arc::new(Handle::open(&vm).unwrap());
    let mine = std::sync::Arc::new(Mutex::new(Vec::<(LogLevel, String)>::new()));
    let sink = mine.clone();
    // Weak: a closure owning its handle would keep it open for ever.
    let weak = std::sync::Arc::downgrade(&h);
    h.set_log(LogLevel::Debug, move |level, msg| {
        // No library lock is held: calling the same handle is fine.
        if let Some(h) = weak.upgrade() {
            h.info().unwrap();
        }
        sink.lock().unwrap().push((level, msg.to_string()));
    })
    .unwrap();
    let slot = |n: u32| Region::new(n, 0, SLOT_LEN as u64, mem.addr());
    // A plain memslot made and deleted through the library: debug messages.
    // SAFETY: `mem` outlives the VM.
    unsafe { h.set_region(&slot(0)) }.unwrap();
    unsafe { h.set_region(&Region::delete(0)) }.unwrap();
    {
        let mine = mine.lock().unwrap();
        let process = process.lock().unwrap();
        println!("# handle: {mine:?}");
        assert!(
            mine.iter()
                .any(|(l, m)| *l == LogLevel::Debug && m.contains("slot 0")),
            "{mine:?}"
        );
        assert!(
            process.iter().any(|m| m.contains("handle on VM fd")),
            "what open said goes to the process callback: {process:?}"
        );
        assert!(
            !process.iter().any(|m| m.contains("slot 0")),
            "the handle's messages do not: {process:?}"
        );
    }

    // Above the handle's level: nowhere, not the process callback either.
    let quiet = std::sync::Arc::new(Mutex::new(0usize));
    let count = quiet.clone();
    h.set_log(LogLevel::Warn, move |_, _| *count.lock().unwrap() += 1)
        .unwrap();
    unsafe { h.set_region(&slot(1)) }.unwrap();
    unsafe { h.set_region(&Region::delete(1)) }.unwrap();
    assert_eq!(*quiet.lock().unwrap(), 0);
    // The library prints slot numbers with %#x: "slot 0x1".
    assert!(!process
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.contains("slot 0x1")));

    // A panicking closure loses its message and nothing else.
    h.set_log(LogLevel::Debug, |_, _| panic!("must not unwind into C"))
        .unwrap();
    quietly(|| {
        unsafe { h.set_region(&slot(2)) }.unwrap();
        unsafe { h.set_region(&Region::delete(2)) }.unwrap();
    });

    // Cleared: back to the process-wide callback.
    h.clear_log().unwrap();
    unsafe { h.set_region(&slot(3)) }.unwrap();
    unsafe { h.set_region(&Region::delete(3)) }.unwrap();
    assert!(process
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.contains("slot 0x3")));

    // Replaced while other threads' calls deliver: each message finds the
    // closure installed then, or none, never a freed one.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let h = h.clone();
            let addr = mem.addr();
            s.spawn(move || {
                for _ in 0..100 {
                    let r = Region::new(
                        10 + t,
                        u64::from(t) * SLOT_LEN as u64,
                        SLOT_LEN as u64,
                        addr,
                    );
                    // SAFETY: `mem` outlives the VM (the scope ends first).
                    unsafe { h.set_region(&r) }.unwrap();
                    unsafe { h.set_region(&Region::delete(10 + t)) }.unwrap();
                }
            });
        }
        for i in 0..200 {
            let hits = hits.clone();
            // A fresh closure each time, owning a heap allocation that a
            // use after free would read (valgrind, ASan).
            let tag = format!("closure {i}");
            h.set_log(LogLevel::Debug, move |_, _| {
                assert!(tag.starts_with("closure "));
                hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
            if i % 3 == 0 {
                h.clear_log().unwrap();
            }
        }
    });
    println!(
        "# {} messages reached a replaced-while-running closure",
        hits.load(std::sync::atomic::Ordering::Relaxed)
    );
    kvmnc::clear_log();
    let h = std::sync::Arc::try_unwrap(h).expect("the closure holds only a Weak");
    h.close().unwrap();
}

// ---- 1.3 ------------------------------------------------------------------

/// WBINVD emulation: the answer and the handle's state agree, the option
/// turns it on only where the kernel has it and leaves nothing otherwise.
#[test]
fn wbinvd_emulation_on_request() {
    let _s = serial();
    let kvm = kvm_or_skip!("WBINVD emulation");
    let f = kvmnc::probe().unwrap();
    let w = &f.wbinvd_emulation;
    println!(
        "# wbinvd_emulation: {:?} {} ({})",
        w.support, w.code, w.reason
    );
    assert_ne!(w.code, Reason::Unset, "a 1.3 library fills the code");
    assert_eq!(w.support.is_supported(), w.code == Reason::Supported);
    assert_eq!(w.support.is_supported(), f.wbinvd_emulation_cap == 251);
    // Unasked, never on.
    let vm = kvm::create_vm(&kvm).unwrap();
    let h = Handle::open(&vm).unwrap();
    let i = h.info().unwrap();
    assert!(!i.wbinvd_emulation);
    assert_eq!(i.open_flags, 0);
    drop(h);
    // Asked: on where the VM's answer is yes, EOPNOTSUPP (nothing open) otherwise.
    let vm = kvm::create_vm(&kvm).unwrap();
    let fds = kvm::count_fds();
    match OpenOptions::new().wbinvd(true).open(&vm) {
        Ok(h) => {
            let i = h.info().unwrap();
            assert!(i.wbinvd_emulation);
            assert_eq!(i.open_flags, kvmnc::sys::KVMNC_OPEN_WBINVD);
            assert!(h
                .features()
                .unwrap()
                .wbinvd_emulation
                .support
                .is_supported());
        }
        Err(e) => {
            assert!(e.is_unsupported(), "{e}");
            assert!(!w.support.is_supported());
            assert_eq!(kvm::count_fds(), fds, "nothing left open");
        }
    }
}

/// A display that maps VRAM uncached: no VM-wide mechanism, and forcing
/// one is a contradiction the library refuses before it tries anything.
#[test]
fn uc_vram_display_rules_out_vm_wide() {
    let _s = serial();
    let kvm = kvm_or_skip!("UC-VRAM display");
    let vm = kvm::create_vm(&kvm).unwrap();
    for m in [Mechanism::VirtioDevice, Mechanism::GuestPatQuirk] {
        let e = OpenOptions::new()
            .scope(Scope::VmIrreversible)
            .mechanism(Some(m))
            .uc_vram_display(true)
            .open(&vm)
            .unwrap_err();
        assert_eq!(e.errno(), errno::EINVAL, "{m}: {e}");
    }
    let h = OpenOptions::new()
        .scope(Scope::VmIrreversible)
        .uc_vram_display(true)
        .open(&vm)
        .unwrap();
    let i = h.info().unwrap();
    assert!(!i.quirk_disabled);
    assert_eq!(i.open_flags, kvmnc::sys::KVMNC_OPEN_UC_VRAM_DISPLAY);
    for m in [i.region_mechanism, i.device_mechanism]
        .into_iter()
        .flatten()
    {
        assert!(
            m == Mechanism::Native || m == Mechanism::MemslotFlag,
            "{m} is VM-wide"
        );
    }
    let f = h.features().unwrap();
    for s in [&f.virtio_device, &f.guest_pat_quirk] {
        assert!(!s.support.is_supported(), "{}", s.reason);
    }
}
