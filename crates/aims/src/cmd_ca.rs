//! `aims ca init` and `aims svid issue`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aims_core::{SpiffeId, SystemClock, TrustDomain};
use aims_crypto::{Algorithm, SigningKey};
use aims_pki::{CaOptions, CertificateAuthority, pem};
use anyhow::{Context, Result, bail};

use crate::{CaInit, SvidIssue};

/// Writes `data` to `path` (replacing it); `secret` files get mode 0600.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its old mode on open: set it explicitly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions on {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all()
        .with_context(|| format!("cannot flush {}", path.display()))
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Loads an upstream CA key of any algorithm AIMS signs with.
fn load_upstream_key(path: &Path) -> Result<SigningKey> {
    let pem_bytes = zeroize::Zeroizing::new(
        fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let der = pem::private_key_pkcs8(&pem_bytes)
        .with_context(|| format!("{} is not a PEM private key", path.display()))?
        .with_context(|| format!("{} holds no PRIVATE KEY block", path.display()))?;
    [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]
        .into_iter()
        .find_map(|alg| SigningKey::from_pkcs8(alg, &der).ok())
        .with_context(|| {
            format!(
                "{}: the upstream key must be a PKCS#8 P-256, P-384 or Ed25519 key",
                path.display()
            )
        })
}

pub fn init(args: &CaInit) -> Result<ExitCode> {
    let td = TrustDomain::new(&args.trust_domain)
        .with_context(|| format!("invalid trust domain `{}`", args.trust_domain))?;
    if args.out.join("ca.key").exists() {
        bail!(
            "{} already holds a CA (ca.key); choose another --out directory or remove it first",
            args.out.display()
        );
    }
    create_dir(&args.out)?;
    let clock = Arc::new(SystemClock);
    let opts = CaOptions {
        validity: Duration::from_secs(args.ttl),
        ..CaOptions::default()
    };
    let ca = match (&args.upstream_cert, &args.upstream_key) {
        (Some(cert), Some(key)) => {
            let chain_pem =
                fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
            let chain = pem::certificates(&chain_pem)
                .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
            let key = load_upstream_key(key)?;
            CertificateAuthority::new_intermediate(&td, &chain, &key, &opts, clock)
                .context("cannot create the intermediate CA")?
        }
        _ => CertificateAuthority::new_root_with(&td, &opts, clock)
            .context("cannot create the root CA")?,
    };
    ca.to_pem_files(&args.out)
        .with_context(|| format!("cannot write the CA into {}", args.out.display()))?;
    let bundle = ca.bundle().context("cannot build the trust bundle")?;
    write_file(
        &args.out.join("bundle.pem"),
        bundle.to_x509_pem().as_bytes(),
        false,
    )?;
    write_file(
        &args.out.join("bundle.json"),
        bundle.to_json()?.as_bytes(),
        false,
    )?;
    println!("trust domain: {td}");
    println!("CA directory: {}", args.out.display());
    println!("  ca.pem       CA certificate chain");
    println!("  ca.key       CA private key (PKCS#8, mode 0600)");
    println!("  bundle.pem   X.509 trust anchors for verifiers");
    println!("  bundle.json  SPIFFE bundle document");
    Ok(ExitCode::SUCCESS)
}

pub fn issue(args: &SvidIssue) -> Result<ExitCode> {
    let id = SpiffeId::parse(&args.spiffe_id)
        .with_context(|| format!("invalid SPIFFE ID `{}`", args.spiffe_id))?;
    let ca = CertificateAuthority::load(&args.ca, Arc::new(SystemClock)).with_context(|| {
        format!(
            "cannot load the CA from {} (made by `aims ca init`?)",
            args.ca.display()
        )
    })?;
    let svid = ca
        .issue_x509_svid(&id, Duration::from_secs(args.ttl), &args.dns)
        .context("cannot issue the X509-SVID")?;
    create_dir(&args.out)?;
    write_file(
        &args.out.join("svid.pem"),
        svid.chain_pem().as_bytes(),
        false,
    )?;
    write_file(&args.out.join("svid.key"), svid.key_pem().as_bytes(), true)?;
    let bundle = ca.bundle().context("cannot build the trust bundle")?;
    write_file(
        &args.out.join("bundle.pem"),
        bundle.to_x509_pem().as_bytes(),
        false,
    )?;
    println!("issued {id}");
    println!("  expires      {} (Unix time)", svid.not_after());
    println!("  svid.pem     certificate chain, leaf first");
    println!("  svid.key     private key (PKCS#8, mode 0600)");
    println!("  bundle.pem   trust anchors to verify it");
    Ok(ExitCode::SUCCESS)
}
