//! Channel access keys: one random key per end, so holding the reader's ref never lets
//! anyone write (docs/PROTOCOL.md §4.1), compared in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

/// Random bytes per key (256 bits).
pub(crate) const KEY_BYTES: usize = 32;

/// The key that opens one end of a channel.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AccessKey([u8; KEY_BYTES]);

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessKey(..)")
    }
}

impl AccessKey {
    /// Two fresh, independent keys (writer, reader) from `rand`'s thread-local CSPRNG
    /// (ChaCha12, seeded and periodically reseeded from the operating system). A system call
    /// per key cost 8 % of the engine's CPU under HTTP load (BENCHMARKS.md).
    pub(crate) fn generate_pair() -> (Self, Self) {
        let mut writer = [0u8; KEY_BYTES];
        let mut reader = [0u8; KEY_BYTES];
        rand::fill(&mut writer);
        rand::fill(&mut reader);
        (Self(writer), Self(reader))
    }

    /// The key as it travels in refs and URLs: lowercase hex.
    pub(crate) fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(2 * KEY_BYTES);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// True when `presented` is this key. The comparison of the key bytes takes the same time
    /// wherever they differ; only the (public) length and format fail fast.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        match decode_hex(presented) {
            Some(bytes) => bytes.ct_eq(&self.0).into(),
            None => false,
        }
    }
}

fn decode_hex(text: &str) -> Option<[u8; KEY_BYTES]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * KEY_BYTES {
        return None;
    }
    let mut out = [0u8; KEY_BYTES];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = match pair {
            [high, low] => (nibble(*high)?, nibble(*low)?),
            _ => return None,
        };
        *byte = (high << 4) | low;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_round_trip() {
        let (writer, reader) = AccessKey::generate_pair();
        assert_ne!(writer, reader);
        let hex = writer.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(writer.matches(&hex));
        assert!(writer.matches(&hex.to_uppercase()));
        assert!(!reader.matches(&hex));
    }

    #[test]
    fn malformed_keys_never_match() {
        let (writer, _) = AccessKey::generate_pair();
        let hex = writer.to_hex();
        assert!(!writer.matches(""));
        assert!(!writer.matches(&hex[..62]));
        assert!(!writer.matches(&format!("{}zz", &hex[..62])));
        assert!(!writer.matches(&format!("{hex}00")));
        assert!(!writer.matches(&"é".repeat(32)));
    }

    #[test]
    fn debug_does_not_leak_the_key() {
        let (writer, _) = AccessKey::generate_pair();
        assert_eq!(format!("{writer:?}"), "AccessKey(..)");
    }
}
