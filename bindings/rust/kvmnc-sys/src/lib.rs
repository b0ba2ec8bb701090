// SPDX-License-Identifier: LGPL-2.1-or-later
//! Raw FFI declarations of libkvmnc 1.1, written by hand from
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

use std::mem::{size_of, zeroed};
// std::os::raw rather than core::ffi: the C integer types reached core only
// in Rust 1.64, and this crate builds with 1.63.
pub use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Library version this crate declares (`KVMNC_VERSION_MAJOR`).
pub const KVMNC_VERSION_MAJOR: u32 = 1;
/// `KVMNC_VERSION_MINOR`.
pub const KVMNC_VERSION_MINOR: u32 = 1;
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
    pub supported: c_int,
    pub reason: [c_char; KVMNC_REASON_MAX],
}

/// `struct kvmnc_features`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_features {
    pub sz: usize,
    pub native: kvmnc_mech_status,
    pub memslot_flag: kvmnc_mech_status,
    pub virtio_device: kvmnc_mech_status,
    pub guest_pat_quirk: kvmnc_mech_status,
    pub recommended: c_int,
    pub kvm_api_version: c_int,
    pub kernel_release: [c_char; 65],
    pub cpu_vendor: [c_char; 13],
    pub self_snoop: c_int,
    pub tdp: c_int,
    pub quirks_mask: u64,
    pub memslot_flag_cap: u32,
    pub virtio_device_type: u32,
    pub vm_types: u32,
    pub vm_flags: u32,
    pub address_spaces: u32,
    pub memslots: u32,
    pub probed_on: c_int,
}

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
    pub sz: usize,
    pub scope: c_int,
    pub mechanism: c_int,
    pub dev_path: *const c_char,
    pub flags: u32,
    pub kvm_fd: c_int,
}

/// `KVMNC_OPEN_DEVICES`.
pub const KVMNC_OPEN_DEVICES: u32 = 1 << 0;
/// `KVMNC_OPEN_KVM_FD`.
pub const KVMNC_OPEN_KVM_FD: u32 = 1 << 1;

/// `struct kvmnc_handle_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_handle_info {
    pub sz: usize,
    pub region_mechanism: c_int,
    pub device_mechanism: c_int,
    pub scope: c_int,
    pub quirk_disabled: c_int,
    pub noncoherent_regions: u32,
    pub enabled_devices: u32,
    pub vm_quirks_mask: u64,
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
    pub sz: usize,
    pub slot: u32,
    pub flags: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
    pub guest_memfd_offset: u64,
    pub guest_memfd: i32,
    pub kvmnc_flags: u32,
}

/// `struct kvmnc_region_plan`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct kvmnc_region_plan {
    pub sz: usize,
    pub flags: u32,
    pub add_flags: u32,
    pub mechanism: c_int,
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
    pub slot: u32,
    pub why: u32,
    pub guest_phys_addr: u64,
    pub memory_size: u64,
    pub userspace_addr: u64,
    pub mechanism: i32,
}

/// `struct kvmnc_snapshot`: allocated by the library, read-only to callers.
#[repr(C)]
#[derive(Debug)]
pub struct kvmnc_snapshot {
    pub sz: usize,
    pub generation: u64,
    pub ranges: *const kvmnc_range,
    pub count: usize,
    pub range_sz: usize,
    pub enabled_devices: u32,
    pub noncoherent_regions: u32,
    pub planned_regions: u32,
    pub region_mechanism: c_int,
    pub device_mechanism: c_int,
    pub cache_maintenance: c_int,
    pub invalidate_insn: *const c_char,
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
    pub sz: usize,
    pub action: c_int,
    pub flags: u32,
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
    pub fn kvmnc_probe(dev_path: *const c_char, out: *mut kvmnc_features) -> c_int;
    pub fn kvmnc_open(vm_fd: c_int, opts: *const kvmnc_open_opts, out: *mut *mut kvmnc) -> c_int;
    pub fn kvmnc_close(h: *mut kvmnc) -> c_int;
    pub fn kvmnc_get_info(h: *mut kvmnc, info: *mut kvmnc_handle_info) -> c_int;
    pub fn kvmnc_get_features(h: *mut kvmnc, out: *mut kvmnc_features) -> c_int;
    pub fn kvmnc_set_region(h: *mut kvmnc, r: *const kvmnc_region) -> c_int;
    pub fn kvmnc_region_prepare(
        h: *mut kvmnc,
        r: *const kvmnc_region,
        plan: *mut kvmnc_region_plan,
    ) -> c_int;
    pub fn kvmnc_region_complete(h: *mut kvmnc, slot: u32, result: c_int) -> c_int;
    pub fn kvmnc_region_removed(h: *mut kvmnc, slot: u32) -> c_int;
    pub fn kvmnc_device_enable(h: *mut kvmnc, device_id: u32) -> c_int;
    pub fn kvmnc_device_disable(h: *mut kvmnc, device_id: u32) -> c_int;
    pub fn kvmnc_is_noncoherent(h: *mut kvmnc) -> c_int;
    pub fn kvmnc_copy_from_guest(
        h: *mut kvmnc,
        dst: *mut c_void,
        src: *const c_void,
        len: usize,
    ) -> c_int;
    pub fn kvmnc_copy_to_guest(
        h: *mut kvmnc,
        dst: *mut c_void,
        src: *const c_void,
        len: usize,
    ) -> c_int;
    pub fn kvmnc_flush(h: *mut kvmnc, addr: *const c_void, len: usize) -> c_int;
    pub fn kvmnc_hva_is_noncoherent(h: *mut kvmnc, hva: *const c_void, len: usize) -> c_int;
    pub fn kvmnc_gpa_is_noncoherent(h: *mut kvmnc, as_id: u32, gpa: u64, len: u64) -> c_int;
    pub fn kvmnc_snapshot_take(
        h: *mut kvmnc,
        range_sz: usize,
        out: *mut *mut kvmnc_snapshot,
    ) -> c_int;
    pub fn kvmnc_snapshot_stale(h: *mut kvmnc, snap: *const kvmnc_snapshot) -> c_int;
    pub fn kvmnc_snapshot_free(snap: *mut kvmnc_snapshot);
    pub fn kvmnc_migration_advise(
        snap: *const kvmnc_snapshot,
        mode: c_int,
        out: *mut kvmnc_migration_advice,
    ) -> c_int;
    pub fn kvmnc_set_log(fn_: Option<kvmnc_log_fn>, max_level: c_int, ctx: *mut c_void);
    pub fn kvmnc_strerror(err: c_int) -> *const c_char;
    pub fn kvmnc_mechanism_name(mechanism: c_int) -> *const c_char;
    pub fn kvmnc_version() -> *const c_char;
    pub fn kvmnc_version_major() -> c_uint;
    pub fn kvmnc_version_minor() -> c_uint;
    pub fn kvmnc_version_patch() -> c_uint;
}
