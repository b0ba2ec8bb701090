// SPDX-License-Identifier: LGPL-2.1-or-later
//! A tiny VMM that maps a virtio-gpu style blob the way crosvm does, on raw
//! fds: its own `KVM_CREATE_VM`, its own `KVM_SET_USER_MEMORY_REGION(2)` for
//! every memslot (crosvm's `set_user_memory_region()`), with libkvmnc's
//! `RegionPlan` around each one in place of crosvm's capability guess and
//! EINVAL retry. A real-mode guest writes the blob, reads it back, copies
//! the byte into plain RAM and halts.
//!
//! Output is TAP, like the C live tests (`tests/live/live.h`): `ok N - ...`,
//! `# ...` notes, `1..N`; exit 0 when every check passes, 1 when one fails,
//! 77 to skip where there is no usable /dev/kvm (0 with KVMNC_SKIP_EXIT=0,
//! for Meson). KVMNC_EXPECT names the kernel-tier row whose region
//! mechanism the handle must choose. On Intel VMX with EPT the memory type
//! of each EPT entry the guest's accesses made is read from the
//! kvm_mmu_set_spte tracepoint: WB without "ignore PAT" (0x6) where the
//! library says guest PAT is honored, WB|IPAT (0xe) elsewhere; on a VMX row
//! a missing tracefs fails, elsewhere that check is skipped with the reason.
//!
//! Usage: kvmnc-vmm-example [--scope slot|vm|vm-irreversible]

#[path = "../../kvmnc/tests/common/kvm.rs"]
mod kvm;
mod memtype;

use kvm::GuestMem;
use kvmnc::{Handle, Mechanism, MemFlags, MigrationMode, OpenOptions, Region, Scope};
use memtype::{Seen, SpteTrace, MT_WB, MT_WB_IPAT};
use std::fs::File;
use std::process::exit;

const RAM_SLOT: u32 = 0;
const BLOB_SLOT: u32 = 1;
const SLOT_LEN: u64 = 0x10000;
const BLOB_GPA: u64 = 0x10000;
const CODE_GPA: u64 = 0x1000;
const RESULT_GPA: u64 = 0x2000;
const MAGIC: u8 = 0x42;

// mov ax,0x1000; mov ds,ax; mov byte [0],0x42  (the blob, GPA 0x10000)
// mov al,[0]; xor bx,bx; mov ds,bx; mov [0x2000],al  (back into plain RAM)
// hlt
const GUEST_CODE: [u8; 21] = [
    0xb8, 0x00, 0x10, 0x8e, 0xd8, 0xc6, 0x06, 0x00, 0x00, MAGIC, 0xa0, 0x00, 0x00, 0x31, 0xdb,
    0x8e, 0xdb, 0xa2, 0x00, 0x20, 0xf4,
];

/// The region mechanism each kernel-tier row must give a VM-wide
/// irreversible handle: the "recommended" column of tests/live/live.h,
/// read by build.rs.
const EXPECT: &[(&str, Option<Mechanism>)] = include!(concat!(env!("OUT_DIR"), "/expect.rs"));

struct Tap {
    n: u32,
    failed: u32,
}

impl Tap {
    fn check(&mut self, ok: bool, what: &str) -> bool {
        self.n += 1;
        println!("{}ok {} - {what}", if ok { "" } else { "not " }, self.n);
        if !ok {
            self.failed += 1;
        }
        ok
    }

    fn skip(&mut self, what: &str, why: &str) {
        self.n += 1;
        println!("ok {} - {what} # SKIP {why}", self.n);
    }

    fn done(&self) -> ! {
        println!("1..{}", self.n);
        exit(if self.failed > 0 { 1 } else { 0 })
    }
}

