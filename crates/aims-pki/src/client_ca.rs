//! An operator's PKI for RFC 8705 §2.1 `tls_client_auth`: client certificates issued by
//! configured certificate authorities, outside any SPIFFE trust domain.
//!
//! | Rule | Failure |
//! |---|---|
//! | the roots are PEM certificates usable as trust anchors; at least one | [`ClientCaError::NoRoots`], [`ClientCaError::InvalidRoot`] |
//! | the chain (leaf first, then intermediates) builds to one of the roots, each signature verifies, every certificate is valid at the time given | [`ClientCaError::Path`] |
//! | the leaf is an end-entity certificate with the `clientAuth` extended key usage (when it has an EKU extension: rustls-webpki's rule) | [`ClientCaError::Path`] |
//! | the leaf's subjectAltName extension parses | [`ClientCaError::Unparseable`] |
//!
//! What the certificate may stand for is the caller's decision: [`ClientCaRoots::verify`]
//! returns the leaf's URI SANs, which `aims-oauth` compares with the client's registered
//! `tls_client_auth_san_uri`.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::KeyUsage;

use crate::{pem, x509};

/// Why client CA roots or a client certificate chain were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientCaError {
    /// The roots file holds no certificate.
    #[error("no CA certificate in the roots")]
    NoRoots,
    /// A root does not parse as a trust anchor.
    #[error("CA certificate {index} is not usable as a trust anchor")]
    InvalidRoot {
        /// Its position in the file (0-based).
        index: usize,
    },
    /// The chain is empty.
    #[error("no client certificate")]
    EmptyChain,
    /// The leaf does not parse (or its subjectAltName extension is malformed).
    #[error("the client certificate does not parse")]
    Unparseable,
    /// Path validation failed (untrusted issuer, bad signature, expired, not yet valid,
    /// a CA as leaf, no `clientAuth` usage, ...).
    #[error("the client certificate does not verify against the configured CAs: {0}")]
    Path(String),
}

/// Trust anchors for client certificates of an operator's PKI.
#[derive(Debug, Clone)]
pub struct ClientCaRoots {
    anchors: Vec<TrustAnchor<'static>>,
}

impl ClientCaRoots {
    /// The roots in a PEM file's contents (one or more `CERTIFICATE` blocks).
    pub fn from_pem(input: &[u8]) -> Result<Self, ClientCaError> {
        let certs = pem::certificates(input).map_err(|_| ClientCaError::NoRoots)?;
        if certs.is_empty() {
            return Err(ClientCaError::NoRoots);
        }
        let anchors = certs
            .iter()
            .enumerate()
            .map(|(index, cert)| {
                x509::parse(cert).ok_or(ClientCaError::InvalidRoot { index })?;
                webpki::anchor_from_trusted_cert(cert)
                    .map(|a| a.to_owned())
                    .map_err(|_| ClientCaError::InvalidRoot { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { anchors })
    }

    /// How many roots there are.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none (never true for roots from [`ClientCaRoots::from_pem`]).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Verifies a client certificate chain (leaf first) at `now` (Unix seconds) for
    /// client authentication; the leaf's URI SANs.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: i64,
    ) -> Result<Vec<String>, ClientCaError> {
        let (leaf, intermediates) = chain.split_first().ok_or(ClientCaError::EmptyChain)?;
        let parsed = x509::parse(leaf).ok_or(ClientCaError::Unparseable)?;
        let uris = x509::uri_sans(&parsed).map_err(|()| ClientCaError::Unparseable)?;
        let ee = webpki::EndEntityCert::try_from(leaf).map_err(|_| ClientCaError::Unparseable)?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            intermediates,
            time,
            KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| ClientCaError::Path(format!("{e:?}")))?;
        Ok(uris.into_iter().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };

    use super::*;

    const NOW: i64 = 1_900_000_000;

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        der: CertificateDer<'static>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let der = p.self_signed(&key).unwrap().der().clone();
        Ca {
            params: p,
            key,
            der,
        }
    }

    /// A leaf of `ca` with `uri` as URI SAN and the given extended key usages.
    fn leaf(
        ca: &Ca,
        uri: &str,
        eku: Vec<ExtendedKeyUsagePurpose>,
        expired: bool,
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "agent");
        p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = eku;
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = if expired {
            rcgen::date_time_ymd(2021, 1, 1)
        } else {
            rcgen::date_time_ymd(2039, 1, 1)
        };
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        p.signed_by(&key, &issuer).unwrap().der().clone()
    }

    fn roots(cas: &[&Ca]) -> ClientCaRoots {
        let pem = crate::pem::encode_certificates(cas.iter().map(|c| &c.der));
        ClientCaRoots::from_pem(pem.as_bytes()).unwrap()
    }

    const URI: &str = "https://agents.example.test/agent-1";

    #[test]
    fn a_leaf_of_a_configured_ca_verifies_and_names_its_uri_sans() {
        let a = ca("operator CA");
        let b = ca("another CA");
        let r = roots(&[&b, &a]);
        assert_eq!(r.len(), 2);
        let cert = leaf(&a, URI, vec![ExtendedKeyUsagePurpose::ClientAuth], false);
        assert_eq!(r.verify(&[cert], NOW).unwrap(), [URI]);
    }

    #[test]
    fn each_rule_refuses() {
        let a = ca("operator CA");
        let other = ca("unknown CA");
        let r = roots(&[&a]);
        let client = vec![ExtendedKeyUsagePurpose::ClientAuth];
        // Issued by a CA that is not configured.
        let foreign = leaf(&other, URI, client.clone(), false);
        assert!(matches!(
            r.verify(&[foreign], NOW),
            Err(ClientCaError::Path(_))
        ));
        // Expired.
        let old = leaf(&a, URI, client.clone(), true);
        assert!(matches!(r.verify(&[old], NOW), Err(ClientCaError::Path(_))));
        // A server-only certificate.
        let server = leaf(&a, URI, vec![ExtendedKeyUsagePurpose::ServerAuth], false);
        assert!(matches!(
            r.verify(&[server], NOW),
            Err(ClientCaError::Path(_))
        ));
        // The CA certificate itself as the leaf.
        assert!(r.verify(std::slice::from_ref(&a.der), NOW).is_err());
        // Nothing, or garbage.
        assert_eq!(r.verify(&[], NOW), Err(ClientCaError::EmptyChain));
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(r.verify(&[junk], NOW), Err(ClientCaError::Unparseable));
        // The valid twin passes.
        let good = leaf(&a, URI, client, false);
        assert!(r.verify(&[good], NOW).is_ok());
    }

    #[test]
    fn roots_must_be_certificates() {
        assert_eq!(
            ClientCaRoots::from_pem(b"not pem").unwrap_err(),
            ClientCaError::NoRoots
        );
        assert_eq!(
            ClientCaRoots::from_pem(b"").unwrap_err(),
            ClientCaError::NoRoots
        );
    }
}
