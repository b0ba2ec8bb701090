// SPDX-License-Identifier: LGPL-2.1-or-later
use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use kvmnc_sys as sys;

use crate::{c_array_str, errno, Error, Result};

/// A kernel mechanism that makes KVM honor guest memory types, ordered from
/// the narrowest scope to the widest. "None" is `Option::None` wherever a
/// mechanism is reported.
///
/// ```
/// use kvmnc::Mechanism;
/// assert_eq!(Mechanism::MemslotFlag.name(), "memslot_flag");
/// assert_eq!(Mechanism::from_raw(4), Some(Mechanism::GuestPatQuirk));
/// assert_eq!(Mechanism::from_raw(0), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mechanism {
    /// The hardware already honors guest PAT (AMD NPT): nothing to do.
    Native,
    /// `KVM_MEM_NON_COHERENT_DMA` on the caller's memslots only.
    MemslotFlag,
    /// `KVM_DEV_TYPE_VIRTIO` devices: VM-wide while one exists.
    VirtioDevice,
    /// `KVM_X86_QUIRK_IGNORE_GUEST_PAT` disabled: VM-wide, for good.
    GuestPatQuirk,
    /// A number a newer library reported that this crate does not know.
    Unknown(i32),
}

impl Mechanism {
    /// The four mechanisms the library knows, narrowest first.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Native,
        Mechanism::MemslotFlag,
        Mechanism::VirtioDevice,
        Mechanism::GuestPatQuirk,
    ];

    /// The C value (`KVMNC_MECH_*`); `Option::None` is `KVMNC_MECH_NONE`.
    ///
    /// ```
    /// assert_eq!(kvmnc::Mechanism::VirtioDevice.as_raw(), kvmnc::sys::KVMNC_MECH_VIRTIO_DEVICE);
    /// ```
    pub fn as_raw(self) -> i32 {
        match self {
            Mechanism::Native => sys::KVMNC_MECH_NATIVE,
            Mechanism::MemslotFlag => sys::KVMNC_MECH_MEMSLOT_FLAG,
            Mechanism::VirtioDevice => sys::KVMNC_MECH_VIRTIO_DEVICE,
            Mechanism::GuestPatQuirk => sys::KVMNC_MECH_GUEST_PAT_QUIRK,
            Mechanism::Unknown(v) => v,
        }
    }

    /// From a C value: `None` for `KVMNC_MECH_NONE`.
    ///
    /// ```
    /// assert_eq!(kvmnc::Mechanism::from_raw(1), Some(kvmnc::Mechanism::Native));
    /// ```
    pub fn from_raw(v: i32) -> Option<Mechanism> {
        match v {
            sys::KVMNC_MECH_NONE => None,
            sys::KVMNC_MECH_NATIVE => Some(Mechanism::Native),
            sys::KVMNC_MECH_MEMSLOT_FLAG => Some(Mechanism::MemslotFlag),
            sys::KVMNC_MECH_VIRTIO_DEVICE => Some(Mechanism::VirtioDevice),
            sys::KVMNC_MECH_GUEST_PAT_QUIRK => Some(Mechanism::GuestPatQuirk),
            v => Some(Mechanism::Unknown(v)),
        }
    }

    /// The library's name for it (`kvmnc_mechanism_name()`), as
    /// `kvmnc-probe` prints it; "unknown" for a number it does not know.
    ///
    /// ```
    /// assert_eq!(kvmnc::Mechanism::GuestPatQuirk.name(), "guest_pat_quirk");
    /// ```
    pub fn name(self) -> &'static str {
        // SAFETY: returns a static string or NULL for any int.
        let p = unsafe { sys::kvmnc_mechanism_name(self.as_raw()) };
        if p.is_null() {
            "unknown"
        } else {
            // SAFETY: a non-NULL answer is a static NUL-terminated string.
            unsafe { crate::static_str(p) }
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `mechanism_name(None)` is "none", as the C library prints it.
///
/// ```
/// assert_eq!(kvmnc::mechanism_name(None), "none");
/// assert_eq!(kvmnc::mechanism_name(Some(kvmnc::Mechanism::Native)), "native");
/// ```
pub fn mechanism_name(m: Option<Mechanism>) -> &'static str {
    m.map_or("none", Mechanism::name)
}

/// One probe answer: supported, not supported, or could not tell (and why
/// not: EPERM, EACCES and EIO are not "unsupported").
///
/// ```
/// use kvmnc::Support;
/// assert!(Support::from_raw(1).is_supported());
/// assert_eq!(Support::from_raw(0), Support::Unsupported);
/// assert_eq!(Support::from_raw(-13).as_raw(), -13);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// The kernel has it (proven by trial where a capability only hints).
    Supported,
    /// The kernel does not have it.
    Unsupported,
    /// The probe could not tell, with the error that stopped it.
    Unknown(Error),
}

