// SPDX-License-Identifier: LGPL-2.1-or-later
use std::io;
use std::ops::{BitOr, BitOrAssign};
use std::os::unix::io::AsRawFd;

use kvmnc_sys as sys;

use crate::{errno, Error, Handle, Mechanism, Result};

/// KVM memslot flags (`KVMNC_MEM_*`, the values of `<linux/kvm.h>`).
///
/// ```
/// use kvmnc::MemFlags;
/// let f = MemFlags::LOG_DIRTY_PAGES | MemFlags::READONLY;
/// assert_eq!(f.bits(), 3);
/// assert!(f.contains(MemFlags::READONLY));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemFlags(u32);

impl MemFlags {
    /// No flag.
    pub const EMPTY: MemFlags = MemFlags(0);
    /// `KVM_MEM_LOG_DIRTY_PAGES`.
    pub const LOG_DIRTY_PAGES: MemFlags = MemFlags(sys::KVMNC_MEM_LOG_DIRTY_PAGES);
    /// `KVM_MEM_READONLY`.
    pub const READONLY: MemFlags = MemFlags(sys::KVMNC_MEM_READONLY);
    /// `KVM_MEM_GUEST_MEMFD` (set by [`Region::guest_memfd`]).
    pub const GUEST_MEMFD: MemFlags = MemFlags(sys::KVMNC_MEM_GUEST_MEMFD);
    /// `KVM_MEM_NON_COHERENT_DMA`, as crosvm requests it: in a
    /// [`Region`] it asks for non-coherence, and a plan keeps it only where
    /// the memslot flag is the mechanism.
    pub const NON_COHERENT_DMA: MemFlags = MemFlags(sys::KVMNC_MEM_NON_COHERENT_DMA);

    /// From raw bits, unknown ones included (KVM judges them).
    pub const fn from_bits(bits: u32) -> MemFlags {
        MemFlags(bits)
    }

    /// The raw bits, for the VMM's own `kvm_userspace_memory_region(2)`.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: MemFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for MemFlags {
    type Output = MemFlags;
    fn bitor(self, o: MemFlags) -> MemFlags {
        MemFlags(self.0 | o.0)
    }
}

impl BitOrAssign for MemFlags {
    fn bitor_assign(&mut self, o: MemFlags) {
        self.0 |= o.0;
    }
}

/// A memslot, with the meaning of `struct kvm_userspace_memory_region2`:
/// the slot id in bits 0-15 and the address space in bits 16-31; a size of
/// 0 deletes the slot.
///
/// ```
/// use kvmnc::{MemFlags, Region};
/// let blob = Region::new(3, 0x1_0000_0000, 0x20_0000, 0x7f00_0000_0000)
///     .noncoherent(true)
///     .flags(MemFlags::LOG_DIRTY_PAGES);
/// assert_eq!(blob.slot(), 3);
/// assert!(blob.is_noncoherent());
/// assert_eq!(Region::delete(3).memory_size(), 0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Region {
    raw: sys::kvmnc_region,
}

impl Region {
    /// A plain region of `memory_size` bytes at guest physical address
    /// `guest_phys_addr`, backed by host memory at `userspace_addr`.
    pub fn new(slot: u32, guest_phys_addr: u64, memory_size: u64, userspace_addr: u64) -> Region {
        Region {
            raw: sys::kvmnc_region {
                slot,
                guest_phys_addr,
                memory_size,
                userspace_addr,
                ..Default::default()
            },
        }
    }

    /// The deletion of `slot` (size 0).
    pub fn delete(slot: u32) -> Region {
        Region::new(slot, 0, 0, 0)
    }

    /// Whether guest memory types must be honored for it (a blob a device
    /// writes without snooping): `KVMNC_REGION_NONCOHERENT`.
    pub fn noncoherent(mut self, yes: bool) -> Region {
        if yes {
            self.raw.kvmnc_flags |= sys::KVMNC_REGION_NONCOHERENT;
        } else {
            self.raw.kvmnc_flags &= !sys::KVMNC_REGION_NONCOHERENT;
        }
        self
    }

