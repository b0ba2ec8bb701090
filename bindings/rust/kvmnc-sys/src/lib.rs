// SPDX-License-Identifier: LGPL-2.1-or-later
//! Raw FFI declarations of libkvmnc 1.3, written by hand from
//! `include/kvmnc.h`: the same names, types and values, nothing added.
//!
//! Use the safe `kvmnc` crate unless you need the C API itself. The
//! reference for every item is the header and its man pages
//! (`man 3 kvmnc_open`, `man 7 libkvmnc`); the comments here say only what
//! is particular to Rust.
//!
//! `tests/header.rs` compiles the header with the system C compiler and
//! fails when any struct size, field offset, field size, constant or
//! function signature here differs from it, or when a function of
//! `libkvmnc.map` is not declared.
//!
//! Extensible structs implement [`Default`] as the C macro
//! `KVMNC_OPTS_INIT()` does: all zero, with `sz` set to the size of the
//! struct as declared here.
//!
//! ```
//! use kvmnc_sys::*;
//! // The library's version at run time, as a C string.
//! let v = unsafe { std::ffi::CStr::from_ptr(kvmnc_version()) };
//! assert!(v.to_str().unwrap().starts_with("1."));
//! let opts = kvmnc_open_opts { scope: KVMNC_SCOPE_VM, ..Default::default() };
//! assert_eq!(opts.sz, std::mem::size_of::<kvmnc_open_opts>());
//! ```
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

use std::mem::{size_of, zeroed};
// std::os::raw rather than core::ffi: the C integer types reached core only
// in Rust 1.64, and this crate builds with 1.63.
pub use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Library version this crate declares (`KVMNC_VERSION_MAJOR`).
pub const KVMNC_VERSION_MAJOR: u32 = 1;
/// `KVMNC_VERSION_MINOR`.
pub const KVMNC_VERSION_MINOR: u32 = 3;
/// `KVMNC_VERSION_PATCH`.
pub const KVMNC_VERSION_PATCH: u32 = 0;

/// Opaque per-VM handle (`struct kvmnc`).
#[repr(C)]
pub struct kvmnc {
    _private: [u8; 0],
}

/// `enum kvmnc_mechanism`, as the `int` fields that carry it.
pub type kvmnc_mechanism = c_int;
/// `KVMNC_MECH_NONE`.
pub const KVMNC_MECH_NONE: c_int = 0;
/// `KVMNC_MECH_NATIVE`.
pub const KVMNC_MECH_NATIVE: c_int = 1;
/// `KVMNC_MECH_MEMSLOT_FLAG`.
pub const KVMNC_MECH_MEMSLOT_FLAG: c_int = 2;
/// `KVMNC_MECH_VIRTIO_DEVICE`.
pub const KVMNC_MECH_VIRTIO_DEVICE: c_int = 3;
/// `KVMNC_MECH_GUEST_PAT_QUIRK`.
pub const KVMNC_MECH_GUEST_PAT_QUIRK: c_int = 4;

/// `enum kvmnc_scope`.
pub type kvmnc_scope = c_int;
/// `KVMNC_SCOPE_SLOT`.
pub const KVMNC_SCOPE_SLOT: c_int = 0;
/// `KVMNC_SCOPE_VM`.
pub const KVMNC_SCOPE_VM: c_int = 1;
/// `KVMNC_SCOPE_VM_IRREVERSIBLE`.
pub const KVMNC_SCOPE_VM_IRREVERSIBLE: c_int = 2;

/// `KVMNC_REASON_MAX`: the size of every reason buffer, NUL included.
pub const KVMNC_REASON_MAX: usize = 256;

/// `struct kvmnc_mech_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_mech_status {
    /// 1 supported, 0 not supported, negative errno: could not tell.
    pub supported: c_int,
    /// Why, in one NUL-terminated sentence.
    pub reason: [c_char; KVMNC_REASON_MAX],
}

