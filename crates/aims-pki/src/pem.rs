//! PEM (RFC 7468) reading and writing for certificates and PKCS#8 private keys.
//!
//! Decoding uses the PEM reader of `rustls-pki-types` (which decodes private-key sections
//! with constant-time base64); encoding is local. Text outside `-----BEGIN`/`-----END`
//! lines is ignored, as RFC 7468 §2 allows; sections of other types are skipped.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject, SectionKind};
use zeroize::Zeroizing;

/// Why PEM input could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The input is not empty but holds no PEM section at all.
    #[error("no PEM data found")]
    NotPem,
    /// A section is malformed: bad base64, a missing `END` line, or a bad `BEGIN` line.
    #[error("malformed PEM: {0}")]
    Malformed(String),
}

/// The sections of `input`, in order. Private-key sections are returned in [`Zeroizing`]
/// buffers; every other section in a plain one.
type Section = (SectionKind, Zeroizing<Vec<u8>>);

pub(crate) fn sections(input: &[u8]) -> Result<Vec<Section>, PemError> {
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(input) {
        let (kind, der) = item.map_err(|e| PemError::Malformed(short(&e)))?;
        out.push((kind, Zeroizing::new(der)));
    }
    if out.is_empty() && input.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(PemError::NotPem);
    }
    Ok(out)
}

/// Every `CERTIFICATE` section of `input`, as DER, in order; other sections are skipped.
/// An input with no certificate gives an empty vector (callers decide whether that is an
/// error); an input with no PEM section at all is [`PemError::NotPem`].
///
/// The DER is not parsed here.
pub fn certificates(input: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    Ok(sections(input)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.to_vec()))
        .collect())
}

/// The first `PRIVATE KEY` (PKCS#8) section of `input`, or `None` if there is none.
pub fn private_key_pkcs8(input: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, PemError> {
    Ok(sections(input)?
        .into_iter()
        .find(|(kind, _)| *kind == SectionKind::PrivateKey)
        .map(|(_, der)| der))
}

/// Encodes DER as one PEM section with the given label, 64 characters per line.
pub fn encode(label: &str, der: &[u8]) -> String {
    let mut out = String::new();
    encode_into(&mut out, label, der);
    out
}

/// Encodes certificates as consecutive `CERTIFICATE` sections.
pub fn encode_certificates<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> String {
    let mut out = String::new();
    for cert in certs {
        encode_into(&mut out, "CERTIFICATE", cert.as_ref());
    }
    out
}

/// Encodes a PKCS#8 private key as a `PRIVATE KEY` section; the text is zeroized on drop.
pub fn encode_private_key(pkcs8: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(aims_crypto::b64::encode_std(pkcs8));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    wrap_into(&mut out, "PRIVATE KEY", &b64);
    out
}

fn encode_into(out: &mut String, label: &str, der: &[u8]) {
    let b64 = aims_crypto::b64::encode_std(der);
    wrap_into(out, label, &b64);
}

fn wrap_into(out: &mut String, label: &str, b64: &str) {
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 output is ASCII, so every 64-byte chunk is valid UTF-8.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

/// A bounded description of a PEM error (the reader may echo input lines).
fn short(e: &rustls_pki_types::pem::Error) -> String {
    let mut s = format!("{e:?}");
    if s.len() > 120 {
        let mut end = 120;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_skipping() {
        let a = CertificateDer::from(vec![1u8; 100]);
        let b = CertificateDer::from(vec![2u8; 3]);
        let mut text = String::from("explanatory text\n");
        text.push_str(&encode_certificates([&a, &b]));
        text.push_str(&encode_private_key(&[9u8; 40]));
        let certs = certificates(text.as_bytes()).unwrap();
        assert_eq!(certs, vec![a, b]);
        assert_eq!(
            private_key_pkcs8(text.as_bytes())
                .unwrap()
                .unwrap()
                .as_slice(),
            &[9u8; 40]
        );
        // Every line is at most 64 characters of base64.
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
    }

    #[test]
    fn not_pem_and_empty() {
        assert_eq!(certificates(b"hello").unwrap_err(), PemError::NotPem);
        assert_eq!(certificates(b"").unwrap(), vec![]);
        assert_eq!(certificates(b" \n\t").unwrap(), vec![]);
        assert!(matches!(
            certificates(b"-----BEGIN CERTIFICATE-----\nAAAA"),
            Err(PemError::Malformed(_))
        ));
        assert!(matches!(
            certificates(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            Err(PemError::Malformed(_))
        ));
    }
}
