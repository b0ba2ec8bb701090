// SPDX-License-Identifier: LGPL-2.1-or-later
use std::ffi::CString;
use std::marker::PhantomData;
use std::os::unix::io::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;

use kvmnc_sys as sys;

use crate::features::cstring;
use crate::log::{self, HandleLog, LogLevel};
use crate::{errno, Error, Features, Mechanism, Region, RegionPlan, Result, Snapshot};

/// How far the caller lets the library widen the VM's memory-type rules.
///
/// ```
/// assert_eq!(kvmnc::Scope::default(), kvmnc::Scope::Slot);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only memory registered as non-coherent: the memslot flag (or native).
    #[default]
    Slot,
    /// Also VM-wide, undone when the handle closes: the VIRTIO device.
    Vm,
    /// Also VM-wide for the VM's life: the guest-PAT quirk.
    VmIrreversible,
}

impl Scope {
    fn as_raw(self) -> i32 {
        match self {
            Scope::Slot => sys::KVMNC_SCOPE_SLOT,
            Scope::Vm => sys::KVMNC_SCOPE_VM,
            Scope::VmIrreversible => sys::KVMNC_SCOPE_VM_IRREVERSIBLE,
        }
    }

    fn from_raw(v: i32) -> Scope {
        match v {
            sys::KVMNC_SCOPE_VM => Scope::Vm,
            sys::KVMNC_SCOPE_VM_IRREVERSIBLE => Scope::VmIrreversible,
            _ => Scope::Slot,
        }
    }
}

/// Options of [`Handle`]s, `kvmnc_open()`'s `struct kvmnc_open_opts`.
///
/// The lifetime is that of a borrowed KVM node fd ([`OpenOptions::kvm_fd`]),
/// which the library uses only while opening.
///
/// ```
/// use kvmnc::{OpenOptions, Scope};
///
/// if let Ok(kvm) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
///     let vm = kvmnc_sys_example::create_vm(&kvm)?;
///     // Right after KVM_CREATE_VM: the quirk, if chosen, goes off before any memslot.
///     let h = OpenOptions::new()
///         .scope(Scope::VmIrreversible)
///         .devices(true)
///         .kvm_fd(&kvm)
///         .open(&vm)?;
///     println!("regions use {}", kvmnc::mechanism_name(h.info()?.region_mechanism));
/// }
/// # mod kvmnc_sys_example {
/// #     use std::os::unix::io::{AsRawFd, FromRawFd};
/// #     extern "C" { fn ioctl(fd: i32, req: u64, ...) -> i32; }
/// #     pub fn create_vm(kvm: &std::fs::File) -> std::io::Result<std::fs::File> {
/// #         let fd = unsafe { ioctl(kvm.as_raw_fd(), 0xae01, 0) };
/// #         if fd < 0 { return Err(std::io::Error::last_os_error()); }
/// #         Ok(unsafe { std::fs::File::from_raw_fd(fd) })
/// #     }
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct OpenOptions<'a> {
    scope: Scope,
    mechanism: Option<Mechanism>,
    dev_path: Option<CString>,
    bad_path: bool,
    devices: bool,
    wbinvd: bool,
    uc_vram_display: bool,
    kvm_fd: Option<RawFd>,
    _kvm_fd: PhantomData<BorrowedFd<'a>>,
}