/// `struct kvmnc_features`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_features {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// The hardware honors guest PAT already (AMD NPT, TDX).
    pub native: kvmnc_mech_status,
    /// `KVM_MEM_NON_COHERENT_DMA` on a memslot.
    pub memslot_flag: kvmnc_mech_status,
    /// `KVM_DEV_TYPE_VIRTIO` devices.
    pub virtio_device: kvmnc_mech_status,
    /// `KVM_X86_QUIRK_IGNORE_GUEST_PAT` disabled.
    pub guest_pat_quirk: kvmnc_mech_status,
    /// Narrowest supported mechanism (enum kvmnc_mechanism).
    pub recommended: c_int,
    /// KVM_GET_API_VERSION; 0 when the answer came from a VM fd alone (no node).
    pub kvm_api_version: c_int,
    /// uname -r, NUL-terminated.
    pub kernel_release: [c_char; 65],
    /// CPUID vendor string ("GenuineIntel", ...), empty off x86.
    pub cpu_vendor: [c_char; 13],
    /// CPU self-snoop: 1, 0, or -1 where not applicable.
    pub self_snoop: c_int,
    /// EPT/NPT in use by KVM: 1, 0, or negative errno if unknown.
    pub tdp: c_int,
    /// KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2): quirks that can be disabled.
    pub quirks_mask: u64,
    /// Capability that advertised the memslot flag, 0 if none: 236 (ChromeOS 5.15-6.6), 239 (ChromeOS 6.12, the series' 6.12 backport) or 250 (the series on Linux 7.2; since 1.3).
    pub memslot_flag_cap: u32,
    /// The KVM device type that proved to be the VIRTIO device: 32 (the series' 6.12 backport), 17 (the series on Linux 7.2; since 1.3) or 12 (the RFC as posted); 0 when none did. (1.0 reported the number it tried, 32, whatever the answer.)
    pub virtio_device_type: u32,
    /// KVM_CHECK_EXTENSION(KVM_CAP_VM_TYPES): bit n set when VM type n can be created.
    pub vm_types: u32,
    /// KVMNC_VM_* facts of the VM the answers are for (a handle's); 0 for a scratch VM.
    pub vm_flags: u32,
    /// Memslot address spaces and user memslot ids per space, as KVM answers; 0 unknown.
    pub address_spaces: u32,
    /// User memslot ids per address space, as KVM answers; 0 unknown.
    pub memslots: u32,
    /// Where the flag and device trials ran (KVMNC_PROBED_*).
    pub probed_on: c_int,
    /// Since 1.2: what memslot_flag's "yes" rests on (KVMNC_FLAG_EVIDENCE_*). Bit 3 of the memslot flags is claimed by more than one series, so a kernel that accepts it has not thereby said what it means.
    pub memslot_flag_evidence: u32,
    /// Since 1.2: why `native` is what it is (enum kvmnc_reason); 0 from a library before 1.2.
    pub native_reason: u32,
    /// Since 1.2: why `memslot_flag` is what it is (enum kvmnc_reason).
    pub memslot_flag_reason: u32,
    /// Since 1.2: why `virtio_device` is what it is (enum kvmnc_reason).
    pub virtio_device_reason: u32,
    /// Since 1.2: why `guest_pat_quirk` is what it is (enum kvmnc_reason).
    pub guest_pat_quirk_reason: u32,
    /// Since 1.3: can KVM emulate the guest's WBINVD for this VM on request (`KVM_CAP_X86_EMULATE_WBINVD`; `kvmnc_open()` with `KVMNC_OPEN_WBINVD`)? Not a mechanism, never recommended.
    pub wbinvd_emulation: kvmnc_mech_status,
    /// Since 1.3: why `wbinvd_emulation` is what it is (enum kvmnc_reason).
    pub wbinvd_emulation_reason: u32,
    /// Since 1.3: the capability that answered (251), 0 when none did.
    pub wbinvd_emulation_cap: u32,
}