fn skip(why: &str) -> ! {
    eprintln!("SKIP: {why}");
    println!("1..0 # SKIP {why}");
    let zero = std::env::var("KVMNC_SKIP_EXIT").map_or(false, |v| v == "0");
    exit(if zero { 0 } else { 77 })
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    println!("not ok 1 - {what}: {e}");
    println!("1..1");
    exit(1)
}

/// Whether the first flags line of /proc/cpuinfo lists `flag` (true when
/// it cannot be read: claim nothing about the host).
fn cpu_has(flag: &str) -> bool {
    let cpuinfo = match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(c) => c,
        Err(_) => return true,
    };
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    flags.split_whitespace().any(|f| f == flag)
}

/// The KVMNC_EXPECT row. Without one, a host whose CPU shows neither VMX
/// nor SVM (a paravirtual KVM, shadow paging) can honor guest PAT by no
/// means: "nohw".
fn expected() -> Option<&'static (&'static str, Option<Mechanism>)> {
    let row = match std::env::var("KVMNC_EXPECT") {
        Ok(r) if !r.is_empty() => r,
        _ if cpu_has("vmx") || cpu_has("svm") => return None,
        _ => "nohw".into(),
    };
    match EXPECT.iter().find(|e| e.0 == row) {
        Some(e) => Some(e),
        None => fail("KVMNC_EXPECT", format!("unknown row {row}")),
    }
}

/// The SPTE trace where EPT entries carry a memory type, or None after a
/// skip (or, on a VMX row, a failure) that says why not.
fn spte_trace(t: &mut Tap, f: &kvmnc::Features, vmx_row: bool) -> Option<SpteTrace> {
    const WHAT: &str = "EPT memory types of the guest's accesses";
    let why = if !cpu_has("vmx") {
        "not an Intel VMX host: only EPT entries carry the memory type".to_string()
    } else if f.tdp == Ok(false) {
        // The library claims nothing under shadow paging; nothing to read.
        t.skip(
            WHAT,
            "shadow paging (kvm_intel.ept=N) has no EPT memory type",
        );
        return None;
    } else {
        match SpteTrace::start() {
            Ok(trace) => return Some(trace),
            Err(why) => why,
        }
    };
    if vmx_row {
        t.check(false, &format!("{WHAT}: {why}"));
    } else {
        t.skip(WHAT, &why);
    }
    None
}

/// crosvm's `set_user_memory_region()` with a handle: plan, the VMM's own
/// ioctl with the planned flags, the outcome. Deletes go the same way.
fn set_user_memory_region(
    h: &Handle,
    vm: &File,
    region: &Region,
) -> kvmnc::Result<Option<Mechanism>> {
    let plan = h.prepare_region(region)?;
    let mechanism = plan.mechanism();
    // SAFETY: the example's guest memory outlives the VM (dropped after it).
    let ret = unsafe {
        kvm::set_user_memory_region(
            vm,
            region.slot(),
            plan.flags().bits(),
            region.guest_phys_addr(),
            region.memory_size(),
            region.userspace_addr(),
        )
    };
    // Read KVM's answer before anything else makes a system call.
    plan.complete(ret)?;
    match ret {
        Ok(()) => Ok(mechanism),
        Err(e) => Err(kvmnc::Error::from_errno(e)),
    }
}