impl<'a> OpenOptions<'a> {
    /// Scope [`Scope::Slot`], the mechanism chosen automatically, `/dev/kvm`.
    pub fn new() -> OpenOptions<'a> {
        OpenOptions::default()
    }

    /// The scope the caller accepts.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Use exactly this mechanism, or fail with `EOPNOTSUPP`
    /// ([`Error::is_unsupported`]); `None` chooses automatically.
    pub fn mechanism(mut self, m: Option<Mechanism>) -> Self {
        self.mechanism = m;
        self
    }

    /// The KVM node the VM came from (default `/dev/kvm`). With
    /// [`kvm_fd`](Self::kvm_fd) it only names the node for the probe cache.
    pub fn dev_path<P: AsRef<Path>>(mut self, path: P) -> Self {
        match cstring(path.as_ref()) {
            Ok(p) => {
                self.dev_path = Some(p);
                self.bad_path = false;
            }
            Err(_) => self.bad_path = true,
        }
        self
    }

    /// The caller will enable devices ([`Handle::device_enable`]):
    /// `KVMNC_OPEN_DEVICES`. Where the device mechanism is the guest-PAT
    /// quirk it goes off in [`open`](Self::open), before any memslot exists.
    pub fn devices(mut self, yes: bool) -> Self {
        self.devices = yes;
        self
    }

    /// Turn on guest WBINVD emulation for the VM (`KVMNC_OPEN_WBINVD`,
    /// since 1.3), for a guest that writes its caches back with WBINVD
    /// before a non-snooping device reads; without it the library never
    /// does. Open before any vCPU exists: it lasts for the VM's life.
    ///
    /// Every WBINVD the guest executes then flushes the caches of every
    /// host CPU its vCPUs ran on (IPIs), a cost to the other tenants of
    /// those CPUs. [`open`](Self::open) fails with `EOPNOTSUPP` where the
    /// kernel lacks it and `EBUSY` where the VM has vCPUs, nothing done.
    pub fn wbinvd(mut self, yes: bool) -> Self {
        self.wbinvd = yes;
        self
    }

    /// The machine has a display whose guest driver maps VRAM uncached
    /// (bochs-display, std VGA): `KVMNC_OPEN_UC_VRAM_DISPLAY`, since 1.3.
    /// No VM-wide mechanism is taken (QEMU's rule "i386/kvm: Honor guest
    /// PAT on x86, absent Bochs display"): regions fall back to the memslot
    /// flag or none; a VM-wide [`mechanism`](Self::mechanism) fails with
    /// `EINVAL`.
    pub fn uc_vram_display(mut self, yes: bool) -> Self {
        self.uc_vram_display = yes;
        self
    }

    /// The KVM node the VMM already holds (`KVMNC_OPEN_KVM_FD`): the library
    /// opens no path (sandboxed VMMs).
    pub fn kvm_fd<F: AsRawFd + ?Sized>(mut self, kvm: &'a F) -> Self {
        self.kvm_fd = Some(kvm.as_raw_fd());
        self
    }

    /// Opens a handle on the VM `vm` (a `kvm_ioctls::VmFd`, a `File`, a
    /// `BorrowedFd`, anything with a raw fd). Do it right after
    /// `KVM_CREATE_VM`: where the quirk is the mechanism chosen, it is
    /// disabled here, before memslots and vCPUs exist.
    ///
    /// The handle keeps its own duplicate of the VM fd (close-on-exec), so
    /// it stays valid however the caller's fd is dropped; the VM lives as
    /// long as either does. Errors: `EBADF` not an open fd, `ENOTTY` not a
    /// KVM VM, `EISCONN` the VM already has an open handle in this process
    /// (one VM, one handle: close it first; the library recognizes another
    /// fd of the same VM, as this crate's duplicate is, with `kcmp()`,
    /// which a seccomp filter may deny), `EIO` the VM of another process
    /// (after `fork()`), `EOPNOTSUPP` the forced mechanism is missing,
    /// `ENOTRECOVERABLE` a trial memslot could not be deleted from the VM
    /// (discard it), `EINVAL`, or what [`Probe::run`](crate::Probe::run)
    /// returns.
    pub fn open<F: AsRawFd + ?Sized>(&self, vm: &F) -> Result<Handle> {
        if self.bad_path {
            return Err(Error::from_errno(errno::EINVAL));
        }
        let fd = vm.as_raw_fd();
        if fd < 0 {
            return Err(Error::from_errno(errno::EBADF));
        }
        // SAFETY: only for the duplication below; a closed fd gives EBADF.
        let dup = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .map_err(|e| Error::from_errno(e.raw_os_error().unwrap_or(errno::EBADF)))?;
        let mut o = sys::kvmnc_open_opts {
            scope: self.scope.as_raw(),
            mechanism: self
                .mechanism
                .map_or(sys::KVMNC_MECH_NONE, Mechanism::as_raw),
            dev_path: self
                .dev_path
                .as_ref()
                .map_or(std::ptr::null(), |p| p.as_ptr()),
            ..Default::default()
        };
        if self.devices {
            o.flags |= sys::KVMNC_OPEN_DEVICES;
        }
        if self.wbinvd {
            o.flags |= sys::KVMNC_OPEN_WBINVD;
        }
        if self.uc_vram_display {
            o.flags |= sys::KVMNC_OPEN_UC_VRAM_DISPLAY;
        }
        if let Some(k) = self.kvm_fd {
            o.flags |= sys::KVMNC_OPEN_KVM_FD;
            o.kvm_fd = k;
        }
        let mut h = std::ptr::null_mut();
        // SAFETY: o and the path it points to live across the call; h is
        // written only on success.
        Error::check(unsafe { sys::kvmnc_open(dup.as_raw_fd(), &o, &mut h) })?;
        Ok(Handle {
            h: NonNull::new(h).expect("kvmnc_open() succeeded without a handle"),
            _vm: dup,
            log: Box::default(),
        })
    }
}