/// `enum kvmnc_reason`, as the `uint32_t` `kvmnc_features::*_reason` fields
/// carry it (docs/reasons.tsv is the table; the values never change).
pub type kvmnc_reason = u32;
/// `KVMNC_REASON_UNSET`: not filled in (a library before 1.2).
pub const KVMNC_REASON_UNSET: u32 = 0;
/// `KVMNC_REASON_SUPPORTED`.
pub const KVMNC_REASON_SUPPORTED: u32 = 1;
/// `KVMNC_REASON_COULD_NOT_TELL`: `supported` is the errno that stopped the probe.
pub const KVMNC_REASON_COULD_NOT_TELL: u32 = 2;
/// `KVMNC_REASON_KERNEL_LACKS`.
pub const KVMNC_REASON_KERNEL_LACKS: u32 = 3;
/// `KVMNC_REASON_ARCH`: not x86.
pub const KVMNC_REASON_ARCH: u32 = 4;
/// `KVMNC_REASON_IGNORES_GUEST_PAT`: native on Intel VMX.
pub const KVMNC_REASON_IGNORES_GUEST_PAT: u32 = 5;
/// `KVMNC_REASON_UNKNOWN_VENDOR`.
pub const KVMNC_REASON_UNKNOWN_VENDOR: u32 = 6;
/// `KVMNC_REASON_NO_TDP`: shadow paging.
pub const KVMNC_REASON_NO_TDP: u32 = 7;
/// `KVMNC_REASON_NO_SELF_SNOOP`.
pub const KVMNC_REASON_NO_SELF_SNOOP: u32 = 8;
/// `KVMNC_REASON_NATIVE_ALREADY`.
pub const KVMNC_REASON_NATIVE_ALREADY: u32 = 9;
/// `KVMNC_REASON_OTHER_MEANING`: memslot bit 3 means something else here.
pub const KVMNC_REASON_OTHER_MEANING: u32 = 10;
/// `KVMNC_REASON_VM_TYPE`: the host has it, this VM's type refuses it.
pub const KVMNC_REASON_VM_TYPE: u32 = 11;
/// `KVMNC_REASON_UC_VRAM_DISPLAY` (since 1.3): a VM-wide mechanism ruled out for a handle opened with `KVMNC_OPEN_UC_VRAM_DISPLAY`.
pub const KVMNC_REASON_UC_VRAM_DISPLAY: u32 = 12;

/// `enum kvmnc_flag_evidence` (`kvmnc_features::memslot_flag_evidence`).
pub type kvmnc_flag_evidence = u32;
/// `KVMNC_FLAG_EVIDENCE_NONE`.
pub const KVMNC_FLAG_EVIDENCE_NONE: u32 = 0;
/// `KVMNC_FLAG_EVIDENCE_CAPABILITY`.
pub const KVMNC_FLAG_EVIDENCE_CAPABILITY: u32 = 1;
/// `KVMNC_FLAG_EVIDENCE_ACCESS`.
pub const KVMNC_FLAG_EVIDENCE_ACCESS: u32 = 2;

/// `KVMNC_VM_PRIVATE_MEMORY` (`kvmnc_features::vm_flags`).
pub const KVMNC_VM_PRIVATE_MEMORY: u32 = 1 << 0;
/// `KVMNC_VM_PROTECTED_STATE`.
pub const KVMNC_VM_PROTECTED_STATE: u32 = 1 << 1;

/// `enum kvmnc_probed_on` (`kvmnc_features::probed_on`).
pub type kvmnc_probed_on = c_int;
/// `KVMNC_PROBED_NOWHERE`.
pub const KVMNC_PROBED_NOWHERE: c_int = 0;
/// `KVMNC_PROBED_SCRATCH_VM`.
pub const KVMNC_PROBED_SCRATCH_VM: c_int = 1;
/// `KVMNC_PROBED_CALLER_VM`.
pub const KVMNC_PROBED_CALLER_VM: c_int = 2;

/// `struct kvmnc_open_opts`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_open_opts {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// enum kvmnc_scope; 0 is KVMNC_SCOPE_SLOT.
    pub scope: c_int,
    /// 0 (KVMNC_MECH_NONE): choose automatically; otherwise use exactly this mechanism or fail with -EOPNOTSUPP.
    pub mechanism: c_int,
    /// The KVM node the VM came from; NULL: "/dev/kvm". With KVMNC_OPEN_KVM_FD it only names the node for the probe cache.
    pub dev_path: *const c_char,
    /// KVMNC_OPEN_*.
    pub flags: u32,
    /// With KVMNC_OPEN_KVM_FD: the caller's fd of the KVM node (kept open by the caller; the library only issues ioctls on it during kvmnc_open()).
    pub kvm_fd: c_int,
}

