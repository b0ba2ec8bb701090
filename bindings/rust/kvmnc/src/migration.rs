// SPDX-License-Identifier: LGPL-2.1-or-later
use std::ptr::NonNull;

use kvmnc_sys as sys;

use crate::{c_array_str, Error, Mechanism, Result};

/// One non-coherent memslot of a [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Range {
    /// Address space in bits 16-31, id in bits 0-15; `KVMNC_RANGE_ANY_SLOT`
    /// for the "every address" range.
    pub slot: u32,
    /// Why it is non-coherent: `KVMNC_RANGE_*` bits.
    pub why: u32,
    /// Guest physical address.
    pub guest_phys_addr: u64,
    /// Size in bytes.
    pub memory_size: u64,
    /// Host address.
    pub userspace_addr: u64,
    /// How KVM honors guest PAT there.
    pub mechanism: Option<Mechanism>,
}

/// How the VMM migrates guest memory (`enum kvmnc_migration_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationMode {
    /// With its own copies (plain loads and stores): no helper.
    None,
    /// Pre-copy with [`Handle::copy_from_guest`](crate::Handle::copy_from_guest)
    /// and [`Handle::copy_to_guest`](crate::Handle::copy_to_guest).
    Precopy,
    /// Post-copy: also fills pages on fault (`UFFDIO_COPY`, then
    /// [`Handle::flush`](crate::Handle::flush)).
    Postcopy,
}

/// What to do (`enum kvmnc_migration_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationAction {
    /// Nothing is non-coherent: migrate as usual.
    Plain,
    /// Copy the snapshot's ranges with the helpers; the rest as usual.
    Coherent,
    /// Block migration (the reason says why).
    Block,
    /// A value this crate does not know.
    Unknown(i32),
}

/// The policy's answer (`struct kvmnc_migration_advice`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationAdvice {
    /// What to do.
    pub action: MigrationAction,
    /// Copy the ranges again after the device models stopped
    /// (`KVMNC_ADVICE_RESEND`): devices write them behind KVM's dirty log.
    pub resend: bool,
    /// Post-copy pages go DONTWAKE, flush, WAKE (`KVMNC_ADVICE_POSTCOPY_ORDER`).
    pub postcopy_order: bool,
    /// Why, in one sentence (a migration blocker's message).
    pub reason: String,
}

/// The non-coherent state of a handle, taken once for a migration pass
/// ([`Handle::snapshot`](crate::Handle::snapshot)); the library never
/// changes it, and it does not borrow the handle. `Send` and `Sync`: it is
/// read-only memory the library allocated.
///
/// ```no_run
/// # fn f(h: &kvmnc::Handle) -> kvmnc::Result<()> {
/// let snap = h.snapshot()?;
/// match snap.advise(kvmnc::MigrationMode::Precopy)?.action {
///     kvmnc::MigrationAction::Block => println!("blocked"),
///     _ => {
///         for r in snap.ranges() {
///             println!("copy {:#x}+{:#x} coherently", r.userspace_addr, r.memory_size);
///         }
///     }
/// }
/// if h.is_stale(&snap)? {
///     println!("changed since: take another");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Snapshot {
    p: NonNull<sys::kvmnc_snapshot>,
}

// SAFETY: immutable after kvmnc_snapshot_take() returns; freed only in Drop.
unsafe impl Send for Snapshot {}
// SAFETY: as above: concurrent readers of read-only memory.
unsafe impl Sync for Snapshot {}

impl Snapshot {
    pub(crate) fn from_raw(p: NonNull<sys::kvmnc_snapshot>) -> Snapshot {
        Snapshot { p }
    }

    fn s(&self) -> &sys::kvmnc_snapshot {
        // SAFETY: valid and unchanged until Drop.
        unsafe { self.p.as_ref() }
    }

    /// The C snapshot.
    pub fn as_raw(&self) -> &sys::kvmnc_snapshot {
        self.s()
    }

    /// New with every change of the handle's state.
    pub fn generation(&self) -> u64 {
        self.s().generation
    }

