//! Creating and verifying signatures (RFC 9421 sections 3 and 4): the `Signature-Input`
//! and `Signature` fields, signing with an `aims_crypto::Signer`, verifying with an
//! `aims_crypto::VerifyingKey`.

use aims_crypto::{Algorithm, Signer, VerifyingKey, b64};
use http::{HeaderMap, HeaderValue};
use sfv::{BareItem, Dictionary, ListEntry, Parser, Version};

use crate::HttpSigError;
use crate::alg::SignatureAlgorithm;
use crate::base::{FieldTypes, signature_base};
use crate::component::key;
use crate::message::Message;
use crate::params::SignatureParams;

/// The `Signature-Input` header name.
pub const SIGNATURE_INPUT: &str = "signature-input";
/// The `Signature` header name.
pub const SIGNATURE: &str = "signature";

/// The default limit for `Signature-Input` and `Signature` (all field lines combined).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8192;

/// Settings shared by signing and verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Structured-field types for `;sf`.
    pub field_types: FieldTypes,
    /// The largest accepted `Signature-Input` or `Signature`, in bytes.
    pub max_header_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            field_types: FieldTypes::default(),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// Combines every field line of `name` (RFC 9110 section 5.3) and parses the result as
/// an RFC 8941 dictionary. `Ok(None)` if the field is absent.
pub(crate) fn header_dictionary(
    headers: &HeaderMap,
    name: &'static str,
    max_bytes: usize,
) -> Result<Option<Dictionary>, HttpSigError> {
    let mut combined = String::new();
    let mut present = false;
    for v in headers.get_all(name) {
        // Checked before copying: an oversized field is never buffered.
        let separator = if present { 2 } else { 0 };
        if combined
            .len()
            .saturating_add(separator)
            .saturating_add(v.len())
            > max_bytes
        {
            return Err(HttpSigError::HeaderTooLarge(name));
        }
        let s = v
            .to_str()
            .map_err(|_| HttpSigError::MalformedHeader(name))?;
        if present {
            combined.push_str(", ");
        }
        present = true;
        combined.push_str(s);
    }
    if !present {
        return Ok(None);
    }
    Parser::new(&combined)
        .with_version(Version::Rfc8941)
        .parse()
        .map(Some)
        .map_err(|_| HttpSigError::MalformedHeader(name))
}

/// One signature found on a message: its label, parameters and signature bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureEntry {
    label: String,
    params: SignatureParams,
    signature: Vec<u8>,
}

impl SignatureEntry {
    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The covered components and parameters.
    pub fn params(&self) -> &SignatureParams {
        &self.params
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// The labels of the signatures in `Signature-Input`, in order (empty if there is no
/// `Signature-Input`).
pub fn signature_labels(
    headers: &HeaderMap,
    options: &Options,
) -> Result<Vec<String>, HttpSigError> {
    Ok(
        header_dictionary(headers, SIGNATURE_INPUT, options.max_header_bytes)?
            .map(|d| d.keys().map(|k| k.as_str().to_owned()).collect())
            .unwrap_or_default(),
    )
}

/// Reads the signature labelled `label` from `Signature-Input` and `Signature`.
pub fn find_signature(
    headers: &HeaderMap,
    label: &str,
    options: &Options,
) -> Result<SignatureEntry, HttpSigError> {
    let (Some(inputs), Some(signatures)) = (
        header_dictionary(headers, SIGNATURE_INPUT, options.max_header_bytes)?,
        header_dictionary(headers, SIGNATURE, options.max_header_bytes)?,
    ) else {
        return Err(HttpSigError::MissingSignature);
    };
    let not_found = || HttpSigError::LabelNotFound(label.chars().take(64).collect());
    let input = inputs.get(label).ok_or_else(not_found)?;
    let signature = signatures.get(label).ok_or_else(not_found)?;
    let ListEntry::InnerList(list) = input else {
        return Err(HttpSigError::MalformedHeader(SIGNATURE_INPUT));
    };
    let ListEntry::Item(item) = signature else {
        return Err(HttpSigError::MalformedHeader(SIGNATURE));
    };
    let BareItem::ByteSequence(bytes) = &item.bare_item else {
        return Err(HttpSigError::MalformedHeader(SIGNATURE));
    };
    Ok(SignatureEntry {
        label: label.to_owned(),
        params: SignatureParams::from_inner_list(list.clone())?,
        signature: bytes.clone(),
    })
}

/// The two header members a signature adds to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    label: String,
    signature_input: String,
    signature: String,
}

impl SignatureHeaders {
    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The `Signature-Input` member, e.g. `sig1=("@method");created=1618884473`.
    pub fn signature_input(&self) -> &str {
        &self.signature_input
    }