/// `KVMNC_OPEN_DEVICES`.
pub const KVMNC_OPEN_DEVICES: u32 = 1 << 0;
/// `KVMNC_OPEN_KVM_FD`.
pub const KVMNC_OPEN_KVM_FD: u32 = 1 << 1;
/// `KVMNC_OPEN_WBINVD` (since 1.3): turn on guest WBINVD emulation for the VM, before any vCPU exists. Every guest WBINVD then flushes the caches of every host CPU the vCPUs ran on, a cost to other tenants; see `man 3 kvmnc_open_opts`.
pub const KVMNC_OPEN_WBINVD: u32 = 1 << 2;
/// `KVMNC_OPEN_UC_VRAM_DISPLAY` (since 1.3): the machine has a display whose guest driver maps VRAM uncached (bochs-display, std VGA): no VM-wide mechanism (QEMU's rule "i386/kvm: Honor guest PAT on x86, absent Bochs display").
pub const KVMNC_OPEN_UC_VRAM_DISPLAY: u32 = 1 << 3;

/// `struct kvmnc_handle_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_handle_info {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// Mechanism non-coherent regions use (enum kvmnc_mechanism).
    pub region_mechanism: c_int,
    /// Mechanism kvmnc_device_enable() uses (enum kvmnc_mechanism).
    pub device_mechanism: c_int,
    /// The scope the handle was opened with.
    pub scope: c_int,
    /// 1 once the library disabled KVM_X86_QUIRK_IGNORE_GUEST_PAT on this VM.
    pub quirk_disabled: c_int,
    /// Non-coherent regions registered.
    pub noncoherent_regions: u32,
    /// Devices enabled.
    pub enabled_devices: u32,
    /// KVM_CAP_DISABLE_QUIRKS2 as answered by this VM.
    pub vm_quirks_mask: u64,
    /// Since 1.3: 1 once the library turned on guest WBINVD emulation (KVMNC_OPEN_WBINVD).
    pub wbinvd_emulation: c_int,
    /// Since 1.3: the KVMNC_OPEN_* flags the handle was opened with.
    pub open_flags: u32,
}

/// `KVMNC_MEM_LOG_DIRTY_PAGES`.
pub const KVMNC_MEM_LOG_DIRTY_PAGES: u32 = 1 << 0;
/// `KVMNC_MEM_READONLY`.
pub const KVMNC_MEM_READONLY: u32 = 1 << 1;
/// `KVMNC_MEM_GUEST_MEMFD`.
pub const KVMNC_MEM_GUEST_MEMFD: u32 = 1 << 2;
/// `KVMNC_MEM_NON_COHERENT_DMA`.
pub const KVMNC_MEM_NON_COHERENT_DMA: u32 = 1 << 3;

/// `KVMNC_REGION_NONCOHERENT` (`kvmnc_region::kvmnc_flags`).
pub const KVMNC_REGION_NONCOHERENT: u32 = 1 << 0;

/// `struct kvmnc_region`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_region {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// Address space in bits 16-31, slot id in bits 0-15, as KVM.
    pub slot: u32,
    /// KVMNC_MEM_* flags; the non-coherent flag goes in kvmnc_flags.
    pub flags: u32,
    /// Guest physical address.
    pub guest_phys_addr: u64,
    /// 0 deletes the slot.
    pub memory_size: u64,
    /// Host address of the backing memory.
    pub userspace_addr: u64,
    /// With KVMNC_MEM_GUEST_MEMFD only.
    pub guest_memfd_offset: u64,
    /// The guest_memfd, with `KVMNC_MEM_GUEST_MEMFD`.
    pub guest_memfd: i32,
    /// KVMNC_REGION_*.
    pub kvmnc_flags: u32,
}

/// `struct kvmnc_region_plan`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_region_plan {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// The memslot flags to pass to KVM: the region's, plus add_flags.
    pub flags: u32,
    /// What the library added: KVMNC_MEM_NON_COHERENT_DMA with the memslot flag, 0 otherwise.
    pub add_flags: u32,
    /// The mechanism that covers the region (enum kvmnc_mechanism); for a plain region KVMNC_MECH_NONE.
    pub mechanism: c_int,
    /// 1 when kvmnc_region_prepare() took a VM-wide step for this region (created the VIRTIO device that covers regions); a failure reported to kvmnc_region_complete() undoes it.
    pub vm_wide_step: c_int,
}

