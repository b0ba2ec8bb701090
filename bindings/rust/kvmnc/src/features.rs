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

/// Why a mechanism's answer is what it is, as a code to branch on
/// (`enum kvmnc_reason`, since 1.2; `docs/reasons.tsv` is the table). The
/// sentence in [`MechStatus::reason`] says the same for people.
///
/// A code this crate does not know (a newer library appends codes; the
/// values never change) is [`Reason::Unknown`] with its number, and
/// [`name`](Self::name) still asks the library that is running for it.
///
/// ```
/// use kvmnc::Reason;
/// assert_eq!(Reason::from_raw(7), Reason::NoTdp);
/// assert_eq!(Reason::NoTdp.name(), Some("no_tdp"));
/// assert_eq!(Reason::NoTdp.as_raw(), kvmnc::sys::KVMNC_REASON_NO_TDP);
/// // A future code keeps its number.
/// assert_eq!(Reason::from_raw(4000), Reason::Unknown(4000));
/// assert_eq!(Reason::Unknown(4000).name(), None);
/// assert_eq!(Reason::Unknown(4000).to_string(), "4000");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Not filled in: a struct from a library before 1.2.
    Unset,
    /// Supported.
    Supported,
    /// Could not tell: [`Support::Unknown`] holds the error that stopped
    /// the probe. Never read it as "no".
    CouldNotTell,
    /// This kernel does not have it (refused, not registered, too old).
    KernelLacks,
    /// Not x86: the quirk does not exist, native has not been checked.
    Arch,
    /// Native on Intel VMX: KVM ignores guest PAT unless a mechanism says
    /// otherwise.
    IgnoresGuestPat,
    /// An x86 vendor KVM's memory-type handling is not known for.
    UnknownVendor,
    /// No EPT/NPT in use: shadow paging ignores guest PAT.
    NoTdp,
    /// An Intel CPU without self-snoop: honoring guest PAT would be unsafe.
    NoSelfSnoop,
    /// Not needed: guest PAT is honored natively (AMD NPT, a TDX VM).
    NativeAlready,
    /// The kernel takes the request, but it means something else there
    /// (memslot bit 3 is another flag; capability 251 is not WBINVD
    /// emulation).
    OtherMeaning,
    /// The host has it, this VM's type refuses it.
    VmType,
    /// Since 1.3: a VM-wide mechanism the host has, ruled out for a handle
    /// opened with [`OpenOptions::uc_vram_display`](crate::OpenOptions::uc_vram_display).
    UcVramDisplay,
    /// A code this crate does not know.
    Unknown(u32),
}

impl Reason {
    /// From the C value (`KVMNC_REASON_*`).
    pub fn from_raw(v: u32) -> Reason {
        match v {
            sys::KVMNC_REASON_UNSET => Reason::Unset,
            sys::KVMNC_REASON_SUPPORTED => Reason::Supported,
            sys::KVMNC_REASON_COULD_NOT_TELL => Reason::CouldNotTell,
            sys::KVMNC_REASON_KERNEL_LACKS => Reason::KernelLacks,
            sys::KVMNC_REASON_ARCH => Reason::Arch,
            sys::KVMNC_REASON_IGNORES_GUEST_PAT => Reason::IgnoresGuestPat,
            sys::KVMNC_REASON_UNKNOWN_VENDOR => Reason::UnknownVendor,
            sys::KVMNC_REASON_NO_TDP => Reason::NoTdp,
            sys::KVMNC_REASON_NO_SELF_SNOOP => Reason::NoSelfSnoop,
            sys::KVMNC_REASON_NATIVE_ALREADY => Reason::NativeAlready,
            sys::KVMNC_REASON_OTHER_MEANING => Reason::OtherMeaning,
            sys::KVMNC_REASON_VM_TYPE => Reason::VmType,
            sys::KVMNC_REASON_UC_VRAM_DISPLAY => Reason::UcVramDisplay,
            v => Reason::Unknown(v),
        }
    }

    /// The C value.
    pub fn as_raw(self) -> u32 {
        match self {
            Reason::Unset => sys::KVMNC_REASON_UNSET,
            Reason::Supported => sys::KVMNC_REASON_SUPPORTED,
            Reason::CouldNotTell => sys::KVMNC_REASON_COULD_NOT_TELL,
            Reason::KernelLacks => sys::KVMNC_REASON_KERNEL_LACKS,
            Reason::Arch => sys::KVMNC_REASON_ARCH,
            Reason::IgnoresGuestPat => sys::KVMNC_REASON_IGNORES_GUEST_PAT,
            Reason::UnknownVendor => sys::KVMNC_REASON_UNKNOWN_VENDOR,
            Reason::NoTdp => sys::KVMNC_REASON_NO_TDP,
            Reason::NoSelfSnoop => sys::KVMNC_REASON_NO_SELF_SNOOP,
            Reason::NativeAlready => sys::KVMNC_REASON_NATIVE_ALREADY,
            Reason::OtherMeaning => sys::KVMNC_REASON_OTHER_MEANING,
            Reason::VmType => sys::KVMNC_REASON_VM_TYPE,
            Reason::UcVramDisplay => sys::KVMNC_REASON_UC_VRAM_DISPLAY,
            Reason::Unknown(v) => v,
        }
    }

