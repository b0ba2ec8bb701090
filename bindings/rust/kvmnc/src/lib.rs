// SPDX-License-Identifier: LGPL-2.1-or-later
//! Non-coherent DMA for KVM guests: the safe Rust API of libkvmnc.
//!
//! A device model whose host-side DMA does not snoop the CPU caches (a host
//! GPU writing a virtio-gpu blob) needs the guest's own memory type for the
//! buffer to reach the hardware. Which kernel mechanism makes KVM honor it
//! depends on the kernel: the `KVM_MEM_NON_COHERENT_DMA` memslot flag, the
//! KVM VIRTIO device, the `KVM_X86_QUIRK_IGNORE_GUEST_PAT` quirk, or
//! nothing because the hardware does (AMD NPT). libkvmnc probes which one
//! the running kernel has (by trial, not by capability numbers), picks the
//! narrowest one the VMM accepts, and says why when there is none.
//!
//! - [`probe`] / [`Probe`] give the [`Features`]: each [`Mechanism`] with
//!   its [`Support`] and reason.
//! - [`Handle`] is one VM's handle, opened from its VM fd (anything
//!   [`AsRawFd`](std::os::unix::io::AsRawFd): a `kvm_ioctls::VmFd`, a
//!   `File`, a `BorrowedFd`) right after `KVM_CREATE_VM`, closed on drop.
//! - Memslots: [`Handle::set_region`] issues the ioctl; a VMM that issues
//!   its own (crosvm, cloud-hypervisor, Firecracker through kvm-ioctls)
//!   wraps it in [`Handle::prepare_region`] → its ioctl with
//!   [`RegionPlan::flags`] → [`RegionPlan::complete`].
//! - Blobs that come and go: [`Handle::vm_wide_arm`] keeps the VM-wide
//!   mechanism (one stage-2 zap instead of two per blob);
//!   [`RegionPlan::abort`] drops a plan whose ioctl will not be issued;
//!   [`Handle::region_resync`] forgets memslots the VMM lost track of.
//! - Devices: [`Handle::device_enable`]; migration: [`Handle::is_noncoherent`],
//!   [`Handle::copy_from_guest`], [`Handle::snapshot`].
//! - Why: each [`MechStatus`] has a [`Reason`] code beside its sentence;
//!   logs go to [`set_log`] or, per VM, [`Handle::set_log`].
//!
//! One VM has one handle per process: a second [`Handle`] on the same VM
//! is refused with `EISCONN` ([`errno::EISCONN`]).
//!
//! ```
//! use kvmnc::{Handle, MemFlags, OpenOptions, Region, Scope};
//! # use std::os::unix::io::{AsRawFd, FromRawFd};
//! # extern "C" { fn ioctl(fd: i32, req: u64, ...) -> i32; }
//!
//! let kvm = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
//!     Ok(kvm) => kvm,
//!     Err(e) => return println!("no KVM here: {e}"),
//! };
//! // The VMM's own KVM_CREATE_VM.
//! let fd = unsafe { ioctl(kvm.as_raw_fd(), 0xae01, 0) };
//! assert!(fd >= 0, "KVM_CREATE_VM: {}", std::io::Error::last_os_error());
//! let vm = unsafe { std::fs::File::from_raw_fd(fd) };
//! let h = OpenOptions::new().scope(Scope::VmIrreversible).open(&vm).unwrap();
//!
//! // A blob a host GPU writes without snooping, as crosvm asks for it.
//! let blob = Region::new(1, 0x1_0000_0000, 0x1000, 0x7f00_0000_0000)
//!     .flags(MemFlags::NON_COHERENT_DMA);
//! match h.prepare_region(&blob) {
//!     Ok(plan) => {
//!         // The VMM's KVM_SET_USER_MEMORY_REGION2 with plan.flags() goes
//!         // here; then the outcome (this sketch issues none: "not made").
//!         plan.complete(Err(kvmnc::errno::ECANCELED)).unwrap();
//!     }
//!     Err(e) if e.is_unsupported() => {
//!         // Nothing can honor it: tell the guest to map the blob cached,
//!         // and say why.
//!         let f = h.features().unwrap();
//!         println!("blob stays coherent: {}", f.memslot_flag.reason);
//!     }
//!     Err(e) => panic!("{e}"),
//! };
//! ```
//!
//! Built without any third-party crate, with rustc 1.63 or later; linked
//! with the libkvmnc 1.2 or later that `kvmnc-sys` finds (`KVMNC_LIB_DIR`,
//! else pkg-config). The 1.3 additions need a 1.3 library: a 1.2 one
//! leaves the 1.3 fields unset and refuses the 1.3 options with `EINVAL`.

