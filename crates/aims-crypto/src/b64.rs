//! Base64 helpers: URL-safe without padding (JOSE, RFC 7515 section 2) and standard
//! with padding (X.509 `x5c`, RFC 7517 section 4.7).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// base64url without padding.
pub fn encode_url(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url without padding; rejects padding and non-alphabet characters.
pub fn decode_url(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Standard base64 with padding.
pub fn encode_std(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64 with padding.
pub fn decode_std(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn url_rejects_padding_and_std_alphabet() {
        assert_eq!(decode_url("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(decode_url("AQ=="), None);
        assert_eq!(decode_url("a+b/"), None);
        assert_eq!(encode_url([0xfb, 0xff]), "-_8");
    }
}