/// `KVMNC_RANGE_REGION` (`kvmnc_range::why`).
pub const KVMNC_RANGE_REGION: u32 = 1 << 0;
/// `KVMNC_RANGE_PLANNED`.
pub const KVMNC_RANGE_PLANNED: u32 = 1 << 1;
/// `KVMNC_RANGE_DEVICE`.
pub const KVMNC_RANGE_DEVICE: u32 = 1 << 2;
/// `KVMNC_RANGE_ANY`.
pub const KVMNC_RANGE_ANY: u32 = 1 << 3;
/// `KVMNC_RANGE_ANY_SLOT`.
pub const KVMNC_RANGE_ANY_SLOT: u32 = 0xffff_ffff;

/// `struct kvmnc_range`: no `sz`; the snapshot's `range_sz` is its stride.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct kvmnc_range {
    /// As in struct kvmnc_region: address space in bits 16-31, id in 0-15.
    pub slot: u32,
    /// KVMNC_RANGE_*.
    pub why: u32,
    /// Guest physical address.
    pub guest_phys_addr: u64,
    /// Size in bytes.
    pub memory_size: u64,
    /// Host address.
    pub userspace_addr: u64,
    /// How KVM honors guest PAT there (enum kvmnc_mechanism): the memslot flag, the VIRTIO device, the guest-PAT quirk, native. The region mechanism for regions, the device mechanism for the rest.
    pub mechanism: i32,
}

/// `struct kvmnc_snapshot`: allocated by the library, read-only to callers.
#[repr(C)]
#[derive(Debug)]
pub struct kvmnc_snapshot {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// Compare with kvmnc_snapshot_stale(): new with every change of the state.
    pub generation: u64,
    /// count ranges, sorted by userspace_addr, each range_sz bytes apart.
    pub ranges: *const kvmnc_range,
    /// Number of ranges.
    pub count: usize,
    /// Stride of `ranges` in bytes (the caller's `size_of::<kvmnc_range>()`).
    pub range_sz: usize,
    /// Devices enabled.
    pub enabled_devices: u32,
    /// Non-coherent regions KVM holds, and those planned (KVMNC_RANGE_PLANNED).
    pub noncoherent_regions: u32,
    /// Non-coherent regions planned and not yet completed.
    pub planned_regions: u32,
    /// The handle's region mechanism.
    pub region_mechanism: c_int,
    /// The handle's device mechanism.
    pub device_mechanism: c_int,
    /// 0 when this CPU has what the copy helpers need, else the error they return for non-coherent memory (-EOPNOTSUPP: not x86, no CLFLUSH).
    pub cache_maintenance: c_int,
    /// "clflushopt", "clflush", "clwb" or "none": read side / write side's partial lines.
    pub invalidate_insn: *const c_char,
    /// Instruction for the write side's partial lines ("clwb", ...).
    pub writeback_insn: *const c_char,
}

/// `enum kvmnc_migration_mode`.
pub type kvmnc_migration_mode = c_int;
/// `KVMNC_MIGRATION_NONE`.
pub const KVMNC_MIGRATION_NONE: c_int = 0;
/// `KVMNC_MIGRATION_PRECOPY`.
pub const KVMNC_MIGRATION_PRECOPY: c_int = 1;
/// `KVMNC_MIGRATION_POSTCOPY`.
pub const KVMNC_MIGRATION_POSTCOPY: c_int = 2;

/// `enum kvmnc_migration_action`.
pub type kvmnc_migration_action = c_int;
/// `KVMNC_MIGRATE_PLAIN`.
pub const KVMNC_MIGRATE_PLAIN: c_int = 0;
/// `KVMNC_MIGRATE_COHERENT`.
pub const KVMNC_MIGRATE_COHERENT: c_int = 1;
/// `KVMNC_MIGRATE_BLOCK`.
pub const KVMNC_MIGRATE_BLOCK: c_int = 2;

/// `KVMNC_ADVICE_RESEND` (`kvmnc_migration_advice::flags`).
pub const KVMNC_ADVICE_RESEND: u32 = 1 << 0;
/// `KVMNC_ADVICE_POSTCOPY_ORDER`.
pub const KVMNC_ADVICE_POSTCOPY_ORDER: u32 = 1 << 1;

