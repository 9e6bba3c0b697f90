//! Unpadded base64url, the only byte encoding JOSE uses (RFC 7515 §2).
//!
//! Decoding is strict: padding, `+`/`/` and non-canonical trailing bits are refused, so a
//! value keyctl accepts is one every JOSE library accepts too.

use base64ct::{Base64UrlUnpadded, Encoding};

/// Encodes bytes as unpadded base64url.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes unpadded base64url; `None` when the text is not canonical base64url.
#[must_use]
pub fn decode(text: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_padding() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("-_8").unwrap(), b"\xfb\xff");
        assert!(decode("-_8=").is_none());
        assert!(decode("+/8").is_none());
    }
}
