use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

/// SHA-256 of `data`.
pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of everything `reader` yields, read in 64 KiB pieces (memory stays flat
/// however large the input), and how many bytes that was.
pub fn sha256_reader(mut reader: impl std::io::Read) -> std::io::Result<([u8; 32], u64)> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        ctx.update(buf.get(..n).unwrap_or_default());
        total = total.saturating_add(n as u64);
    }
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    Ok((out, total))
}

/// SHA-512 of `data`.
pub fn sha512(data: impl AsRef<[u8]>) -> [u8; 64] {
    let d = digest::digest(&digest::SHA512, data.as_ref());
    let mut out = [0u8; 64];
    out.copy_from_slice(d.as_ref());
    out
}

/// base64url(SHA-256(data)): the form of DPoP `ath`, WPT `wth`/`ath`/`tth`, and `x5t#S256`.
pub fn sha256_b64url(data: impl AsRef<[u8]>) -> String {
    crate::b64::encode_url(sha256(data))
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CryptoError::Internal)?;
    Ok(out)
}

/// A random 128-bit value, base64url-encoded: for `jti`, nonces and opaque handles.
pub fn random_token() -> Result<String, CryptoError> {
    Ok(crate::b64::encode_url(random_bytes::<16>()?))
}

/// A random 128-bit identifier, base64url-encoded, for values that must be unique but
/// are not secrets: the `jti` of a token that is signed. It comes from the same CSPRNG as
/// [`random_token`], drawn 512 bytes at a time into a per-thread pool, so a call costs a
/// copy rather than a call into the generator. Handles, nonces and keys, which are
/// secrets, use [`random_token`] and never sit in a pool.
pub fn unique_id() -> Result<String, CryptoError> {
    const POOL: usize = 512;
    thread_local! {
        static IDS: std::cell::RefCell<(usize, [u8; POOL])> =
            const { std::cell::RefCell::new((POOL, [0; POOL])) };
    }
    IDS.with(|cell| {
        let mut pool = cell.borrow_mut();
        let (used, bytes) = &mut *pool;
        if *used + 16 > POOL {
            SystemRandom::new()
                .fill(bytes)
                .map_err(|_| CryptoError::Internal)?;
            *used = 0;
        }
        let id = bytes.get(*used..*used + 16).ok_or(CryptoError::Internal)?;
        let out = crate::b64::encode_url(id);
        *used += 16;
        Ok(out)
    })
}

/// Compares two secrets in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_128_bit_and_do_not_repeat_across_pool_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = unique_id().unwrap();
            assert_eq!(crate::b64::decode_url(&id).unwrap().len(), 16);
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn streamed_sha256_equals_the_one_shot_digest() {
        // Longer than one 64 KiB piece, not a multiple of it.
        let data: Vec<u8> = (0..200_001u32).map(|i| (i % 251) as u8).collect();
        let (d, n) = sha256_reader(data.as_slice()).unwrap();
        assert_eq!(d, sha256(&data));
        assert_eq!(n, 200_001);
        // FIPS 180-2 "abc".
        let (d, n) = sha256_reader(&b"abc"[..]).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            crate::b64::encode_url(d),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn rfc9449_ath_vector() {
        // RFC 9449 section 7.1.
        assert_eq!(
            sha256_b64url("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn rfc7636_pkce_s256_vector() {
        // RFC 7636 appendix B.
        assert_eq!(
            sha256_b64url("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_differ_and_have_128_bits() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(crate::b64::decode_url(&a).unwrap().len(), 16);
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