/// What a handle chose and holds (`struct kvmnc_handle_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandleInfo {
    /// The mechanism non-coherent regions use.
    pub region_mechanism: Option<Mechanism>,
    /// The mechanism [`Handle::device_enable`] uses.
    pub device_mechanism: Option<Mechanism>,
    /// The scope the handle was opened with.
    pub scope: Scope,
    /// The library disabled `KVM_X86_QUIRK_IGNORE_GUEST_PAT` on this VM.
    pub quirk_disabled: bool,
    /// Non-coherent regions registered.
    pub noncoherent_regions: u32,
    /// Devices enabled.
    pub enabled_devices: u32,
    /// `KVM_CAP_DISABLE_QUIRKS2` as this VM answers it.
    pub vm_quirks_mask: u64,
    /// Since 1.3: the library turned on guest WBINVD emulation for the VM.
    pub wbinvd_emulation: bool,
    /// Since 1.3: the `KVMNC_OPEN_*` flags the handle was opened with.
    pub open_flags: u32,
}

/// A libkvmnc handle on one VM: opened with [`Handle::open`] or
/// [`OpenOptions::open`], closed when dropped (`kvmnc_close()`), which also
/// closes the KVM devices it created for the VM.
///
/// `Handle` is `Send` and `Sync`: every libkvmnc function may be called
/// from any thread, and calls on one handle serialize on the handle's own
/// lock, so an `Arc<Handle>` needs no lock of the VMM's. Closing needs the
/// handle itself (`Drop`, [`Handle::close`]), so nothing else can be using
/// it then. After `fork()` a child may only drop inherited handles (KVM
/// answers `EIO` to anything else).
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<kvmnc::Handle>();
/// ```
#[derive(Debug)]
pub struct Handle {
    h: NonNull<sys::kvmnc>,
    // Closed after kvmnc_close() (Drop runs before the fields drop), so the
    // library never holds a VM fd number that was closed and reused.
    _vm: OwnedFd,
    // The handle's log callback (set_log()); the library keeps its address
    // as ctx, so it is freed only after kvmnc_close(), like the fd.
    log: Box<HandleLog>,
}

// SAFETY: libkvmnc's threading rules (README "Threads"): any function may be
// called on a handle from any thread, concurrently; only kvmnc_close() must
// not race other calls, and it needs `self` by value or Drop.
unsafe impl Send for Handle {}
// SAFETY: as above; every &self method is a library call on the handle.
unsafe impl Sync for Handle {}

impl Handle {
    /// Opens a handle with default options (scope [`Scope::Slot`]):
    /// `OpenOptions::new().open(vm)`.
    ///
    /// ```
    /// // Not a VM: refused, and the library's text says what it wanted.
    /// let null = std::fs::File::open("/dev/null").unwrap();
    /// let e = kvmnc::Handle::open(&null).unwrap_err();
    /// assert_eq!(e.errno(), kvmnc::errno::ENOTTY);
    /// ```
    pub fn open<F: AsRawFd + ?Sized>(vm: &F) -> Result<Handle> {
        OpenOptions::new().open(vm)
    }

    /// The C handle, for calls this crate does not wrap. It stays valid
    /// until the `Handle` is dropped; do not close it.
    pub fn as_raw(&self) -> *mut sys::kvmnc {
        self.h.as_ptr()
    }