#![warn(missing_docs)]

mod error;
mod features;
mod handle;
mod log;
mod migration;
mod region;

pub use error::{errno, Error, Result};
pub use features::{
    mechanism_name, probe, Features, FlagEvidence, MechStatus, Mechanism, Probe, ProbedOn, Reason,
    Support,
};
pub use handle::{Handle, HandleInfo, OpenOptions, Scope};
pub use log::{clear_log, set_log, LogLevel};
pub use migration::{MigrationAction, MigrationAdvice, MigrationMode, Range, Snapshot};
pub use region::{MemFlags, Region, RegionPlan};

/// The raw declarations, for what this crate does not wrap.
pub use kvmnc_sys as sys;

/// The library's version at run time, e.g. "1.3.0" (which may be newer than
/// the 1.3 API this crate binds).
///
/// ```
/// assert!(kvmnc::version().starts_with(&format!("{}.", kvmnc::version_numbers().0)));
/// ```
pub fn version() -> &'static str {
    // SAFETY: a static NUL-terminated string.
    unsafe { static_str(sys::kvmnc_version()) }
}

/// The run-time version as numbers (major, minor, patch).
///
/// ```
/// let (major, minor, _) = kvmnc::version_numbers();
/// // This crate binds the 1.3 API: a 1.x library of 1.2 or later runs it
/// // (the 1.3 options need 1.3).
/// assert!(major == 1 && minor >= 2);
/// ```
pub fn version_numbers() -> (u32, u32, u32) {
    // SAFETY: plain getters.
    unsafe {
        (
            sys::kvmnc_version_major(),
            sys::kvmnc_version_minor(),
            sys::kvmnc_version_patch(),
        )
    }
}

/// A static C string of the library as `&str`.
///
/// # Safety
///
/// `p` is non-NULL, NUL-terminated and lives for the process (the
/// library's string constants).
pub(crate) unsafe fn static_str(p: *const sys::c_char) -> &'static str {
    std::ffi::CStr::from_ptr(p)
        .to_str()
        .unwrap_or("(not UTF-8)")
}