    /// The `Signature` member, e.g. `sig1=:...:`.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// Adds the two members to `headers` as new field lines (a message may carry several
    /// signatures). Fails with [`HttpSigError::LabelInUse`] if the label is already in
    /// either field.
    pub fn apply(&self, headers: &mut HeaderMap) -> Result<(), HttpSigError> {
        for name in [SIGNATURE_INPUT, SIGNATURE] {
            if let Some(d) = header_dictionary(headers, name, usize::MAX)?
                && d.contains_key(self.label.as_str())
            {
                return Err(HttpSigError::LabelInUse(self.label.clone()));
            }
        }
        let input = HeaderValue::from_str(&self.signature_input)
            .map_err(|_| HttpSigError::MalformedHeader(SIGNATURE_INPUT))?;
        let sig = HeaderValue::from_str(&self.signature)
            .map_err(|_| HttpSigError::MalformedHeader(SIGNATURE))?;
        headers.append(SIGNATURE_INPUT, input);
        headers.append(SIGNATURE, sig);
        Ok(())
    }
}

/// Checks an `alg` parameter against the algorithm the key will use.
fn check_alg_param(params: &SignatureParams, alg: Algorithm) -> Result<(), HttpSigError> {
    if let Some(name) = params.alg() {
        let named = SignatureAlgorithm::from_name(name)?;
        if named.jws() != alg {
            return Err(HttpSigError::AlgorithmMismatch {
                alg: named.name().to_owned(),
            });
        }
    }
    Ok(())
}

/// Signs `message` with `signer` (RFC 9421 section 3.1) and returns the header members
/// under `label`. `params` must already hold every parameter (`created`, `nonce`, ...);
/// if it names an `alg`, that must be the signer's algorithm.
pub fn sign(
    message: &Message<'_>,
    label: &str,
    params: &SignatureParams,
    signer: &dyn Signer,
    options: &Options,
) -> Result<SignatureHeaders, HttpSigError> {
    let label_key = key(label).map_err(|_| HttpSigError::InvalidLabel(label.to_owned()))?;
    check_alg_param(params, signer.algorithm())?;
    let base = signature_base(message, params, &options.field_types)?;
    let sig = signer
        .sign(base.as_bytes())
        .map_err(HttpSigError::Internal)?;
    Ok(SignatureHeaders {
        label: label_key.as_str().to_owned(),
        signature_input: format!("{}={}", label_key.as_str(), params.serialize()?),
        signature: format!("{}=:{}:", label_key.as_str(), b64::encode_std(sig)),
    })
}

/// Verifies `entry` on `message` with `key` and `alg` (RFC 9421 section 3.2): the
/// signature base is rebuilt from the message and the entry's parameters, and the
/// signature checked once. If the entry names an `alg`, it must be `alg`.
///
/// Only the cryptographic check: time windows, required components, `tag`, `keyid`
/// and replay are the caller's policy (the [`crate::wimse`] profile applies its own).
pub fn verify_entry(
    message: &Message<'_>,
    entry: &SignatureEntry,
    key: &VerifyingKey,
    alg: Algorithm,
    options: &Options,
) -> Result<(), HttpSigError> {
    check_alg_param(&entry.params, alg)?;
    let base = signature_base(message, &entry.params, &options.field_types)?;
    key.verify(alg, base.as_bytes(), &entry.signature)
        .map_err(HttpSigError::from)
}

/// Finds the signature labelled `label` and verifies it with `key` and `alg` (see
/// [`verify_entry`]). Returns the verified entry.
pub fn verify_with_key(
    message: &Message<'_>,
    label: &str,
    key: &VerifyingKey,
    alg: Algorithm,
    options: &Options,
) -> Result<SignatureEntry, HttpSigError> {
    let entry = find_signature(message.headers(), label, options)?;
    verify_entry(message, &entry, key, alg, options)?;
    Ok(entry)
}
