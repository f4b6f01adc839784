//! Internal X.509 helpers shared by the CA, SVID and bundle modules (x509-parser based).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;

/// Parses one DER certificate; trailing bytes are refused.
pub(crate) fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// Splits concatenated DER certificates (the Workload API encoding of chains and bundles).
/// `Err(index)` names the first certificate that does not parse.
pub(crate) fn split_concatenated(
    mut rest: &[u8],
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, usize> {
    let mut certs = Vec::new();
    while !rest.is_empty() {
        let index = certs.len();
        let consumed = match X509Certificate::from_der(rest) {
            Ok((remaining, _)) if remaining.len() < rest.len() => rest.len() - remaining.len(),
            _ => return Err(index),
        };
        let (one, tail) = rest.split_at(consumed);
        certs.push(rustls_pki_types::CertificateDer::from(one.to_vec()));
        rest = tail;
    }
    Ok(certs)
}

/// The public key family of a certificate's SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    P256,
    P384,
    P521,
    Ed25519,
    Rsa,
    Other,
}

pub(crate) fn key_kind(cert: &X509Certificate<'_>) -> KeyKind {
    let alg = &cert.public_key().algorithm;
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => KeyKind::P256,
            Some(c) if c == OID_NIST_EC_P384 => KeyKind::P384,
            Some(c) if c == OID_NIST_EC_P521 => KeyKind::P521,
            _ => KeyKind::Other,
        }
    } else if alg.algorithm == OID_SIG_ED25519 {
        KeyKind::Ed25519
    } else if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        KeyKind::Rsa
    } else {
        KeyKind::Other
    }
}

/// The subjectPublicKey BIT STRING contents: the SEC1 point for EC, the 32 raw bytes for
/// Ed25519, the RSAPublicKey DER for RSA. This is the form `aims-crypto` and rcgen use.
pub(crate) fn public_key_bytes<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    &cert.public_key().subject_public_key.data
}

/// The URI SANs of a certificate. `Err` if the SAN extension is malformed or duplicated.
pub(crate) fn uri_sans<'a>(cert: &'a X509Certificate<'_>) -> Result<Vec<&'a str>, ()> {
    let san = cert.subject_alternative_name().map_err(|_| ())?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// `Some(true)` for cA=true, `Some(false)` for a BasicConstraints without cA (or cA=false),
/// `None` if the extension is absent. `Err` if it is malformed or duplicated.
pub(crate) fn basic_constraints_ca(cert: &X509Certificate<'_>) -> Result<Option<bool>, ()> {
    Ok(cert
        .basic_constraints()
        .map_err(|_| ())?
        .map(|bc| bc.value.ca))
}

/// The key usage bits that SPIFFE rules look at; `None` if the extension is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyUsageBits {
    pub(crate) digital_signature: bool,
    pub(crate) key_cert_sign: bool,
    pub(crate) crl_sign: bool,
}

pub(crate) fn key_usage(cert: &X509Certificate<'_>) -> Result<Option<KeyUsageBits>, ()> {
    Ok(cert.key_usage().map_err(|_| ())?.map(|ku| KeyUsageBits {
        digital_signature: ku.value.digital_signature(),
        key_cert_sign: ku.value.key_cert_sign(),
        crl_sign: ku.value.crl_sign(),
    }))
}

/// Whether subject and issuer names are byte-identical (a self-issued certificate).
pub(crate) fn is_self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

/// Converts a fixed-width ECDSA signature (`r || s`, as JWS and aims-crypto produce it) to
/// the DER `ECDSA-Sig-Value` that X.509 requires (RFC 5480 §2.2 / RFC 3279 §2.2.3).
pub(crate) fn ecdsa_fixed_to_der(sig: &[u8]) -> Option<Vec<u8>> {
    if sig.is_empty() || !sig.len().is_multiple_of(2) || sig.len() > 132 {
        return None;
    }
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut body = Vec::with_capacity(sig.len() + 6);
    der_unsigned_integer(&mut body, r);
    der_unsigned_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    push_der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

fn der_unsigned_integer(out: &mut Vec<u8>, be: &[u8]) {
    let first_nonzero = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let digits = be.get(first_nonzero..).unwrap_or_default();
    let pad = digits.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    push_der_len(out, digits.len() + usize::from(pad));
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(digits);
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    // Signature values are far below 64 KiB.
    match u8::try_from(len) {
        Ok(l) if l < 0x80 => out.push(l),
        Ok(l) => {
            out.push(0x81);
            out.push(l);
        }
        Err(_) => {
            let l = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
            out.push(0x82);
            out.extend_from_slice(&l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_encoding() {
        // High bit set on r: a 0x00 pad byte; leading zeros on s are stripped.
        let mut sig = vec![0x80u8; 32];
        sig.extend_from_slice(&[0u8; 31]);
        sig.push(0x05);
        let der = ecdsa_fixed_to_der(&sig).unwrap();
        assert_eq!(der.first(), Some(&0x30));
        assert_eq!(der.get(1).copied(), Some((2 + 33 + 2 + 1) as u8));
        assert_eq!(der.get(2..5), Some(&[0x02, 33, 0x00][..]));
        assert_eq!(der.get(der.len() - 3..), Some(&[0x02, 1, 0x05][..]));
        // An all-zero integer is encoded as a single 0x00.
        let der = ecdsa_fixed_to_der(&[0u8; 64]).unwrap();
        assert_eq!(der, vec![0x30, 6, 0x02, 1, 0, 0x02, 1, 0]);
        assert!(ecdsa_fixed_to_der(&[1, 2, 3]).is_none());
        assert!(ecdsa_fixed_to_der(&[]).is_none());
        // P-521 sized signatures need the long length form.
        let der = ecdsa_fixed_to_der(&[0xffu8; 132]).unwrap();
        assert_eq!(der.get(..3), Some(&[0x30, 0x81, 2 * (2 + 67)][..]));
    }
}
