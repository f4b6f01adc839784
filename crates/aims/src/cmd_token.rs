//! `aims token inspect|verify`.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::TokenVerify;

/// Reads the token argument (`-` means standard input), trimmed.
fn read_token(arg: &str) -> Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the token from standard input")?;
        Ok(s.trim().to_owned())
    } else {
        Ok(arg.trim().to_owned())
    }
}

fn decode_part(part: &str, what: &str) -> Result<Value> {
    let bytes = aims_crypto::b64::decode_url(part)
        .with_context(|| format!("the {what} is not base64url (without padding)"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("the {what} is not JSON"))
}

pub fn inspect(arg: &str) -> Result<ExitCode> {
    let token = read_token(arg)?;
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        bail!(
            "a JWS compact token has three dot-separated parts; this one has {}",
            parts.len()
        );
    };
    let header = decode_part(h, "header")?;
    let claims = decode_part(p, "payload")?;
    let sig_len = aims_crypto::b64::decode_url(s).map(|v| v.len());
    let out = json!({
        "header": header,
        "claims": claims,
        "signature_bytes": sig_len,
        "verified": false,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

pub fn verify(_args: &TokenVerify) -> Result<ExitCode> {
    bail!("not implemented yet")
}