/// `struct kvmnc_migration_advice`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_migration_advice {
    /// The size of the struct the caller knows: `size_of::<Self>()` (set by `Default`).
    pub sz: usize,
    /// enum kvmnc_migration_action.
    pub action: c_int,
    /// KVMNC_ADVICE_*.
    pub flags: u32,
    /// Why, in one NUL-terminated sentence (for a migration blocker's message).
    pub reason: [c_char; KVMNC_REASON_MAX],
}

/// `enum kvmnc_log_level`.
pub type kvmnc_log_level = c_int;
/// `KVMNC_LOG_ERROR`.
pub const KVMNC_LOG_ERROR: c_int = 0;
/// `KVMNC_LOG_WARN`.
pub const KVMNC_LOG_WARN: c_int = 1;
/// `KVMNC_LOG_INFO`.
pub const KVMNC_LOG_INFO: c_int = 2;
/// `KVMNC_LOG_DEBUG`.
pub const KVMNC_LOG_DEBUG: c_int = 3;

/// `kvmnc_log_fn`. The library may call it from any thread of the process;
/// an unwinding panic must not cross it.
pub type kvmnc_log_fn = unsafe extern "C" fn(level: c_int, msg: *const c_char, ctx: *mut c_void);

// Zeroed as KVMNC_OPTS_INIT() makes them: every field is an integer, an
// array of them or a raw pointer, for which all-zero bytes are valid.
macro_rules! opts_default {
    ($($t:ident),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                // SAFETY: all-zero bytes are a valid value of every field.
                let mut s: Self = unsafe { zeroed() };
                s.sz = size_of::<Self>();
                s
            }
        }
    )*};
}
opts_default!(
    kvmnc_features,
    kvmnc_open_opts,
    kvmnc_handle_info,
    kvmnc_region,
    kvmnc_region_plan,
    kvmnc_migration_advice
);

impl Default for kvmnc_mech_status {
    fn default() -> Self {
        // SAFETY: integers and an array of c_char: all-zero bytes are valid.
        unsafe { zeroed() }
    }
}