    /// The code's name as `docs/reasons.tsv` and `kvmnc-probe --json` give
    /// it (`kvmnc_reason_name()`): "supported", "no_tdp", ...; `None` for a
    /// code the running library does not know either.
    pub fn name(self) -> Option<&'static str> {
        // The C call takes an int: a code past i32::MAX is no code at all
        // (and must not wrap into a negative one).
        let v = i32::try_from(self.as_raw()).ok()?;
        // SAFETY: returns a static string or NULL for any int.
        let p = unsafe { sys::kvmnc_reason_name(v) };
        if p.is_null() {
            None
        } else {
            // SAFETY: a non-NULL answer is a static NUL-terminated string.
            Some(unsafe { crate::static_str(p) })
        }
    }
}

/// The name, or the number for a code no one knows.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.as_raw()),
        }
    }
}

/// What the memslot flag's "yes" rests on (`enum kvmnc_flag_evidence`,
/// since 1.2): bit 3 of the memslot flags is claimed by more than one
/// kernel series, so a kernel that accepts it has not thereby said what it
/// means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlagEvidence {
    /// Not supported, or could not be told.
    None,
    /// A capability whose number means the flag on this kernel.
    Capability,
    /// No such capability, but a guest access to the flagged trial slot
    /// completed on a scratch VM.
    Access,
    /// A value this crate does not know.
    Unknown(u32),
}

impl FlagEvidence {
    fn from_raw(v: u32) -> FlagEvidence {
        match v {
            sys::KVMNC_FLAG_EVIDENCE_NONE => FlagEvidence::None,
            sys::KVMNC_FLAG_EVIDENCE_CAPABILITY => FlagEvidence::Capability,
            sys::KVMNC_FLAG_EVIDENCE_ACCESS => FlagEvidence::Access,
            v => FlagEvidence::Unknown(v),
        }
    }
}

/// One mechanism's answer with its reason: a code to branch on and one
/// sentence from the library (the text `kvmnc-probe` prints, and
/// `docs/guide/troubleshooting.md` explains).
///
/// ```no_run
/// use kvmnc::Reason;
/// let f = kvmnc::probe()?;
/// let s = &f.memslot_flag;
/// println!("memslot_flag: {} ({}): {}", s.support.is_supported(), s.code, s.reason);
/// if s.code == Reason::NoSelfSnoop {
///     println!("this CPU cannot honor guest PAT safely: map the blobs cached");
/// }
/// # Ok::<(), kvmnc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MechStatus {
    /// Supported, unsupported, or could not tell.
    pub support: Support,
    /// Why, as a code (the `*_reason` field of `struct kvmnc_features`).
    pub code: Reason,
    /// Why, in one sentence.
    pub reason: String,
}

impl MechStatus {
    fn from_raw(s: &sys::kvmnc_mech_status, code: u32) -> MechStatus {
        MechStatus {
            support: Support::from_raw(s.supported),
            code: Reason::from_raw(code),
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
    /// Capability that advertised the memslot flag (236, 239 or 250), 0 if
    /// none.
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
    /// What the memslot flag's "yes" rests on.
    pub memslot_flag_evidence: FlagEvidence,
    /// Since 1.3: whether KVM emulates the guest's WBINVD on request
    /// (`KVM_CAP_X86_EMULATE_WBINVD`), which
    /// [`OpenOptions::wbinvd`](crate::OpenOptions::wbinvd) turns on. Not a
    /// mechanism. [`Reason::Unset`] from a library before 1.3.
    pub wbinvd_emulation: MechStatus,
    /// Since 1.3: the capability that answered (251), 0 if none.
    pub wbinvd_emulation_cap: u32,
    raw: Box<sys::kvmnc_features>,
}

impl Features {
    pub(crate) fn from_raw(f: sys::kvmnc_features) -> Features {
        Features {
            native: MechStatus::from_raw(&f.native, f.native_reason),
            memslot_flag: MechStatus::from_raw(&f.memslot_flag, f.memslot_flag_reason),
            virtio_device: MechStatus::from_raw(&f.virtio_device, f.virtio_device_reason),
            guest_pat_quirk: MechStatus::from_raw(&f.guest_pat_quirk, f.guest_pat_quirk_reason),
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
            memslot_flag_evidence: FlagEvidence::from_raw(f.memslot_flag_evidence),
            wbinvd_emulation: MechStatus::from_raw(&f.wbinvd_emulation, f.wbinvd_emulation_reason),
            wbinvd_emulation_cap: f.wbinvd_emulation_cap,
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
