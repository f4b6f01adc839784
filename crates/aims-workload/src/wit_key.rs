//! WIT-SVID workload keys: a fresh ES256 key pair per WIT-SVID, delivered to the workload
//! as a private JWK (the Workload API's `wit_svid_key`).
//!
//! `aims_crypto::SigningKey` exports private keys only as PKCS#8, so the private scalar
//! `d` is read out of the PKCS#8 document (RFC 5208 `PrivateKeyInfo` wrapping an RFC 5915
//! `ECPrivateKey`) with a minimal DER reader, and the result is checked by loading the JWK
//! back and comparing public keys.

use aims_crypto::{Algorithm, Jwk, Signer as _, SigningKey, b64};
use zeroize::Zeroizing;

use crate::provider::ProviderError;

/// A workload key pair: the public JWK for `cnf.jwk` and the private JWK as JSON.
pub(crate) struct WorkloadKey {
    pub(crate) public: Jwk,
    pub(crate) private_json: Zeroizing<String>,
}

const P256_SCALAR_LEN: usize = 32;

/// Generates an ES256 key pair and its private JWK (`kty`, `crv`, `x`, `y`, `d`, `alg`,
/// `kid` = RFC 7638 thumbprint).
pub(crate) fn generate() -> Result<WorkloadKey, ProviderError> {
    let key = SigningKey::generate(Algorithm::ES256)?;
    let pkcs8 = key.to_pkcs8()?;
    let d = p256_scalar(&pkcs8)
        .ok_or_else(|| ProviderError::Failed("unexpected PKCS#8 layout of an EC key".into()))?;
    let public = key.public_jwk().clone();
    let mut private = public.clone();
    private.extra.insert(
        "d".to_owned(),
        serde_json::Value::String(b64::encode_url(&*d)),
    );
    // The extracted scalar must give back the same key.
    let reloaded = SigningKey::from_private_jwk(&private)?;
    if reloaded.public_key_bytes() != key.public_key_bytes() {
        return Err(ProviderError::Failed(
            "private JWK does not match the generated key".into(),
        ));
    }
    let private_json = Zeroizing::new(
        serde_json::to_string(&private).map_err(|e| ProviderError::Failed(e.to_string()))?,
    );
    // `private` holds `d` in a serde_json::Value, which cannot be zeroized in place.
    drop(private);
    Ok(WorkloadKey {
        public,
        private_json,
    })
}

/// One DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;

/// The private scalar of a P-256 PKCS#8 key, left-padded to 32 bytes.
fn p256_scalar(pkcs8: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (tag, info, _) = tlv(pkcs8)?;
    (tag == SEQUENCE).then_some(())?;
    let (tag, _version, rest) = tlv(info)?;
    (tag == INTEGER).then_some(())?;
    let (tag, _algorithm, rest) = tlv(rest)?;
    (tag == SEQUENCE).then_some(())?;
    let (tag, ec_key_der, _) = tlv(rest)?;
    (tag == OCTET_STRING).then_some(())?;
    let (tag, ec_key, _) = tlv(ec_key_der)?;
    (tag == SEQUENCE).then_some(())?;
    let (tag, _version, rest) = tlv(ec_key)?;
    (tag == INTEGER).then_some(())?;
    let (tag, scalar, _) = tlv(rest)?;
    (tag == OCTET_STRING && !scalar.is_empty() && scalar.len() <= P256_SCALAR_LEN).then_some(())?;
    let mut d = Zeroizing::new(vec![0u8; P256_SCALAR_LEN - scalar.len()]);
    d.extend_from_slice(scalar);
    Some(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn private_jwk_round_trips() {
        let k = generate().unwrap();
        let jwk: Jwk = serde_json::from_str(&k.private_json).unwrap();
        assert!(jwk.has_private_members());
        assert_eq!(jwk.alg.as_deref(), Some("ES256"));
        assert_eq!(jwk.to_public(), k.public);
        let signer = SigningKey::from_private_jwk(&jwk).unwrap();
        assert_eq!(signer.public_jwk().x, k.public.x);
        assert!(!k.public.has_private_members());
    }

    #[test]
    fn der_reader_refuses_truncated_input() {
        assert!(tlv(&[]).is_none());
        assert!(tlv(&[0x30]).is_none());
        assert!(tlv(&[0x30, 0x05, 0x00]).is_none());
        assert!(tlv(&[0x30, 0x80]).is_none());
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert_eq!(
            tlv(&[0x04, 0x81, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
        assert!(p256_scalar(&[0x30, 0x00]).is_none());
    }
}