fn main() {
    let mut scope = Scope::VmIrreversible;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {}
        ["--scope", "slot"] => scope = Scope::Slot,
        ["--scope", "vm"] => scope = Scope::Vm,
        ["--scope", "vm-irreversible"] => scope = Scope::VmIrreversible,
        _ => {
            eprintln!("usage: kvmnc-vmm-example [--scope slot|vm|vm-irreversible]");
            exit(2)
        }
    }

    let kvm = kvm::open_kvm().unwrap_or_else(|e| {
        skip(&format!(
            "{}: {e} (needs a KVM host and permission)",
            kvm::kvm_path()
        ))
    });
    let fds = kvm::count_fds();
    let mut t = Tap { n: 0, failed: 0 };
    println!(
        "# libkvmnc {}, kvmnc crate {}",
        kvmnc::version(),
        env!("CARGO_PKG_VERSION")
    );

    // KvmVm::new(): the VMM's own KVM_CREATE_VM, then the handle before any
    // memslot or vCPU. Not .kvm_fd(): that promises no path is opened, and
    // what only /sys says (NPT in use, where the quirk mask cannot tell, as
    // on Debian's 6.1) would then be unknown; a VMM that is not yet
    // sandboxed gets the whole answer.
    let vm = kvm::create_vm(&kvm).unwrap_or_else(|e| fail("KVM_CREATE_VM", e));
    let h = OpenOptions::new()
        .scope(scope)
        .open(&vm)
        .unwrap_or_else(|e| fail("kvmnc open", e));
    let f = h.features().unwrap_or_else(|e| fail("features", e));
    let info = h.info().unwrap_or_else(|e| fail("info", e));
    println!(
        "# kernel {}, vendor {}, scope {scope:?}",
        f.kernel_release, f.cpu_vendor
    );
    for m in Mechanism::ALL {
        let s = f.status(m);
        println!("# {m}: {} {}", s.support.as_raw(), s.reason);
    }
    println!(
        "# recommended {}, regions use {}, quirk disabled {}",
        kvmnc::mechanism_name(f.recommended),
        kvmnc::mechanism_name(info.region_mechanism),
        info.quirk_disabled
    );
    let row = expected();
    if let Some((name, want)) = row {
        println!("# expecting {name}");
        if scope == Scope::VmIrreversible {
            t.check(
                info.region_mechanism == *want,
                &format!("regions use {} as expected", kvmnc::mechanism_name(*want)),
            );
        }
    }
    // VmCap::MemNoncoherentDma, answered from the handle: the device model
    // tells the guest to map blobs WC only where KVM will honor it.
    let honored = info.region_mechanism.is_some();
    println!(
        "# blobs: the guest is told to map them {}",
        if honored { "WC" } else { "WB (cached)" }
    );

    let mut ram = GuestMem::new(SLOT_LEN as usize).unwrap_or_else(|e| fail("mmap", e));
    let blob = GuestMem::new(SLOT_LEN as usize).unwrap_or_else(|e| fail("mmap", e));
    ram.as_mut_slice()[CODE_GPA as usize..][..GUEST_CODE.len()].copy_from_slice(&GUEST_CODE);

    // Plain RAM goes through the same function, as in crosvm.
    let r = set_user_memory_region(&h, &vm, &Region::new(RAM_SLOT, 0, SLOT_LEN, ram.addr()));
    t.check(
        r == Ok(None),
        "plain RAM: planned, the VMM's ioctl, completed",
    );

    // resource_map_blob(): MemCacheType::CacheNonCoherent becomes the flag
    // crosvm sets; the plan keeps it only where the flag is the mechanism.
    let nc =
        Region::new(BLOB_SLOT, BLOB_GPA, SLOT_LEN, blob.addr()).flags(MemFlags::NON_COHERENT_DMA);
    let blob_mechanism = match set_user_memory_region(&h, &vm, &nc) {
        Ok(m) => {
            println!(
                "# blob slot {BLOB_SLOT} at {BLOB_GPA:#x}: non-coherent via {}",
                kvmnc::mechanism_name(m)
            );
            t.check(
                m == info.region_mechanism,
                "blob: honored by the handle's mechanism",
            );
            m
        }
        Err(e) if e.is_unsupported() => {
            // No retry behind the device's back: the blob is plain memory
            // and the guest was told so (above). Say why.
            println!(
                "# blob slot {BLOB_SLOT} at {BLOB_GPA:#x}: no mechanism: {}",
                f.memslot_flag.reason
            );
            t.check(!honored, "blob: refused only where no mechanism exists");
            let plain = Region::new(BLOB_SLOT, BLOB_GPA, SLOT_LEN, blob.addr());
            let r = set_user_memory_region(&h, &vm, &plain);
            t.check(r == Ok(None), "blob registered as plain memory");
            None
        }
        Err(e) => fail("blob memslot", e),
    };

    // The trace is on before the first run: every EPT entry the guest's
    // accesses make is new, made under the rules the library set up.
    let vmx_row = row.map_or(false, |(name, _)| name.contains("vmx"));
    let trace = spte_trace(&mut t, &f, vmx_row);
    if let Some(tr) = &trace {
        tr.clear();
    }
    let exit_reason = kvm::run_real_mode(&kvm, &vm, CODE_GPA);
    t.check(
        matches!(exit_reason, Ok(kvm::KVM_EXIT_HLT)),
        &format!("guest runs to HLT (exit {exit_reason:?})"),
    );
    if let Some(tr) = trace {
        // Where the library says guest PAT is honored: VM-wide once it
        // disabled the quirk or holds a VIRTIO device for regions; for the
        // blob alone where the memslot flag carries it.
        let now = h.info().unwrap_or_else(|e| fail("info", e));
        let vm_wide = now.quirk_disabled
            || (now.region_mechanism == Some(Mechanism::VirtioDevice)
                && now.noncoherent_regions > 0);
        let text = tr.text();
        drop(tr);
        let slots = [
            ("plain RAM", 0, vm_wide),
            (
                "blob",
                BLOB_GPA,
                vm_wide || blob_mechanism == Some(Mechanism::MemslotFlag),
            ),
        ];
        for (name, gpa, honored) in slots {
            let (seen, n) = memtype::collect(&text, gpa, SLOT_LEN);
            let want = if honored { MT_WB } else { MT_WB_IPAT };
            println!("# {name}: {n} SPTE(s), memory type {seen}");
            t.check(
                seen == Seen::All(want),
                &format!(
                    "{name} SPTEs are {want:#x} ({}), got {seen}",
                    if honored {
                        "WB, guest PAT honored"
                    } else {
                        "WB|IPAT"
                    }
                ),
            );
        }
    }
    let mut byte = [0u8];
    let r = h.copy_from_guest(&mut byte, &blob.as_slice()[..1]);
    t.check(
        r.is_ok() && byte[0] == MAGIC,
        "the guest's blob write, read coherently",
    );
    t.check(
        ram.as_slice()[RESULT_GPA as usize] == MAGIC,
        "the guest read the blob back into plain RAM",
    );

    t.check(
        h.is_noncoherent() == Ok(honored),
        "is_noncoherent follows the blob",
    );
    t.check(
        h.gpa_is_noncoherent(0, BLOB_GPA, 1) == Ok(honored)
            && h.gpa_is_noncoherent(0, 0, SLOT_LEN) == Ok(false),
        "per-address answers: the blob, not the RAM",
    );
    match h.snapshot() {
        Ok(s) => {
            let advice = s.advise(MigrationMode::Precopy);
            println!("# migration: {} range(s), {:?}", s.ranges().count(), advice);
            t.check(
                s.ranges().count() == usize::from(honored),
                "snapshot ranges",
            );
        }
        Err(e) => fail("snapshot", e),
    }

    // remove_memory_region(): planned deletes, size 0.
    for slot in [BLOB_SLOT, RAM_SLOT] {
        let r = set_user_memory_region(&h, &vm, &Region::delete(slot));
        t.check(r.is_ok(), &format!("slot {slot} deleted through a plan"));
    }
    if info.region_mechanism != Some(Mechanism::GuestPatQuirk) {
        t.check(h.is_noncoherent() == Ok(false), "nothing non-coherent left");
    }
    // The handle goes before the VM, as crosvm's KvmVm drops it.
    t.check(h.close().is_ok(), "close");
    drop(vm);
    t.check(kvm::count_fds() == fds, "no fd left behind");
    t.done()
}
