// SPDX-License-Identifier: LGPL-2.1-or-later
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, RwLock};

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
    fn as_raw(self) -> i32 {
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

type Logger = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

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