    /// The non-coherent memslots, sorted by host address.
    ///
    /// ```no_run
    /// # fn f(h: &kvmnc::Handle) -> kvmnc::Result<()> {
    /// let snap = h.snapshot()?;
    /// let total: u64 = snap.ranges().map(|r| r.memory_size).sum();
    /// assert_eq!(snap.ranges().len(), snap.len());
    /// println!("{} ranges, {total} bytes to copy coherently", snap.len());
    /// # Ok(()) }
    /// ```
    pub fn ranges(&self) -> impl ExactSizeIterator<Item = Range> + '_ {
        (0..self.len()).map(move |i| self.range(i).expect("range below count"))
    }

    /// How many ranges there are.
    pub fn len(&self) -> usize {
        self.s().count
    }

    /// True when no memory is non-coherent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Range `i` (in host address order), `None` from [`len`](Self::len)
    /// on: `kvmnc_snapshot_range()` (since 1.2), which steps through the
    /// ranges at the stride the snapshot was laid out with, whatever this
    /// crate's `size_of::<kvmnc_range>()` is.
    ///
    /// ```no_run
    /// # fn f(h: &kvmnc::Handle) -> kvmnc::Result<()> {
    /// let snap = h.snapshot()?;
    /// if let Some(first) = snap.range(0) {
    ///     println!("lowest: slot {:#x} at {:#x}", first.slot, first.userspace_addr);
    /// }
    /// assert!(snap.range(snap.len()).is_none());
    /// # Ok(()) }
    /// ```
    pub fn range(&self, i: usize) -> Option<Range> {
        // SAFETY: a live snapshot; the library checks i against count.
        let p = unsafe { sys::kvmnc_snapshot_range(self.p.as_ptr(), i) };
        if p.is_null() {
            return None;
        }
        // SAFETY: a range of at least the size this crate asked for (the
        // stride given to kvmnc_snapshot_take()), alive until Drop; read
        // unaligned in case a stride ever is not a multiple of 8.
        let r = unsafe { std::ptr::read_unaligned(p) };
        Some(Range {
            slot: r.slot,
            why: r.why,
            guest_phys_addr: r.guest_phys_addr,
            memory_size: r.memory_size,
            userspace_addr: r.userspace_addr,
            mechanism: Mechanism::from_raw(r.mechanism),
        })
    }

    /// Devices enabled.
    pub fn enabled_devices(&self) -> u32 {
        self.s().enabled_devices
    }

    /// Non-coherent regions KVM holds.
    pub fn noncoherent_regions(&self) -> u32 {
        self.s().noncoherent_regions
    }

    /// Non-coherent regions planned and not yet completed.
    pub fn planned_regions(&self) -> u32 {
        self.s().planned_regions
    }

    /// The handle's region mechanism.
    pub fn region_mechanism(&self) -> Option<Mechanism> {
        Mechanism::from_raw(self.s().region_mechanism)
    }

    /// The handle's device mechanism.
    pub fn device_mechanism(&self) -> Option<Mechanism> {
        Mechanism::from_raw(self.s().device_mechanism)
    }

    /// Whether this CPU has what the copy helpers need, or the error they
    /// give for non-coherent memory.
    pub fn cache_maintenance(&self) -> Result<()> {
        Error::check(self.s().cache_maintenance).map(drop)
    }

    /// The read side's instruction: "clflushopt", "clflush" or "none".
    pub fn invalidate_insn(&self) -> &'static str {
        // SAFETY: a static string of the library, or NULL.
        unsafe { opt_static_str(self.s().invalidate_insn) }
    }

    /// The write side's instruction for partial lines: "clwb", ...
    pub fn writeback_insn(&self) -> &'static str {
        // SAFETY: a static string of the library, or NULL.
        unsafe { opt_static_str(self.s().writeback_insn) }
    }

    /// The library's policy for migrating this state in `mode`.
    pub fn advise(&self, mode: MigrationMode) -> Result<MigrationAdvice> {
        let mut a = sys::kvmnc_migration_advice::default();
        let mode = match mode {
            MigrationMode::None => sys::KVMNC_MIGRATION_NONE,
            MigrationMode::Precopy => sys::KVMNC_MIGRATION_PRECOPY,
            MigrationMode::Postcopy => sys::KVMNC_MIGRATION_POSTCOPY,
        };
        // SAFETY: a live snapshot and a sized, writable advice.
        let r =
            Error::check(unsafe { sys::kvmnc_migration_advise(self.p.as_ptr(), mode, &mut a) })?;
        Ok(MigrationAdvice {
            action: match r {
                sys::KVMNC_MIGRATE_PLAIN => MigrationAction::Plain,
                sys::KVMNC_MIGRATE_COHERENT => MigrationAction::Coherent,
                sys::KVMNC_MIGRATE_BLOCK => MigrationAction::Block,
                v => MigrationAction::Unknown(v),
            },
            resend: a.flags & sys::KVMNC_ADVICE_RESEND != 0,
            postcopy_order: a.flags & sys::KVMNC_ADVICE_POSTCOPY_ORDER != 0,
            reason: c_array_str(&a.reason),
        })
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: taken by kvmnc_snapshot_take(), freed once.
        unsafe { sys::kvmnc_snapshot_free(self.p.as_ptr()) };
    }
}

unsafe fn opt_static_str(p: *const sys::c_char) -> &'static str {
    if p.is_null() {
        ""
    } else {
        crate::static_str(p)
    }
}
