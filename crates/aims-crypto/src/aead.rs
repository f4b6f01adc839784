//! Envelope encryption of stored secrets with a key-encryption key (AES-256-GCM).
//!
//! A [`Kek`] seals a secret (e.g. a signing key's PKCS#8) into `nonce || ciphertext ||
//! tag` under additional authenticated data that names what the secret is, so a sealed
//! value cannot be moved to another record. Nonces are 96 random bits drawn by aws-lc
//! itself for every seal (AES-GCM with random nonces stays within NIST SP 800-38D §8.3
//! for up to 2^32 seals per key; a server seals a few keys a day).

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use crate::CryptoError;

/// Length of a key-encryption key in bytes (AES-256).
pub const KEK_LEN: usize = 32;

/// Length of the authentication tag appended to the ciphertext.
const TAG_LEN: usize = 16;

/// A key-encryption key: AES-256-GCM.
///
/// The key lives inside aws-lc-rs, which cleanses it when the `Kek` is dropped; the
/// constructors never keep a copy of the bytes they were given. `Debug` prints no key
/// material.
pub struct Kek {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(AES-256-GCM, <redacted>)")
    }
}

impl Kek {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEK_LEN {
            return Err(CryptoError::InvalidKey(
                "a key-encryption key is 32 bytes (AES-256)",
            ));
        }
        let key =
            RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::Internal)?;
        Ok(Self { key })
    }

    /// A key from the base64 text of its 32 bytes, standard or URL-safe alphabet, with
    /// or without padding, surrounding whitespace ignored (the output of
    /// `head -c 32 /dev/urandom | base64`).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        use base64::Engine as _;
        use base64::engine::DecodePaddingMode;
        use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
        let config =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let text = text.trim();
        let decoded = [
            GeneralPurpose::new(&base64::alphabet::STANDARD, config),
            GeneralPurpose::new(&base64::alphabet::URL_SAFE, config),
        ]
        .iter()
        .find_map(|engine| engine.decode(text).ok().map(Zeroizing::new))
        .ok_or(CryptoError::InvalidKey(
            "a key-encryption key file holds base64 text",
        ))?;
        Self::from_bytes(&decoded)
    }

    /// Encrypts `plaintext`, authenticating `aad` with it: `nonce || ciphertext || tag`,
    /// with a fresh random nonce (so two seals of the same input differ).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // Room for everything up front: the plaintext copy is encrypted in place and the
        // buffer never reallocates, so no plaintext is left behind in freed memory.
        // Zeroizing until sealed: if sealing fails, the plaintext copy is wiped on drop.
        let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
        out.resize(NONCE_LEN, 0);
        out.extend_from_slice(plaintext);
        let body = out.get_mut(NONCE_LEN..).ok_or(CryptoError::Internal)?;
        let (nonce, tag) = self
            .key
            .seal_in_place_separate_tag(Aad::from(aad), body)
            .map_err(|_| CryptoError::Internal)?;
        out.get_mut(..NONCE_LEN)
            .ok_or(CryptoError::Internal)?
            .copy_from_slice(nonce.as_ref());
        out.extend_from_slice(tag.as_ref());
        Ok(std::mem::take(&mut *out))
    }

    /// Decrypts what [`Kek::seal`] made with the same `aad`. Any failure (wrong key,
    /// other `aad`, altered or truncated input) is the same opaque
    /// [`CryptoError::Unseal`].
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (nonce, body) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::Unseal)?;
        if body.len() < TAG_LEN {
            return Err(CryptoError::Unseal);
        }
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| CryptoError::Unseal)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use aws_lc_rs::aead::{LessSafeKey, UnboundKey};

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Test only: what [`Kek::seal`] would produce had aws-lc drawn `nonce`.
    fn seal_with_nonce(
        key: &[u8],
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Vec<u8> {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .unwrap();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        out
    }

    fn kek() -> Kek {
        Kek::from_bytes(&[7u8; KEK_LEN]).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = kek();
        let sealed = k.seal(b"private key", b"x509_ca\0kid").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 11 + TAG_LEN);
        assert_eq!(
            k.open(&sealed, b"x509_ca\0kid").unwrap().as_slice(),
            b"private key"
        );
        // The empty plaintext too.
        let sealed = k.seal(b"", b"").unwrap();
        assert!(k.open(&sealed, b"").unwrap().is_empty());
    }

    #[test]
    fn wrong_aad_fails() {
        let k = kek();
        let sealed = k.seal(b"private key", b"jwt_svid\0a").unwrap();
        assert_eq!(k.open(&sealed, b"jwt_svid\0b"), Err(CryptoError::Unseal));
        assert_eq!(k.open(&sealed, b"wit_svid\0a"), Err(CryptoError::Unseal));
        assert_eq!(k.open(&sealed, b""), Err(CryptoError::Unseal));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = kek().seal(b"private key", b"aad").unwrap();
        let other = Kek::from_bytes(&[8u8; KEK_LEN]).unwrap();
        assert_eq!(other.open(&sealed, b"aad"), Err(CryptoError::Unseal));
    }

    #[test]
    fn every_flipped_bit_fails() {
        let k = kek();
        let sealed = k.seal(b"private key", b"aad").unwrap();
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(k.open(&bad, b"aad"), Err(CryptoError::Unseal), "bit {i}");
        }
    }

    #[test]
    fn truncated_input_fails_without_panic() {
        let k = kek();
        let sealed = k.seal(b"private key", b"aad").unwrap();
        for n in 0..sealed.len() {
            assert_eq!(
                k.open(&sealed[..n], b"aad"),
                Err(CryptoError::Unseal),
                "{n}"
            );
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(k.open(&longer, b"aad"), Err(CryptoError::Unseal));
    }

    #[test]
    fn two_seals_of_the_same_input_differ() {
        let k = kek();
        let a = k.seal(b"private key", b"aad").unwrap();
        let b = k.seal(b"private key", b"aad").unwrap();
        assert_ne!(a, b);
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
    }

    /// AES-256-GCM Test Case 16 of McGrew & Viega, "The Galois/Counter Mode of
    /// Operation (GCM)", revised 2005, Appendix B (the specification NIST SP 800-38D
    /// adopted): 256-bit key, 96-bit IV, 20 bytes of AAD, 60 bytes of plaintext.
    #[test]
    fn known_answer_gcm_spec_test_case_16() {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let iv: [u8; NONCE_LEN] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let expected = hex(concat!(
            "cafebabefacedbaddecaf888",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b"
        ));
        assert_eq!(seal_with_nonce(&key, iv, &pt, &aad), expected);
        // The production path opens the published ciphertext in its stored layout.
        let k = Kek::from_bytes(&key).unwrap();
        assert_eq!(k.open(&expected, &aad).unwrap().as_slice(), pt.as_slice());
        // And what it seals, the reference opens.
        let sealed = k.seal(&pt, &aad).unwrap();
        let reference = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut body = sealed[NONCE_LEN..].to_vec();
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).unwrap();
        let opened = reference
            .open_in_place(nonce, Aad::from(&aad), &mut body)
            .unwrap();
        assert_eq!(opened, pt.as_slice());
    }

    #[test]
    fn key_length_and_base64_forms() {
        assert!(Kek::from_bytes(&[0u8; 31]).is_err());
        assert!(Kek::from_bytes(&[0u8; 33]).is_err());
        // 32 bytes of 0xfb: `+`/`/` in the standard alphabet, `-`/`_` in the URL-safe one.
        let bytes = [0xfbu8; KEK_LEN];
        let std = crate::b64::encode_std(bytes);
        let url = crate::b64::encode_url(bytes);
        assert!(std.contains('+') && std.ends_with('='));
        let sealed = Kek::from_bytes(&bytes).unwrap().seal(b"x", b"").unwrap();
        for text in [
            std.clone(),
            format!("{std}\n"),
            format!("  {}\r\n", std.trim_end_matches('=')),
            url.clone(),
            format!("{url}=\n"),
        ] {
            let k = Kek::from_base64(&text).unwrap();
            assert_eq!(k.open(&sealed, b"").unwrap().as_slice(), b"x", "{text:?}");
        }
        for bad in [
            "",
            "not base64!",
            &crate::b64::encode_std([1u8; 31]),
            &crate::b64::encode_std([1u8; 48]),
        ] {
            assert!(Kek::from_base64(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{:?}", kek()), "Kek(AES-256-GCM, <redacted>)");
    }
}