    /// What the handle chose and holds.
    pub fn info(&self) -> Result<HandleInfo> {
        let mut i = sys::kvmnc_handle_info::default();
        // SAFETY: an open handle and a sized, writable struct.
        Error::check(unsafe { sys::kvmnc_get_info(self.as_raw(), &mut i) })?;
        Ok(HandleInfo {
            region_mechanism: Mechanism::from_raw(i.region_mechanism),
            device_mechanism: Mechanism::from_raw(i.device_mechanism),
            scope: Scope::from_raw(i.scope),
            quirk_disabled: i.quirk_disabled != 0,
            noncoherent_regions: i.noncoherent_regions,
            enabled_devices: i.enabled_devices,
            vm_quirks_mask: i.vm_quirks_mask,
            wbinvd_emulation: i.wbinvd_emulation != 0,
            open_flags: i.open_flags,
        })
    }

    /// The host facts as they apply to this handle's VM.
    pub fn features(&self) -> Result<Features> {
        let mut f = sys::kvmnc_features::default();
        // SAFETY: an open handle and a sized, writable struct.
        Error::check(unsafe { sys::kvmnc_get_features(self.as_raw(), &mut f) })?;
        Ok(Features::from_raw(f))
    }

    /// Creates, moves or deletes a memslot through the library
    /// (`kvmnc_set_region()`): a non-coherent region through the handle's
    /// region mechanism, or `EOPNOTSUPP` when there is none; a plain one
    /// passes through to KVM unchanged.
    ///
    /// # Safety
    ///
    /// As for `KVM_SET_USER_MEMORY_REGION` itself: the region's host memory
    /// must stay mapped (and not be handed out as anything else) for as long
    /// as the memslot exists, since the guest reads and writes it.
    pub unsafe fn set_region(&self, r: &Region) -> Result<()> {
        Error::check(sys::kvmnc_set_region(self.as_raw(), r.as_raw())).map(drop)
    }