impl Support {
    /// From the C tri-state: 1, 0, negative errno.
    pub fn from_raw(v: i32) -> Support {
        match v {
            1 => Support::Supported,
            0 => Support::Unsupported,
            e => Support::Unknown(Error::from_errno(e)),
        }
    }

    /// Back to the C tri-state (the "code" beside the reason text).
    pub fn as_raw(&self) -> i32 {
        match self {
            Support::Supported => 1,
            Support::Unsupported => 0,
            Support::Unknown(e) => -e.errno(),
        }
    }

    /// True only for [`Support::Supported`].
    pub fn is_supported(&self) -> bool {
        matches!(self, Support::Supported)
    }
}

/// One mechanism's answer with its reason, one sentence from the library
/// (the text `kvmnc-probe` prints, and `docs/guide/troubleshooting.md`
/// explains).
///
/// ```no_run
/// let f = kvmnc::probe()?;
/// let s = &f.memslot_flag;
/// println!("memslot_flag: {} ({}): {}", s.support.is_supported(), s.support.as_raw(), s.reason);
/// # Ok::<(), kvmnc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MechStatus {
    /// Supported, unsupported, or could not tell.
    pub support: Support,
    /// Why.
    pub reason: String,
}

impl MechStatus {
    fn from_raw(s: &sys::kvmnc_mech_status) -> MechStatus {
        MechStatus {
            support: Support::from_raw(s.supported),
            reason: c_array_str(&s.reason),
        }
    }
}

/// Where the memslot-flag and device trials ran (`KVMNC_PROBED_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbedOn {
    /// No trial could run: those answers are "could not tell".
    Nowhere,
    /// A scratch VM the library created and closed.
    ScratchVm,
    /// The caller's VM (no scratch VM could be made).
    CallerVm,
    /// A value this crate does not know.
    Unknown(i32),
}

impl ProbedOn {
    fn from_raw(v: i32) -> ProbedOn {
        match v {
            sys::KVMNC_PROBED_NOWHERE => ProbedOn::Nowhere,
            sys::KVMNC_PROBED_SCRATCH_VM => ProbedOn::ScratchVm,
            sys::KVMNC_PROBED_CALLER_VM => ProbedOn::CallerVm,
            v => ProbedOn::Unknown(v),
        }
    }
}

/// What the kernel offers, as probed on a KVM node (and, from
/// [`Handle::features`](crate::Handle::features), on a handle's VM).
///
/// ```
/// match kvmnc::probe() {
///     Ok(f) => {
///         for m in kvmnc::Mechanism::ALL {
///             let s = f.status(m);
///             println!("{:<16} {:?}: {}", m.name(), s.support, s.reason);
///         }
///         println!("recommended: {}", kvmnc::mechanism_name(f.recommended));
///     }
///     // No /dev/kvm, or no permission: an error with the reason, no panic.
///     Err(e) => println!("no KVM: {e}"),
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Features {
    /// AMD NPT (or TDX): guest PAT is honored already.
    pub native: MechStatus,
    /// `KVM_MEM_NON_COHERENT_DMA`.
    pub memslot_flag: MechStatus,
    /// `KVM_DEV_TYPE_VIRTIO`.
    pub virtio_device: MechStatus,
    /// `KVM_X86_QUIRK_IGNORE_GUEST_PAT`.
    pub guest_pat_quirk: MechStatus,
    /// The narrowest supported mechanism.
    pub recommended: Option<Mechanism>,
    /// `KVM_GET_API_VERSION`; 0 when the answer came from a VM fd alone.
    pub kvm_api_version: i32,
    /// `uname -r`.
    pub kernel_release: String,
    /// CPUID vendor ("GenuineIntel", ...), empty off x86.
    pub cpu_vendor: String,
    /// CPU self-snoop; `None` where not applicable.
    pub self_snoop: Option<bool>,
    /// EPT/NPT in use by KVM, or why that is unknown.
    pub tdp: std::result::Result<bool, Error>,
    /// `KVM_CHECK_EXTENSION(KVM_CAP_DISABLE_QUIRKS2)`.
    pub quirks_mask: u64,
    /// Capability that advertised the memslot flag (236 or 239), 0 if none.
    pub memslot_flag_cap: u32,
    /// The KVM device type that proved to be the VIRTIO device, 0 if none.
    pub virtio_device_type: u32,
    /// `KVM_CAP_VM_TYPES`: bit n set when VM type n can be created.
    pub vm_types: u32,
    /// `KVMNC_VM_*` facts of the handle's VM; 0 for a scratch VM.
    pub vm_flags: u32,
    /// Memslot address spaces; 0 unknown.
    pub address_spaces: u32,
    /// User memslot ids per address space; 0 unknown.
    pub memslots: u32,
    /// Where the flag and device trials ran.
    pub probed_on: ProbedOn,
    raw: Box<sys::kvmnc_features>,
}

