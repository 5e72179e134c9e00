//! Result codes, the thread-local last error message, and the panic boundary every entry point
//! runs inside.
//!
//! A failure inside the crate is a `Failure`: the code returned to C and the text
//! `iii_last_error_message` gives. Core errors map kind by kind (no catch-all arm), so a new
//! `ErrorKind` in the core is a compile error here.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use iii_sdk::{ErrorKind, IIIError};

/// The outcome of a fallible call. `III_OK` is 0; every other value is a failure (or, for
/// `III_END`, the clean end of a stream).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum iii_result {
    /// Success: the out-parameters are written.
    III_OK = 0,
    /// The stream ended cleanly (reads), or no message is left after its end.
    III_END = 1,
    /// The call did not complete within its timeout; nothing was lost (reads), though part of
    /// the data of a timed-out write may have been sent.
    III_TIMEOUT = 2,
    /// A pointer argument that must not be NULL was NULL.
    III_NULL_ARGUMENT = 3,
    /// Bad UTF-8, invalid JSON, a missing key or a wrong shape, a ref of the wrong direction,
    /// or a call made where it is not allowed.
    III_INVALID_ARGUMENT = 4,
    /// The writer aborted the stream (its reason is in the last error message).
    III_CHANNEL_ABORTED = 5,
    /// The writer disappeared without closing: the stream is truncated.
    III_WRITER_LOST = 6,
    /// The reader closed (or this reader was closed): no more data can flow.
    III_READER_CLOSED = 7,
    /// The channel expired before both ends connected.
    III_CHANNEL_EXPIRED = 8,
    /// The channel socket closed with another code (e.g. the end was already taken).
    III_CHANNEL_CLOSED = 9,
    /// The engine refused the channel socket (wrong key, unknown channel) or is unreachable.
    III_CHANNEL_CONNECT = 10,
    /// The connection to the engine failed or was lost.
    III_CONNECTION = 11,
    /// The worker is not connected and gave up reconnecting.
    III_NOT_CONNECTED = 12,
    /// The remote function failed; the last error message is `"<code>: <message>"`.
    III_INVOCATION_FAILED = 13,
    /// A handler failed.
    III_HANDLER = 14,
    /// A peer broke the protocol.
    III_PROTOCOL = 15,
    /// The worker was shut down.
    III_SHUTDOWN = 16,
    /// A bug: a panic was caught at the API boundary.
    III_PANIC = 17,
    /// The engine is going away (shutting down): the stream or call was cut by the engine's
    /// stop, not by its peer; the data is incomplete.
    III_GOING_AWAY = 18,
}

use iii_result::*;

/// Why a call failed: the code for C and the text for `iii_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: iii_result,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: iii_result, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(III_INVALID_ARGUMENT, message)
    }

    pub(crate) fn null(name: &str) -> Self {
        Self::new(III_NULL_ARGUMENT, format!("`{name}` is NULL"))
    }
}

/// The code of each core error kind.
pub(crate) fn code_of(kind: ErrorKind) -> iii_result {
    match kind {
        ErrorKind::Handler => III_HANDLER,
        ErrorKind::Invocation => III_INVOCATION_FAILED,
        ErrorKind::Timeout => III_TIMEOUT,
        ErrorKind::NotConnected => III_NOT_CONNECTED,
        ErrorKind::Connection => III_CONNECTION,
        ErrorKind::ChannelAborted => III_CHANNEL_ABORTED,
        ErrorKind::WriterLost => III_WRITER_LOST,
        ErrorKind::ReaderClosed => III_READER_CLOSED,
        ErrorKind::ChannelExpired => III_CHANNEL_EXPIRED,
        ErrorKind::ChannelClosed => III_CHANNEL_CLOSED,
        ErrorKind::ChannelConnect => III_CHANNEL_CONNECT,
        ErrorKind::Protocol => III_PROTOCOL,
        ErrorKind::Serde => III_INVALID_ARGUMENT,
        ErrorKind::Shutdown => III_SHUTDOWN,
        ErrorKind::GoingAway => III_GOING_AWAY,
        ErrorKind::InvalidArgument => III_INVALID_ARGUMENT,
    }
}

