// SPDX-License-Identifier: LGPL-2.1-or-later
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Mutex, RwLock};

use kvmnc_sys as sys;

/// A message's level (`enum kvmnc_log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Warnings (a handle closed with regions left, ...).
    Warn,
    /// What the library chose.
    Info,
    /// Every decision.
    Debug,
}

impl LogLevel {
    pub(crate) fn as_raw(self) -> i32 {
        match self {
            LogLevel::Error => sys::KVMNC_LOG_ERROR,
            LogLevel::Warn => sys::KVMNC_LOG_WARN,
            LogLevel::Info => sys::KVMNC_LOG_INFO,
            LogLevel::Debug => sys::KVMNC_LOG_DEBUG,
        }
    }

    fn from_raw(v: i32) -> LogLevel {
        match v {
            sys::KVMNC_LOG_ERROR => LogLevel::Error,
            sys::KVMNC_LOG_WARN => LogLevel::Warn,
            sys::KVMNC_LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
}

pub(crate) type Logger = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

// The library gets no pointer to the closure (its ctx stays NULL): a call
// already under way while the logger is replaced finds the new one or the
// old one through this lock, never freed memory.
static LOGGER: RwLock<Option<Logger>> = RwLock::new(None);

unsafe extern "C" fn trampoline(level: i32, msg: *const sys::c_char, _ctx: *mut sys::c_void) {
    // The lock is released before the call: the logger may call into the
    // library, which may log again, or replace the logger.
    let logger = match LOGGER.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    if let (Some(f), false) = (logger, msg.is_null()) {
        let text = CStr::from_ptr(msg).to_string_lossy();
        // Unwinding out of an extern "C" function aborts (or worse on old
        // compilers): a panicking logger loses its message instead.
        let _ = catch_unwind(AssertUnwindSafe(|| f(LogLevel::from_raw(level), &text)));
    }
}

/// Installs the process-wide log callback (`kvmnc_set_log()`), receiving
/// messages up to `max_level`; it replaces any earlier one. The library
/// prints nothing by itself. The callback runs on whichever thread made the
/// library call, never with a library lock held, and may call the library.
///
/// ```
/// use kvmnc::LogLevel;
/// kvmnc::set_log(LogLevel::Info, |level, msg| eprintln!("libkvmnc {level:?}: {msg}"));
/// let _ = kvmnc::probe();
/// kvmnc::clear_log();
/// ```
pub fn set_log<F>(max_level: LogLevel, f: F)
where
    F: Fn(LogLevel, &str) + Send + Sync + 'static,
{
    let logger: Logger = Arc::new(f);
    match LOGGER.write() {
        Ok(mut g) => *g = Some(logger),
        Err(p) => *p.into_inner() = Some(logger),
    }
    // SAFETY: the trampoline is valid for the process's life; ctx unused.
    unsafe { sys::kvmnc_set_log(Some(trampoline), max_level.as_raw(), ptr::null_mut()) };
}

/// Removes the log callback.
///
/// ```
/// kvmnc::clear_log();
/// ```
pub fn clear_log() {
    // SAFETY: NULL removes the callback.
    unsafe { sys::kvmnc_set_log(None, 0, ptr::null_mut()) };
    match LOGGER.write() {
        Ok(mut g) => *g = None,
        Err(p) => *p.into_inner() = None,
    }
}

/// A handle's own log callback (`kvmnc_set_handle_log()`), owned by the
/// [`Handle`](crate::Handle): its address is the `ctx` the library keeps,
/// so it stays at one place (boxed) and lives until after `kvmnc_close()`.
///
/// The library copies the callback and `ctx` under the handle's lock and
/// calls it after dropping the lock, so a call on another thread may reach
/// the trampoline after the callback was replaced or removed: the
/// trampoline then finds whatever is installed now (or nothing), never a
/// closure that was freed, because replacing one only swaps the `Arc` in
/// here and the slot itself outlives every call on the handle.
#[derive(Default)]
pub(crate) struct HandleLog {
    f: RwLock<Option<Logger>>,
    // Serializes setters, so that two threads setting at once leave the
    // library with the level of the closure that stays.
    setter: Mutex<()>,
}

impl std::fmt::Debug for HandleLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = match self.f.read() {
            Ok(g) => g.is_some(),
            Err(p) => p.into_inner().is_some(),
        };
        f.debug_struct("HandleLog").field("set", &set).finish()
    }
}

impl HandleLog {
    /// Installs `f` (or removes the callback, `None`) for handle `h`.
    ///
    /// # Safety
    ///
    /// `h` is an open handle whose calls all end before `self` is dropped.
    pub(crate) unsafe fn set(
        &self,
        h: *mut sys::kvmnc,
        max_level: LogLevel,
        f: Option<Logger>,
    ) -> i32 {
        // Held across the C call, which delivers no message of its own (a
        // call delivers only what it queued itself), so no callback can
        // run inside it and try to take this lock again.
        let _setter = match self.setter.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let on = f.is_some();
        // The closure goes in before the library can call it, and comes out
        // only after the library stopped handing it out. The read-write
        // lock is only ever held for a moment, never across a library call.
        if on {
            self.store(f);
        }
        let ctx = self as *const HandleLog as *mut sys::c_void;
        let r = sys::kvmnc_set_handle_log(
            h,
            if on { Some(handle_trampoline) } else { None },
            max_level.as_raw(),
            ctx,
        );
        if !on || r < 0 {
            self.store(None);
        }
        r
    }

    fn store(&self, f: Option<Logger>) {
        let old = match self.f.write() {
            Ok(mut g) => std::mem::replace(&mut *g, f),
            Err(p) => std::mem::replace(&mut *p.into_inner(), f),
        };
        // Dropped after the lock: a closure's captures may run any Drop.
        drop(old);
    }
}

unsafe extern "C" fn handle_trampoline(level: i32, msg: *const sys::c_char, ctx: *mut sys::c_void) {
    if ctx.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: ctx is the HandleLog of a handle whose calls are still under
    // way (it is freed only after kvmnc_close()).
    let slot = &*(ctx as *const HandleLog);
    // Cloned and released before the call, as in the process-wide
    // trampoline: the closure may call the library or replace itself.
    let logger = match slot.f.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    if let Some(f) = logger {
        let text = CStr::from_ptr(msg).to_string_lossy();
        // A panic must not unwind into C: the message is lost instead.
        let _ = catch_unwind(AssertUnwindSafe(|| f(LogLevel::from_raw(level), &text)));
    }
}

/// The closure as the slots keep it.
pub(crate) fn boxed<F>(f: F) -> Logger
where
    F: Fn(LogLevel, &str) + Send + Sync + 'static,
{
    Arc::new(f)
}