impl Features {
    pub(crate) fn from_raw(f: sys::kvmnc_features) -> Features {
        Features {
            native: MechStatus::from_raw(&f.native),
            memslot_flag: MechStatus::from_raw(&f.memslot_flag),
            virtio_device: MechStatus::from_raw(&f.virtio_device),
            guest_pat_quirk: MechStatus::from_raw(&f.guest_pat_quirk),
            recommended: Mechanism::from_raw(f.recommended),
            kvm_api_version: f.kvm_api_version,
            kernel_release: c_array_str(&f.kernel_release),
            cpu_vendor: c_array_str(&f.cpu_vendor),
            self_snoop: match f.self_snoop {
                1 => Some(true),
                0 => Some(false),
                _ => None,
            },
            tdp: match f.tdp {
                t if t < 0 => Err(Error::from_errno(t)),
                t => Ok(t != 0),
            },
            quirks_mask: f.quirks_mask,
            memslot_flag_cap: f.memslot_flag_cap,
            virtio_device_type: f.virtio_device_type,
            vm_types: f.vm_types,
            vm_flags: f.vm_flags,
            address_spaces: f.address_spaces,
            memslots: f.memslots,
            probed_on: ProbedOn::from_raw(f.probed_on),
            raw: Box::new(f),
        }
    }

    /// The answer for one mechanism.
    ///
    /// ```no_run
    /// let f = kvmnc::probe()?;
    /// assert_eq!(f.status(kvmnc::Mechanism::Native), &f.native);
    /// # Ok::<(), kvmnc::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// On [`Mechanism::Unknown`], which no probe answer has.
    pub fn status(&self, m: Mechanism) -> &MechStatus {
        match m {
            Mechanism::Native => &self.native,
            Mechanism::MemslotFlag => &self.memslot_flag,
            Mechanism::VirtioDevice => &self.virtio_device,
            Mechanism::GuestPatQuirk => &self.guest_pat_quirk,
            Mechanism::Unknown(v) => panic!("no probe answer for mechanism {v}"),
        }
    }

    /// The C struct as the library filled it.
    pub fn as_raw(&self) -> &sys::kvmnc_features {
        &self.raw
    }
}

/// Probes a KVM node: which mechanisms the running kernel has, and why not.
/// Host-wide facts are cached per process and node by the library: after
/// the first call, a probe makes no system call.
///
/// ```
/// // A node that is not KVM is refused with the library's errno and text.
/// let e = kvmnc::Probe::new().dev_path("/dev/null").run().unwrap_err();
/// assert_eq!(e.errno(), kvmnc::errno::ENOTTY);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Probe {
    dev_path: Option<std::path::PathBuf>,
}

impl Probe {
    /// Probe `/dev/kvm`.
    pub fn new() -> Probe {
        Probe::default()
    }

    /// Probe another KVM node.
    pub fn dev_path<P: AsRef<Path>>(mut self, path: P) -> Probe {
        self.dev_path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Run it. Errors: `ENOENT` no such node, `EACCES`/`EPERM` no
    /// permission, `ENOTTY` not a KVM node, `EINVAL` a path too long or with
    /// a NUL byte, `EPROTO` an unknown KVM API version.
    pub fn run(&self) -> Result<Features> {
        let path = match &self.dev_path {
            Some(p) => Some(cstring(p)?),
            None => None,
        };
        let mut f = sys::kvmnc_features::default();
        // SAFETY: path is NULL or a C string that lives across the call; f
        // is a sized, writable struct.
        Error::check(unsafe {
            sys::kvmnc_probe(
                path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                &mut f,
            )
        })?;
        Ok(Features::from_raw(f))
    }
}

/// `Probe::new().run()`: probe `/dev/kvm`.
///
/// ```
/// if let Ok(f) = kvmnc::probe() {
///     println!("{} on {}", kvmnc::mechanism_name(f.recommended), f.kernel_release);
/// }
/// ```
pub fn probe() -> Result<Features> {
    Probe::new().run()
}

pub(crate) fn cstring(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::from_errno(errno::EINVAL))
}
