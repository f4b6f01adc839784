//! `aims ca init` and `aims svid issue`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aims_core::{SpiffeId, SystemClock, TrustDomain};
use aims_crypto::{Algorithm, SigningKey};
use aims_pki::{CaOptions, CertificateAuthority, pem};
use anyhow::{Context, Result, bail};

use crate::{CaInit, SvidIssue};

/// The files `aims ca init` writes into its `--out` directory.
const CA_FILES: [&str; 4] = ["ca.pem", "ca.key", "bundle.pem", "bundle.json"];

/// Writes `data` to `path`, replacing whatever is there (a symbolic link is replaced,
/// never followed); `secret` files get mode 0600, others 0644.
///
/// The data goes to a new file with a random name in the same directory, created
/// exclusively (`O_EXCL`, so no existing file or link is opened), then renamed over
/// `path`: readers see the old file or the new one, never a partial one.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    let mode = if secret { 0o600 } else { 0o644 };
    let tmp = temp_path(path)?;
    let written = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        // The umask may have narrowed the mode: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set permissions on {}", tmp.display()))?;
        f.write_all(data)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot flush {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// `.<name>.<random>.tmp` next to `path`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let random = aims_crypto::random_token().context("cannot generate a temporary file name")?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{random}.tmp"));
    Ok(path.with_file_name(tmp))
}

/// Whether anything (a file, a directory, a link, even a dangling one) is at `path`.
fn occupied(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
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
    let existing: Vec<&str> = CA_FILES
        .into_iter()
        .filter(|f| occupied(&args.out.join(f)))
        .collect();
    if !existing.is_empty() && !args.force {
        bail!(
            "{} already holds a CA ({}); choose another --out directory, remove the files, or pass --force to replace them",
            args.out.display(),
            existing.join(", ")
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