// The signatures follow the header line by line; tests/header.rs checks
// each against the C declaration with __builtin_types_compatible_p.
extern "C" {
    /// Probes a KVM node (`NULL`: `/dev/kvm`); 0 or a negative errno.
    pub fn kvmnc_probe(dev_path: *const c_char, out: *mut kvmnc_features) -> c_int;
    /// Opens a handle on a VM fd, which the caller keeps open until `kvmnc_close()`.
    pub fn kvmnc_open(vm_fd: c_int, opts: *const kvmnc_open_opts, out: *mut *mut kvmnc) -> c_int;
    /// Closes a handle (NULL accepted) and the KVM devices it created.
    pub fn kvmnc_close(h: *mut kvmnc) -> c_int;
    /// What a handle chose and holds.
    pub fn kvmnc_get_info(h: *mut kvmnc, info: *mut kvmnc_handle_info) -> c_int;
    /// The host facts as they apply to the handle's VM.
    pub fn kvmnc_get_features(h: *mut kvmnc, out: *mut kvmnc_features) -> c_int;
    /// Creates, moves or deletes a memslot through the library.
    pub fn kvmnc_set_region(h: *mut kvmnc, r: *const kvmnc_region) -> c_int;
    /// Plans a memslot change the caller makes with its own ioctl.
    pub fn kvmnc_region_prepare(
        h: *mut kvmnc,
        r: *const kvmnc_region,
        plan: *mut kvmnc_region_plan,
    ) -> c_int;
    /// Reports KVM's answer (0 or a negative errno) to a planned change.
    pub fn kvmnc_region_complete(h: *mut kvmnc, slot: u32, result: c_int) -> c_int;
    /// The caller deleted a memslot outside a plan: forget it.
    pub fn kvmnc_region_removed(h: *mut kvmnc, slot: u32) -> c_int;
    /// The VMM will not issue the ioctl it planned for `slot` (since 1.2).
    pub fn kvmnc_region_abort(h: *mut kvmnc, slot: u32) -> c_int;
    /// The VMM's memslots are exactly these `n` slot ids (since 1.2); how many were forgotten.
    pub fn kvmnc_region_resync(h: *mut kvmnc, slots: *const u32, n: usize) -> c_int;
    /// Declares a device model that does non-coherent DMA anywhere.
    pub fn kvmnc_device_enable(h: *mut kvmnc, device_id: u32) -> c_int;
    /// Undoes `kvmnc_device_enable()`.
    pub fn kvmnc_device_disable(h: *mut kvmnc, device_id: u32) -> c_int;
    /// Keeps the VM-wide mechanism for regions in force until disarm or close (since 1.2).
    pub fn kvmnc_vm_wide_arm(h: *mut kvmnc) -> c_int;
    /// Ends `kvmnc_vm_wide_arm()` (since 1.2); 0 also when not armed.
    pub fn kvmnc_vm_wide_disarm(h: *mut kvmnc) -> c_int;
    /// 1 while the VM holds memory declared non-coherent, 0 when not.
    pub fn kvmnc_is_noncoherent(h: *mut kvmnc) -> c_int;
    /// Copies guest memory out, seeing what non-snooping devices wrote.
    pub fn kvmnc_copy_from_guest(
        h: *mut kvmnc,
        dst: *mut c_void,
        src: *const c_void,
        len: usize,
    ) -> c_int;
    /// Copies into guest memory so that non-snooping devices see it.
    pub fn kvmnc_copy_to_guest(
        h: *mut kvmnc,
        dst: *mut c_void,
        src: *const c_void,
        len: usize,
    ) -> c_int;
    /// Writes back and invalidates the non-coherent lines of a range.
    pub fn kvmnc_flush(h: *mut kvmnc, addr: *const c_void, len: usize) -> c_int;
    /// 1 when any byte of a host range is non-coherent guest memory.
    pub fn kvmnc_hva_is_noncoherent(h: *mut kvmnc, hva: *const c_void, len: usize) -> c_int;
    /// 1 when any byte of a guest physical range is non-coherent.
    pub fn kvmnc_gpa_is_noncoherent(h: *mut kvmnc, as_id: u32, gpa: u64, len: u64) -> c_int;
    /// Takes a snapshot of the non-coherent state; free it with `kvmnc_snapshot_free()`.
    pub fn kvmnc_snapshot_take(
        h: *mut kvmnc,
        range_sz: usize,
        out: *mut *mut kvmnc_snapshot,
    ) -> c_int;
    /// 1 when the handle's state changed since the snapshot.
    pub fn kvmnc_snapshot_stale(h: *mut kvmnc, snap: *const kvmnc_snapshot) -> c_int;
    /// Frees a snapshot (NULL accepted).
    pub fn kvmnc_snapshot_free(snap: *mut kvmnc_snapshot);
    /// Range `i` of a snapshot, at the snapshot's stride; NULL past `count` (since 1.2).
    pub fn kvmnc_snapshot_range(snap: *const kvmnc_snapshot, i: usize) -> *const kvmnc_range;
    /// The migration policy for a snapshot and a migration mode.
    pub fn kvmnc_migration_advise(
        snap: *const kvmnc_snapshot,
        mode: c_int,
        out: *mut kvmnc_migration_advice,
    ) -> c_int;
    /// Installs the process-wide log callback (`None` removes it).
    pub fn kvmnc_set_log(fn_: Option<kvmnc_log_fn>, max_level: c_int, ctx: *mut c_void);
    /// Installs a handle's own log callback (since 1.2; `None`: back to the process-wide one).
    pub fn kvmnc_set_handle_log(
        h: *mut kvmnc,
        fn_: Option<kvmnc_log_fn>,
        max_level: c_int,
        ctx: *mut c_void,
    ) -> c_int;
    /// The library's text for an errno it returned; never NULL, static.
    pub fn kvmnc_strerror(err: c_int) -> *const c_char;
    /// The name of a mechanism, or NULL for an unknown number.
    pub fn kvmnc_mechanism_name(mechanism: c_int) -> *const c_char;
    /// The name of a reason code as docs/reasons.tsv has it, or NULL (since 1.2).
    pub fn kvmnc_reason_name(reason: c_int) -> *const c_char;
    /// The library's version at run time, e.g. "1.2.0".
    pub fn kvmnc_version() -> *const c_char;
    /// The run-time major version.
    pub fn kvmnc_version_major() -> c_uint;
    /// The run-time minor version.
    pub fn kvmnc_version_minor() -> c_uint;
    /// The run-time patch version.
    pub fn kvmnc_version_patch() -> c_uint;
}