    /// Plans a memslot change the VMM will make with its own ioctl
    /// (`kvmnc_region_prepare()`): the flags to use, or the VM-wide step
    /// already taken. Report KVM's answer with [`RegionPlan::complete`];
    /// a plan dropped without one is reported as not made. A region may ask
    /// for non-coherence with [`Region::noncoherent`] or with
    /// [`MemFlags::NON_COHERENT_DMA`](crate::MemFlags::NON_COHERENT_DMA) in
    /// its flags (as crosvm does); the plan's flags have the bit only where
    /// the memslot flag is the mechanism.
    ///
    /// Errors: `EOPNOTSUPP` nothing in scope honors a non-coherent region,
    /// `EALREADY` a plan for the slot waits, `EINVAL` a bad region.
    pub fn prepare_region(&self, r: &Region) -> Result<RegionPlan<'_>> {
        let mut plan = sys::kvmnc_region_plan::default();
        // SAFETY: an open handle, a sized region and a sized, writable plan.
        Error::check(unsafe { sys::kvmnc_region_prepare(self.as_raw(), r.as_raw(), &mut plan) })?;
        Ok(RegionPlan::new(self, r.slot(), plan))
    }

    /// The VMM deleted `slot` itself, outside any plan (or learnt that KVM
    /// no longer has it): forget it. `ENOENT` when the library knows no
    /// memslot there, `EALREADY` while a plan for it waits.
    pub fn region_removed(&self, slot: u32) -> Result<()> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_region_removed(self.as_raw(), slot) }).map(drop)
    }

    /// The VMM's memslots are exactly `slots` (address space << 16 | id),
    /// from its own memslot table (`kvmnc_region_resync()`, since 1.2): for
    /// a VMM that may have deleted memslots without
    /// [`region_removed`](Self::region_removed). Every memslot the library
    /// knows that is not listed and has no plan waiting is forgotten (and
    /// the VIRTIO device that served them goes with the last, unless the
    /// handle is [armed](Self::vm_wide_arm)). Returns how many were
    /// forgotten. KVM cannot list memslots, hence the VMM's list.
    ///
    /// ```no_run
    /// # fn f(h: &kvmnc::Handle) -> kvmnc::Result<()> {
    /// // The VMM's table holds slots 0 and 1 (and 1 in address space 1, SMM).
    /// let forgotten = h.region_resync(&[0, 1, 1 << 16 | 1])?;
    /// println!("the library had {forgotten} memslots the VMM no longer has");
    /// # Ok(()) }
    /// ```
    pub fn region_resync(&self, slots: &[u32]) -> Result<usize> {
        // SAFETY: an open handle; `slots` is readable for its length (the
        // library reads nothing of an empty list).
        let r = Error::check(unsafe {
            sys::kvmnc_region_resync(self.as_raw(), slots.as_ptr(), slots.len())
        })?;
        // Non-negative after check(): the conversion cannot fail.
        Ok(usize::try_from(r).unwrap_or(0))
    }

    /// Keeps the VM-wide mechanism for regions in force from now until
    /// [`vm_wide_disarm`](Self::vm_wide_disarm) or the handle closes,
    /// without declaring any memory non-coherent (`kvmnc_vm_wide_arm()`,
    /// since 1.2).
    ///
    /// Each time a VM-wide mechanism comes into force or goes, KVM zaps
    /// every stage-2 mapping of the VM. Unarmed, the VIRTIO device exists
    /// only while a non-coherent region does, so a VMM mapping and
    /// unmapping blobs pays two zaps per blob; armed, one when arming and
    /// one when disarming. Unlike [`device_enable`](Self::device_enable),
    /// only the regions declared non-coherent count as such. Arming an
    /// armed handle changes nothing (arming is not counted: one disarm
    /// ends it). With the memslot flag or native there is nothing VM-wide
    /// to keep, and the guest-PAT quirk is in force from the open: `Ok`,
    /// nothing done. `EOPNOTSUPP` when the handle has no mechanism for
    /// regions.
    ///
    /// ```no_run
    /// # fn f(h: &kvmnc::Handle) -> kvmnc::Result<()> {
    /// // At VM setup, before the guest runs: blobs will come and go.
    /// match h.vm_wide_arm() {
    ///     Ok(()) => {}
    ///     // Nothing in scope honors a non-coherent region: blobs stay cached.
    ///     Err(e) if e.is_unsupported() => println!("not armed: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// // ... blobs mapped and unmapped with prepare_region() ...
    /// h.vm_wide_disarm()?;
    /// # Ok(()) }
    /// ```
    pub fn vm_wide_arm(&self) -> Result<()> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_vm_wide_arm(self.as_raw()) }).map(drop)
    }

    /// Ends [`vm_wide_arm`](Self::vm_wide_arm) (`kvmnc_vm_wide_disarm()`):
    /// the VM-wide mechanism stays while non-coherent regions or plans for
    /// them exist, and goes with the last. `Ok` also when not armed.
    pub fn vm_wide_disarm(&self) -> Result<()> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_vm_wide_disarm(self.as_raw()) }).map(drop)
    }

    /// Sends the messages of calls on this handle, up to `max_level`, to
    /// `f` instead of the process-wide callback of [`set_log`](crate::set_log)
    /// (`kvmnc_set_handle_log()`, since 1.2), so that a VMM can route them
    /// to the VM they concern. Replaces an earlier one; messages above
    /// `max_level` go nowhere. What the open said before it returned, and
    /// messages that concern no handle (the probe), still go to the
    /// process-wide callback.
    ///
    /// The handle keeps the closure until it is replaced,
    /// [cleared](Self::clear_log) or the handle is dropped. It runs on
    /// whichever thread made the call on the handle, possibly several at
    /// once (hence `Send + Sync`), never with a library lock held, so it
    /// may call the library, this handle included. A call already under
    /// way on another thread may still deliver to the closure being
    /// replaced. A closure that owns an `Arc` of its own handle keeps the
    /// handle open for ever (a cycle): capture a `Weak` instead. A panic in
    /// it loses the message and goes no further.
    ///
    /// ```
    /// use kvmnc::LogLevel;
    /// use std::sync::{Arc, Mutex};
    /// # use std::os::unix::io::{AsRawFd, FromRawFd};
    /// # extern "C" { fn ioctl(fd: i32, req: u64, ...) -> i32; }
    /// # let kvm = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
    /// #     Ok(kvm) => kvm,
    /// #     Err(_) => return,
    /// # };
    /// # let vm = unsafe { std::fs::File::from_raw_fd(ioctl(kvm.as_raw_fd(), 0xae01, 0)) };
    /// let h = kvmnc::Handle::open(&vm).unwrap();
    /// let vm_log = Arc::new(Mutex::new(Vec::new()));
    /// let sink = vm_log.clone();
    /// h.set_log(LogLevel::Debug, move |level, msg| {
    ///     sink.lock().unwrap().push(format!("vm0 {level:?}: {msg}"));
    /// })
    /// .unwrap();
    /// let _ = h.device_enable(1); // logs why, or what it did
    /// h.clear_log().unwrap();
    /// ```
    pub fn set_log<F>(&self, max_level: LogLevel, f: F) -> Result<()>
    where
        F: Fn(LogLevel, &str) + Send + Sync + 'static,
    {
        // SAFETY: an open handle; the slot is freed only after kvmnc_close().
        Error::check(unsafe { self.log.set(self.as_raw(), max_level, Some(log::boxed(f))) })
            .map(drop)
    }

    /// Sends this handle's messages back to the process-wide callback and
    /// drops the closure of [`set_log`](Self::set_log).
    pub fn clear_log(&self) -> Result<()> {
        // SAFETY: as in set_log().
        Error::check(unsafe { self.log.set(self.as_raw(), LogLevel::Error, None) }).map(drop)
    }

    /// Declares that device model `device_id` (a PCI BDF, any number) does
    /// non-coherent DMA anywhere in guest memory. Enabling an enabled
    /// device changes nothing. `EOPNOTSUPP` when the scope allows no VM-wide
    /// mechanism; `EBUSY` when the mechanism is the quirk and the handle was
    /// opened without [`OpenOptions::devices`].
    pub fn device_enable(&self, device_id: u32) -> Result<()> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_device_enable(self.as_raw(), device_id) }).map(drop)
    }

    /// Undoes [`device_enable`](Self::device_enable); `ENOENT` if the
    /// device is not enabled.
    pub fn device_disable(&self, device_id: u32) -> Result<()> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_device_disable(self.as_raw(), device_id) }).map(drop)
    }

    /// True while the VM holds memory the VMM declared non-coherent (a
    /// region, planned or registered, or an enabled device). A VMM that does
    /// not copy with [`copy_from_guest`](Self::copy_from_guest) and
    /// friends blocks migration while this is true.
    pub fn is_noncoherent(&self) -> Result<bool> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_is_noncoherent(self.as_raw()) }).map(|r| r == 1)
    }

    /// Copies guest memory `src` (host mapping) to `dst` so that what a
    /// device wrote without snooping is seen: the non-coherent parts are
    /// invalidated from the caches first, the rest is copied as `memcpy`
    /// would. `EINVAL` when the lengths differ; `EOPNOTSUPP` (nothing
    /// copied) when part is non-coherent and the CPU cannot flush.
    pub fn copy_from_guest(&self, dst: &mut [u8], src: &[u8]) -> Result<()> {
        if dst.len() != src.len() {
            return Err(Error::from_errno(errno::EINVAL));
        }
        // SAFETY: two valid, disjoint buffers of the same length.
        unsafe { self.copy_from_guest_raw(dst.as_mut_ptr(), src.as_ptr(), src.len()) }
    }

    /// [`copy_from_guest`](Self::copy_from_guest) on raw pointers, for guest
    /// memory that is not a Rust slice (a `VolatileSlice`, an mmap).
    ///
    /// # Safety
    ///
    /// `src` must be readable and `dst` writable for `len` bytes, and the
    /// two must not overlap.
    pub unsafe fn copy_from_guest_raw(
        &self,
        dst: *mut u8,
        src: *const u8,
        len: usize,
    ) -> Result<()> {
        Error::check(sys::kvmnc_copy_from_guest(
            self.as_raw(),
            dst.cast(),
            src.cast(),
            len,
        ))
        .map(drop)
    }

    /// Copies `src` into guest memory `dst` (host mapping) so that a device
    /// reading without snooping sees it: the non-coherent parts with
    /// non-temporal stores and a fence, the rest as `memcpy` would. Errors
    /// as [`copy_from_guest`](Self::copy_from_guest).
    pub fn copy_to_guest(&self, dst: &mut [u8], src: &[u8]) -> Result<()> {
        if dst.len() != src.len() {
            return Err(Error::from_errno(errno::EINVAL));
        }
        // SAFETY: two valid, disjoint buffers of the same length.
        unsafe { self.copy_to_guest_raw(dst.as_mut_ptr(), src.as_ptr(), src.len()) }
    }

    /// [`copy_to_guest`](Self::copy_to_guest) on raw pointers.
    ///
    /// # Safety
    ///
    /// As [`copy_from_guest_raw`](Self::copy_from_guest_raw).
    pub unsafe fn copy_to_guest_raw(&self, dst: *mut u8, src: *const u8, len: usize) -> Result<()> {
        Error::check(sys::kvmnc_copy_to_guest(
            self.as_raw(),
            dst.cast(),
            src.cast(),
            len,
        ))
        .map(drop)
    }

    /// Writes back and invalidates the cache lines of the non-coherent parts
    /// of `mem` (a post-copy page the kernel filled, between
    /// `UFFDIO_COPY_MODE_DONTWAKE` and `UFFDIO_WAKE`).
    pub fn flush(&self, mem: &[u8]) -> Result<()> {
        // SAFETY: an open handle and a mapped buffer (the flush acts like loads).
        Error::check(unsafe { sys::kvmnc_flush(self.as_raw(), mem.as_ptr().cast(), mem.len()) })
            .map(drop)
    }

    /// True when any byte of the host range `[hva, hva + len)` is
    /// non-coherent guest memory. Reads no memory; lock-free.
    pub fn hva_is_noncoherent(&self, hva: *const u8, len: usize) -> Result<bool> {
        // SAFETY: the library only compares the addresses.
        Error::check(unsafe { sys::kvmnc_hva_is_noncoherent(self.as_raw(), hva.cast(), len) })
            .map(|r| r == 1)
    }

    /// The same for guest physical addresses in address space `as_id` (0,
    /// or 1 for SMM on x86); `EINVAL` for an address space the VM lacks.
    pub fn gpa_is_noncoherent(&self, as_id: u32, gpa: u64, len: u64) -> Result<bool> {
        // SAFETY: an open handle.
        Error::check(unsafe { sys::kvmnc_gpa_is_noncoherent(self.as_raw(), as_id, gpa, len) })
            .map(|r| r == 1)
    }

    /// Everything a migration pass needs, taken once
    /// (`kvmnc_snapshot_take()`). The snapshot does not borrow the handle.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut s = std::ptr::null_mut();
        // SAFETY: an open handle; the stride is this crate's struct, the
        // one the library's ranges are then laid out with.
        Error::check(unsafe {
            sys::kvmnc_snapshot_take(
                self.as_raw(),
                std::mem::size_of::<sys::kvmnc_range>(),
                &mut s,
            )
        })?;
        Ok(Snapshot::from_raw(
            NonNull::new(s).expect("snapshot taken without a pointer"),
        ))
    }

    /// True when the handle's state changed since `snap` was taken.
    pub fn is_stale(&self, snap: &Snapshot) -> Result<bool> {
        // SAFETY: an open handle and a live snapshot.
        Error::check(unsafe { sys::kvmnc_snapshot_stale(self.as_raw(), snap.as_raw()) })
            .map(|r| r == 1)
    }

    /// Closes the handle and says whether the library agreed (dropping it
    /// does the same and ignores the answer).
    pub fn close(self) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the handle is open and, taken by value, used by no one else.
        let r = unsafe { sys::kvmnc_close(this.as_raw()) };
        // SAFETY: read once, after the library let go of the fd and of the
        // log slot, and never dropped again (ManuallyDrop).
        drop(unsafe { std::ptr::read(&this._vm) });
        // SAFETY: as above.
        drop(unsafe { std::ptr::read(&this.log) });
        Error::check(r).map(drop)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is open and, being dropped, used by no one else.
        unsafe { sys::kvmnc_close(self.as_raw()) };
    }
}
