//! Strings and JSON across the boundary: borrowed C input strings (NULL and UTF-8 checked),
//! strings handed to C (owned by the caller, freed with `iii_string_free`), and the
//! pointer checks every entry point uses.

use std::ffi::{CStr, CString, c_char};

use serde_json::Value;

use crate::result::{Failure, iii_result, run_void};

/// Borrows a C string argument for the call: NULL → `III_NULL_ARGUMENT`, bad UTF-8 →
/// `III_INVALID_ARGUMENT`.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn input_str<'a>(text: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if text.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(text) };
    bytes
        .to_str()
        .map_err(|error| Failure::invalid(format!("`{name}` is not valid UTF-8: {error}")))
}

/// Like [`input_str`], with NULL meaning `None`.
///
/// # Safety
/// As [`input_str`].
pub(crate) unsafe fn optional_str<'a>(
    text: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if text.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { input_str(text, name) }.map(Some)
}

/// Parses a JSON argument; a parse error is `III_INVALID_ARGUMENT` naming the argument.
pub(crate) fn parse_json(text: &str, name: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|error| Failure::invalid(format!("`{name}` is not valid JSON: {error}")))
}

/// Checks that an out-parameter is not NULL.
pub(crate) fn check_out<T>(out: *mut T, name: &str) -> Result<(), Failure> {
    if out.is_null() {
        Err(Failure::null(name))
    } else {
        Ok(())
    }
}

/// Borrows a handle argument: NULL → `III_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or a live handle of type `T` made by this library, not freed meanwhile.
pub(crate) unsafe fn handle<'a, T>(handle: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: forwarded contract.
    unsafe { handle.as_ref() }.ok_or_else(|| Failure::null(name))
}

/// A Rust string as a C string owned by the caller (NUL bytes inside are refused: a C string
/// cannot carry them).
pub(crate) fn output_string(text: String, what: &str) -> Result<*mut c_char, Failure> {
    CString::new(text).map(CString::into_raw).map_err(|_| {
        Failure::new(
            iii_result::III_PROTOCOL,
            format!("{what} contains a NUL character, which a C string cannot carry"),
        )
    })
}

/// JSON text of `value` as a C string owned by the caller.
pub(crate) fn output_json(value: &Value) -> Result<*mut c_char, Failure> {
    // JSON escapes NUL characters, so the text never contains one.
    output_string(value.to_string(), "the JSON text")
}

/// Frees a string this library returned through a `char **` out-parameter (once). NULL is
/// a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_string_free(string: *mut c_char) {
    if string.is_null() {
        return;
    }
    run_void(|| {
        // SAFETY: made by `CString::into_raw` in this library, freed once by the contract.
        drop(unsafe { CString::from_raw(string) });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked() {
        // SAFETY: NULL and static NUL-terminated strings.
        unsafe {
            assert!(input_str(std::ptr::null(), "x").is_err());
            assert_eq!(input_str(c"abc".as_ptr(), "x").ok(), Some("abc"));
            let bad = [0xffu8, 0];
            let failure = input_str(bad.as_ptr().cast(), "x").err();
            assert_eq!(
                failure.map(|f| f.code),
                Some(iii_result::III_INVALID_ARGUMENT)
            );
            assert_eq!(optional_str(std::ptr::null(), "x").ok(), Some(None));
        }
        assert!(parse_json("{", "json").is_err());
    }

    #[test]
    fn output_strings_round_trip() {
        let text = output_string("hi".into(), "t").unwrap_or(std::ptr::null_mut());
        assert!(!text.is_null());
        // SAFETY: made by this library just above.
        unsafe { iii_string_free(text) };
        assert!(output_string("a\0b".into(), "t").is_err());
    }
}