impl From<IIIError> for Failure {
    fn from(error: IIIError) -> Self {
        Self::new(code_of(error.kind()), error.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // A NUL inside the text would cut it short in C; it cannot stop the message being set.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
}

/// Runs the body of an entry point: catches panics, turns the outcome into a code, and
/// records the last error text ("" on success).
///
/// The previous text is replaced only after the body ran: a caller may pass
/// `iii_last_error_message()` itself as an argument (e.g. to `iii_reply_error`).
pub(crate) fn run(body: impl FnOnce() -> Result<(), Failure>) -> iii_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            return III_OK;
        }
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Failure::new(III_PANIC, format!("bug in libiii: {what}"))
        }
    };
    // The text alone: a remote failure must read exactly "<code>: <message>".
    set_last_error(if failure.code == III_END {
        ""
    } else {
        &failure.message
    });
    failure.code
}

/// Runs the body of a `void` entry point (the `_free` functions), swallowing panics and
/// leaving the last error alone.
pub(crate) fn run_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// The name of a result code, e.g. `"III_CHANNEL_ABORTED"`: a static string, never NULL
/// (`"III_UNKNOWN"` for a value that is not a code).
#[unsafe(no_mangle)]
pub extern "C" fn iii_result_name(result: u32) -> *const c_char {
    let name: &'static std::ffi::CStr = match result {
        0 => c"III_OK",
        1 => c"III_END",
        2 => c"III_TIMEOUT",
        3 => c"III_NULL_ARGUMENT",
        4 => c"III_INVALID_ARGUMENT",
        5 => c"III_CHANNEL_ABORTED",
        6 => c"III_WRITER_LOST",
        7 => c"III_READER_CLOSED",
        8 => c"III_CHANNEL_EXPIRED",
        9 => c"III_CHANNEL_CLOSED",
        10 => c"III_CHANNEL_CONNECT",
        11 => c"III_CONNECTION",
        12 => c"III_NOT_CONNECTED",
        13 => c"III_INVOCATION_FAILED",
        14 => c"III_HANDLER",
        15 => c"III_PROTOCOL",
        16 => c"III_SHUTDOWN",
        17 => c"III_PANIC",
        18 => c"III_GOING_AWAY",
        _ => c"III_UNKNOWN",
    };
    name.as_ptr()
}

/// The text of the last failure of an iii call on this thread ("" if the last call
/// succeeded). Valid until the next iii call on this thread; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn iii_last_error_message() -> *const c_char {
    // The thread-local lives as long as the thread; the pointer stays valid until the next
    // call replaces the text.
    LAST_ERROR
        .try_with(|last| last.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn names_match_codes() {
        for code in 0..=17u32 {
            // SAFETY: iii_result_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(iii_result_name(code)) };
            assert!(name.to_str().is_ok_and(|n| n.starts_with("III_")));
        }
        let panic = III_PANIC as u32;
        // SAFETY: as above.
        let name = unsafe { CStr::from_ptr(iii_result_name(panic)) };
        assert_eq!(name.to_str().ok(), Some("III_PANIC"));
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(iii_result_name(99)) };
        assert_eq!(unknown.to_str().ok(), Some("III_UNKNOWN"));
    }

    #[test]
    fn panics_become_codes_with_a_message() {
        let code = run(|| panic!("boom"));
        assert_eq!(code, III_PANIC);
        // SAFETY: the pointer is valid until the next call on this thread.
        let text = unsafe { CStr::from_ptr(iii_last_error_message()) };
        assert!(text.to_string_lossy().contains("boom"));
        assert_eq!(run(|| Ok(())), III_OK);
        // SAFETY: as above.
        let text = unsafe { CStr::from_ptr(iii_last_error_message()) };
        assert!(text.to_bytes().is_empty());
    }
}
