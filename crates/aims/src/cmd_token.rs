//! `aims token inspect|verify`.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use std::sync::Arc;

use aims_core::{Clock, ManualClock, SystemClock, TrustDomain};
use aims_crypto::Jwks;
use aims_jose::replay::MemoryReplayGuard;
use aims_jose::wit::WitProfile;
use aims_jose::{JoseError, StaticKeys, access_token, dpop, jwt_svid, wit};

use crate::{Profile, TokenVerify};

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

/// What a profile needs from the JWKS file.
fn load_jwks(args: &TokenVerify) -> Result<Jwks> {
    let Some(path) = &args.jwks else {
        bail!("--jwks FILE is required for this profile (a JWKS or SPIFFE bundle document)");
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a JWKS (a JSON object with `keys`)",
            path.display()
        )
    })
}

/// The trust domain the `--jwks` keys belong to, for a SPIFFE-style token. It must come
/// from the operator: the token's own (unverified) `sub` would let a token choose the
/// trust domain its signer's keys count for, and a JWKS or bundle document does not name
/// its trust domain.
fn trust_domain_scope(args: &TokenVerify, profile: &str) -> Result<TrustDomain> {
    let Some(td) = &args.trust_domain else {
        bail!(
            "--trust-domain is required for --profile {profile}: name the trust domain the \
             --jwks keys belong to (e.g. --trust-domain example.org); only tokens of that \
             trust domain are then accepted"
        );
    };
    TrustDomain::new(td).with_context(|| format!("invalid trust domain `{td}`"))
}

fn required<'a>(v: &'a Option<String>, flag: &str, profile: &str) -> Result<&'a str> {
    v.as_deref()
        .with_context(|| format!("--{flag} is required for --profile {profile}"))
}

/// Runs the profile's validator. `Ok(Err(..))` is a rejected token (exit 1); `Err` is a
/// usage or input problem (exit 2).
fn run_profile(args: &TokenVerify, token: &str) -> Result<Result<(), JoseError>> {
    let clock: Arc<dyn Clock> = match args.now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    };
    let outcome = match args.profile {
        Profile::JwtSvid => {
            let aud = required(&args.audience, "audience", "jwt-svid")?;
            let td = trust_domain_scope(args, "jwt-svid")?;
            let jwks = load_jwks(args)?;
            let mut keys = StaticKeys::new();
            keys.add_jwks_for_use(td.to_string(), &jwks, "jwt-svid");
            keys.add_jwks(td.to_string(), &jwks);
            jwt_svid::Validator::new(clock, aud)
                .trust_domain(td)
                .validate(token, &keys)
                .map(drop)
        }
        Profile::Wit | Profile::WitSvid => {
            let (profile, name) = match args.profile {
                Profile::WitSvid => (WitProfile::WitSvid, "wit-svid"),
                _ => (WitProfile::Wimse, "wit"),
            };
            let td = trust_domain_scope(args, name)?.to_string();
            let jwks = load_jwks(args)?;
            let mut keys = StaticKeys::new();
            keys.add_jwks_for_use(td.clone(), &jwks, "wit-svid");
            keys.add_jwks(td.clone(), &jwks);
            wit::Validator::new(profile, clock)
                .trust_domain(td)
                .validate(token, &keys)
                .map(drop)
        }
        Profile::At => {
            let iss = required(&args.issuer, "issuer", "at")?;
            let aud = required(&args.audience, "audience", "at")?;
            let jwks = load_jwks(args)?;
            let mut keys = StaticKeys::new();
            keys.add_jwks(iss, &jwks);
            access_token::Validator::new(clock, iss, aud)
                .validate(token, &keys)
                .map(drop)
        }
        Profile::Dpop => {
            let htm = required(&args.htm, "htm", "dpop")?;
            let htu = required(&args.htu, "htu", "dpop")?;
            let replay = Arc::new(MemoryReplayGuard::new(16));
            dpop::Validator::new(clock, replay)
                .validate(token, &dpop::DpopRequest::new(htm, htu))
                .map(drop)
        }
    };
    Ok(outcome)
}

pub fn verify(args: &TokenVerify) -> Result<ExitCode> {
    let token = read_token(&args.token)?;
    match run_profile(args, &token)? {
        Ok(()) => {
            // Verified: print the claims the validator accepted.
            let claims = token
                .split('.')
                .nth(1)
                .context("the token is not a JWS compact serialization")
                .and_then(|p| decode_part(p, "payload"))?;
            println!("{}", serde_json::to_string_pretty(&claims)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("rejected: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}