    /// KVM memslot flags.
    pub fn flags(mut self, flags: MemFlags) -> Region {
        self.raw.flags = flags.bits();
        self
    }

    /// Private memory from a guest_memfd at `offset` (sets
    /// [`MemFlags::GUEST_MEMFD`]). The fd is read when the region is
    /// planned or set; keep it open as KVM requires.
    pub fn guest_memfd<F: AsRawFd + ?Sized>(mut self, fd: &F, offset: u64) -> Region {
        self.raw.flags |= sys::KVMNC_MEM_GUEST_MEMFD;
        self.raw.guest_memfd = fd.as_raw_fd();
        self.raw.guest_memfd_offset = offset;
        self
    }

    /// Slot id and address space, as given.
    pub fn slot(&self) -> u32 {
        self.raw.slot
    }

    /// Guest physical address.
    pub fn guest_phys_addr(&self) -> u64 {
        self.raw.guest_phys_addr
    }

    /// Size in bytes; 0 for a delete.
    pub fn memory_size(&self) -> u64 {
        self.raw.memory_size
    }

    /// Host address of the backing memory.
    pub fn userspace_addr(&self) -> u64 {
        self.raw.userspace_addr
    }

    /// The KVM flags given.
    pub fn mem_flags(&self) -> MemFlags {
        MemFlags(self.raw.flags)
    }

    /// Whether it asks for non-coherence (either way of asking).
    pub fn is_noncoherent(&self) -> bool {
        self.raw.kvmnc_flags & sys::KVMNC_REGION_NONCOHERENT != 0
            || self.raw.flags & sys::KVMNC_MEM_NON_COHERENT_DMA != 0
    }

    /// The C struct.
    pub fn as_raw(&self) -> &sys::kvmnc_region {
        &self.raw
    }
}

/// A memslot change the library planned and the VMM makes itself, from
/// [`Handle::prepare_region`]. Use [`flags`](Self::flags) in the VMM's own
/// `KVM_SET_USER_MEMORY_REGION(2)`, then report KVM's answer with
/// [`complete`](Self::complete) (or [`complete_io`](Self::complete_io)).
///
/// The plan is a guard: dropped without an outcome (an early return, a
/// `?`, a panic) it is aborted as [`abort`](Self::abort) does
/// (`kvmnc_region_abort()`: the ioctl will not be issued), which undoes any
/// VM-wide step the library took for it and frees the slot for the next
/// plan. Complete it right after the ioctl, before anything that can fail:
/// a change KVM made and the plan then reported as not made leaves the
/// library without that memslot.
///
/// The plan borrows its handle, so the handle outlives it:
///
/// ```compile_fail
/// # fn f(vm: &std::fs::File) -> kvmnc::Result<()> {
/// let h = kvmnc::Handle::open(vm)?;
/// let plan = h.prepare_region(&kvmnc::Region::delete(0))?;
/// drop(h); // error: `h` is borrowed by `plan`
/// plan.complete(Ok(()))
/// # }
/// ```
#[derive(Debug)]
#[must_use = "report KVM's answer with complete(); a dropped plan counts as not made"]
pub struct RegionPlan<'h> {
    handle: &'h Handle,
    slot: u32,
    raw: sys::kvmnc_region_plan,
    done: bool,
}

impl<'h> RegionPlan<'h> {
    pub(crate) fn new(handle: &'h Handle, slot: u32, raw: sys::kvmnc_region_plan) -> Self {
        RegionPlan {
            handle,
            slot,
            raw,
            done: false,
        }
    }

    /// The slot planned.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The memslot flags to give KVM: the region's, plus
    /// [`add_flags`](Self::add_flags), minus a non-coherence request no
    /// flag can carry.
    pub fn flags(&self) -> MemFlags {
        MemFlags(self.raw.flags)
    }

