// SPDX-License-Identifier: LGPL-2.1-or-later
use std::fmt;
use std::io;

/// The library's errors: an errno and the text `kvmnc_strerror()` gives for
/// it, in the library's terms ("No non-coherent DMA mechanism is available
/// within the accepted scope" rather than "Operation not supported").
///
/// ```
/// use kvmnc::{errno, Error};
///
/// let e = Error::from_errno(errno::EOPNOTSUPP);
/// assert_eq!(e.errno(), errno::EOPNOTSUPP);
/// assert!(e.message().contains("mechanism"));
/// // VMM code that speaks std::io::Error keeps the text.
/// let io: std::io::Error = e.into();
/// assert_eq!(io.raw_os_error(), None);
/// assert!(io.to_string().contains("mechanism"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    errno: i32,
    message: &'static str,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error for a positive errno (a negative one is taken as its
    /// absolute value, as the C API returns them).
    ///
    /// ```
    /// let e = kvmnc::Error::from_errno(-kvmnc::errno::EBADF);
    /// assert_eq!(e.errno(), kvmnc::errno::EBADF);
    /// ```
    pub fn from_errno(errno: i32) -> Error {
        let errno = errno.checked_abs().unwrap_or(i32::MAX);
        // SAFETY: kvmnc_strerror() accepts any int and returns a static,
        // NUL-terminated string, never NULL.
        let message = unsafe { crate::static_str(kvmnc_sys::kvmnc_strerror(-errno)) };
        Error { errno, message }
    }

    /// The errno, positive (`libc::EOPNOTSUPP`, ...; see [`crate::errno`]).
    ///
    /// ```
    /// assert_eq!(kvmnc::Error::from_errno(22).errno(), 22);
    /// ```
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// `kvmnc_strerror()`'s text for the errno.
    ///
    /// ```
    /// let e = kvmnc::Error::from_errno(kvmnc::errno::EALREADY);
    /// assert!(e.message().contains("region plan"));
    /// ```
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The `std::io::ErrorKind` of the errno.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// let e = kvmnc::Error::from_errno(kvmnc::errno::ENOENT);
    /// assert_eq!(e.kind(), ErrorKind::NotFound);
    /// ```
    pub fn kind(&self) -> io::ErrorKind {
        io::Error::from_raw_os_error(self.errno).kind()
    }

    /// True for `EOPNOTSUPP`: nothing in the accepted scope can honor the
    /// request (or the forced mechanism is missing).
    ///
    /// ```
    /// assert!(kvmnc::Error::from_errno(kvmnc::errno::EOPNOTSUPP).is_unsupported());
    /// ```
    pub fn is_unsupported(&self) -> bool {
        self.errno == crate::errno::EOPNOTSUPP
    }

    /// The C convention: 0 or more is success, a negative errno an error.
    pub(crate) fn check(r: i32) -> Result<i32> {
        if r < 0 {
            Err(Error::from_errno(r))
        } else {
            Ok(r)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("errno", &self.errno)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The errno values the library's calls document, as Linux numbers them on
/// the architectures it supports (x86 and arm64 share the generic table),
/// so that callers need no `libc` crate to match on them.
///
/// ```
/// assert_eq!(kvmnc::errno::EINVAL, std::io::Error::from_raw_os_error(22).raw_os_error().unwrap());
/// ```
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such node, memslot, enabled device or pending plan.
    pub const ENOENT: i32 = 2;
    /// KVM refused the VM to this process (a child after `fork()`).
    pub const EIO: i32 = 5;
    /// Unknown non-zero struct bytes (the crate never sends any).
    pub const E2BIG: i32 = 7;
    /// Not an open file descriptor, or not an open handle.
    pub const EBADF: i32 = 9;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Permission denied on the KVM node.
    pub const EACCES: i32 = 13;
    /// Too late for the guest-PAT quirk (open with `devices(true)`).
    pub const EBUSY: i32 = 16;
    /// The memslot overlaps an existing one.
    pub const EEXIST: i32 = 17;
    /// The KVM device type is not registered.
    pub const ENODEV: i32 = 19;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Too many open files.
    pub const EMFILE: i32 = 24;
    /// Not a KVM VM (or not a KVM node).
    pub const ENOTTY: i32 = 25;
    /// A KVM API version other than 12.
    pub const EPROTO: i32 = 71;
    /// No mechanism within the accepted scope.
    pub const EOPNOTSUPP: i32 = 95;
    /// The VM already has an open handle in this process (one VM, one
    /// handle, since 1.2).
    pub const EISCONN: i32 = 106;
    /// A plan for this memslot waits for its outcome.
    pub const EALREADY: i32 = 114;
    /// What a [`RegionPlan`](crate::RegionPlan) dropped without an outcome reports.
    pub const ECANCELED: i32 = 125;
    /// A trial memslot could not be deleted from the caller's VM (since
    /// 1.2): discard that VM.
    pub const ENOTRECOVERABLE: i32 = 131;
}