/// A fixed C array up to its first NUL (all of it if there is none, which
/// the library never does; `CStr::from_bytes_until_nul` is newer than 1.63).
pub(crate) fn c_array_str(a: &[sys::c_char]) -> String {
    let bytes: Vec<u8> = a
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The README's example compiles too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_array_stops_at_nul() {
        let a: [sys::c_char; 6] = [b'a' as _, b'b' as _, 0, b'c' as _, 0, 0];
        assert_eq!(c_array_str(&a), "ab");
        let full: [sys::c_char; 2] = [b'x' as _, b'y' as _];
        assert_eq!(c_array_str(&full), "xy");
    }

    #[test]
    fn mechanisms_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_raw(m.as_raw()), Some(m));
            assert_ne!(m.name(), "unknown");
        }
        assert_eq!(Mechanism::from_raw(0), None);
        assert_eq!(Mechanism::from_raw(77), Some(Mechanism::Unknown(77)));
        assert_eq!(Mechanism::Unknown(77).name(), "unknown");
        assert_eq!(mechanism_name(None), "none");
    }

    #[test]
    fn reasons_round_trip_and_name() {
        // Every code of docs/reasons.tsv, with its name there.
        let table = [
            (0, Reason::Unset, "unset"),
            (1, Reason::Supported, "supported"),
            (2, Reason::CouldNotTell, "could_not_tell"),
            (3, Reason::KernelLacks, "kernel_lacks"),
            (4, Reason::Arch, "arch"),
            (5, Reason::IgnoresGuestPat, "ignores_guest_pat"),
            (6, Reason::UnknownVendor, "unknown_vendor"),
            (7, Reason::NoTdp, "no_tdp"),
            (8, Reason::NoSelfSnoop, "no_self_snoop"),
            (9, Reason::NativeAlready, "native_already"),
            (10, Reason::OtherMeaning, "other_meaning"),
            (11, Reason::VmType, "vm_type"),
            (12, Reason::UcVramDisplay, "uc_vram_display"),
        ];
        for (v, r, name) in table {
            assert_eq!(Reason::from_raw(v), r);
            assert_eq!(r.as_raw(), v);
            assert_eq!(r.name(), Some(name), "{r:?}");
            assert_eq!(r.to_string(), name);
        }
        // Past the table: kept as a number, named only if the library knows it.
        assert_eq!(Reason::from_raw(13), Reason::Unknown(13));
        assert_eq!(Reason::Unknown(13).as_raw(), 13);
        // A code beyond i32 must not reach the C int as a negative number.
        assert_eq!(Reason::Unknown(u32::MAX).name(), None);
        assert_eq!(Reason::Unknown(u32::MAX).to_string(), u32::MAX.to_string());
    }

    #[test]
    fn support_tri_state() {
        assert_eq!(Support::from_raw(1), Support::Supported);
        assert_eq!(Support::from_raw(0), Support::Unsupported);
        match Support::from_raw(-errno::EACCES) {
            Support::Unknown(e) => assert_eq!(e.errno(), errno::EACCES),
            s => panic!("{s:?}"),
        }
        assert_eq!(Support::from_raw(-errno::EIO).as_raw(), -errno::EIO);
    }

    #[test]
    fn errors_carry_the_library_text() {
        let e = Error::from_errno(-errno::EOPNOTSUPP);
        assert_eq!(e.errno(), errno::EOPNOTSUPP);
        assert!(e.is_unsupported());
        // SAFETY: kvmnc_strerror() returns a static string.
        let c = unsafe { static_str(sys::kvmnc_strerror(-errno::EOPNOTSUPP)) };
        assert_eq!(e.message(), c);
        assert_eq!(e.to_string(), format!("{c} (errno 95)"));
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), e.kind());
        // EOPNOTSUPP's kind differs between Rust releases; ENOENT's does not.
        assert_eq!(
            Error::from_errno(errno::ENOENT).kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(Error::from_errno(i32::MIN).errno(), i32::MAX);
        assert!(Error::check(3).is_ok());
    }

    #[test]
    fn region_builder() {
        let r = Region::new(0x1_0002, 0x1000, 0x2000, 0x7000)
            .flags(MemFlags::READONLY)
            .noncoherent(true);
        assert_eq!(r.as_raw().slot, 0x1_0002);
        assert_eq!(r.as_raw().flags, sys::KVMNC_MEM_READONLY);
        assert_eq!(r.as_raw().kvmnc_flags, sys::KVMNC_REGION_NONCOHERENT);
        assert_eq!(r.as_raw().sz, std::mem::size_of::<sys::kvmnc_region>());
        assert!(!r.noncoherent(false).is_noncoherent());
        assert!(Region::delete(1)
            .flags(MemFlags::NON_COHERENT_DMA)
            .is_noncoherent());
        let f = std::fs::File::open("/dev/null").unwrap();
        let g = Region::new(1, 0, 4096, 0).guest_memfd(&f, 8192);
        assert!(g.mem_flags().contains(MemFlags::GUEST_MEMFD));
        assert_eq!(g.as_raw().guest_memfd_offset, 8192);
    }

    #[test]
    fn version_is_1_2_or_later() {
        let (ma, mi, pa) = version_numbers();
        assert_eq!(version(), format!("{ma}.{mi}.{pa}"));
        assert!(ma == sys::KVMNC_VERSION_MAJOR && mi >= sys::KVMNC_VERSION_MINOR);
    }
}