    /// What the library added: `NON_COHERENT_DMA` with the memslot flag.
    pub fn add_flags(&self) -> MemFlags {
        MemFlags(self.raw.add_flags)
    }

    /// The mechanism that covers the region; `None` for a plain region.
    pub fn mechanism(&self) -> Option<Mechanism> {
        Mechanism::from_raw(self.raw.mechanism)
    }

    /// Whether the library took a VM-wide step for it (created the VIRTIO
    /// device); a failure reported undoes it.
    pub fn vm_wide_step(&self) -> bool {
        self.raw.vm_wide_step != 0
    }

    /// The C plan.
    pub fn as_raw(&self) -> &sys::kvmnc_region_plan {
        &self.raw
    }

    /// Reports KVM's answer: `Ok(())`, or the errno its ioctl failed with.
    /// On success the library's view follows the change; on failure the
    /// plan is dropped and any VM-wide step undone.
    pub fn complete(mut self, kvm: std::result::Result<(), i32>) -> Result<()> {
        self.done = true;
        let result = match kvm {
            Ok(()) => 0,
            // A failure without an errno must still read as a failure.
            Err(e) => -(e.checked_abs().filter(|&e| e != 0).unwrap_or(errno::EIO)),
        };
        // SAFETY: the handle outlives the plan (borrowed).
        Error::check(unsafe { sys::kvmnc_region_complete(self.handle.as_raw(), self.slot, result) })
            .map(drop)
    }

    /// The VMM will not issue the ioctl it planned (`kvmnc_region_abort()`,
    /// since 1.2): the plan is dropped and its VM-wide step undone, as a
    /// failed outcome would. Dropping the plan does the same; this says so
    /// and hands back the library's answer.
    ///
    /// ```no_run
    /// # fn device_model_still_wants_it() -> bool { false }
    /// # fn f(h: &kvmnc::Handle, blob: &kvmnc::Region) -> kvmnc::Result<()> {
    /// let plan = h.prepare_region(blob)?;
    /// if !device_model_still_wants_it() {
    ///     // The blob went away before the VMM's ioctl: nothing to map.
    ///     return plan.abort();
    /// }
    /// # plan.complete(Ok(()))
    /// # }
    /// ```
    pub fn abort(mut self) -> Result<()> {
        self.done = true;
        // SAFETY: the handle outlives the plan (borrowed).
        Error::check(unsafe { sys::kvmnc_region_abort(self.handle.as_raw(), self.slot) }).map(drop)
    }

    /// [`complete`](Self::complete) with the ioctl's `std::io::Result`,
    /// handed back (the library's own error, if it refuses the outcome,
    /// replaces a success).
    ///
    /// ```no_run
    /// # fn my_set_user_memory_region(flags: u32) -> std::io::Result<()> { Ok(()) }
    /// # fn f(h: &kvmnc::Handle, blob: &kvmnc::Region) -> std::io::Result<()> {
    /// let plan = h.prepare_region(blob)?;
    /// let ret = my_set_user_memory_region(plan.flags().bits());
    /// plan.complete_io(ret)
    /// # }
    /// ```
    pub fn complete_io<T>(self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Ok(v) => self.complete(Ok(())).map(|_| v).map_err(Into::into),
            Err(e) => {
                let _ = self.complete(Err(e.raw_os_error().unwrap_or(errno::EIO)));
                Err(e)
            }
        }
    }
}

impl Drop for RegionPlan<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Abort, not an outcome: no ioctl was reported, and abort is the
            // library's word for "the VMM will not issue it" (1.1 had only
            // a failed outcome, ECANCELED, to say so; the effect is the same).
            // SAFETY: the handle outlives the plan (borrowed).
            unsafe { sys::kvmnc_region_abort(self.handle.as_raw(), self.slot) };
        }
    }
}
