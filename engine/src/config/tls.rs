//! A server's `tls = { cert, key }`: PEM files to a rustls `CertifiedKey`.
//!
//! The chain is every CERTIFICATE block of `cert`, leaf first (nginx's
//! `ssl_certificate`); the key is the first PKCS#8, PKCS#1 (RSA) or SEC1 (EC)
//! block of `key`. Everything a handshake would trip over later is checked
//! here, while the old config still serves: unreadable files, a file without a
//! certificate, a key rustls cannot sign with, a key that is not the leaf's.
//! An expired leaf is only a warning, as nginx starts with one too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use toml::Spanned;

use super::error::Diagnostics;
use super::raw::RawTls;
use super::validity::not_after;

/// Loads the certificate and key of `server[i].tls`; `None` after reporting why not.
/// Relative paths are relative to the directory of the config file.
pub(crate) fn load_certified_key(
    raw: &Spanned<RawTls>,
    base: Option<&Path>,
    provider: &CryptoProvider,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<Arc<CertifiedKey>> {
    let tls = raw.get_ref();
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        diag.error(
            raw.span(),
            path,
            "`tls` needs both `cert` and `key`, e.g. tls = { cert = \"/etc/ssl/certs/site.crt\", key = \"/etc/ssl/private/site.key\" }",
        );
        return None;
    };
    let chain = load_chain(cert, base, &format!("{path}.cert"), diag);
    let key_der = load_key(key, base, &format!("{path}.key"), diag);
    let (chain, key_der) = (chain?, key_der?);
    let signing_key = match provider.key_provider.load_private_key(key_der) {
        Ok(k) => k,
        Err(e) => {
            diag.error(
                key.span(),
                format!("{path}.key"),
                format!("{:?}: unusable private key: {e}", key.get_ref()),
            );
            return None;
        }
    };
    let leaf_expiry = not_after(&chain[0]);
    let certified = CertifiedKey::new(chain, signing_key);
    if let Err(e) = certified.keys_match() {
        let why = match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "its public key is not the certificate's".to_owned()
            }
            other => other.to_string(),
        };
        diag.error(
            key.span(),
            format!("{path}.key"),
            format!(
                "{:?} does not belong to the certificate in {:?}: {why}",
                key.get_ref(),
                cert.get_ref()
            ),
        );
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Some(expiry) = leaf_expiry
        && expiry < now
    {
        diag.warning(
            cert.span(),
            format!("{path}.cert"),
            format!(
                "the certificate in {:?} expired {} days ago; clients will refuse it",
                cert.get_ref(),
                (now - expiry) / 86_400
            ),
        );
    }
    Some(Arc::new(certified))
}

fn resolve(file: &str, base: Option<&Path>) -> PathBuf {
    let p = Path::new(file);
    match base {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

fn read(
    file: &Spanned<String>,
    base: Option<&Path>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<Vec<u8>> {
    match std::fs::read(resolve(file.get_ref(), base)) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            diag.error(
                file.span(),
                path,
                format!("cannot read {:?}: {e}", file.get_ref()),
            );
            None
        }
    }
}

fn load_chain(
    file: &Spanned<String>,
    base: Option<&Path>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = read(file, base, path, diag)?;
    let chain: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    match chain {
        Ok(chain) if !chain.is_empty() => Some(chain),
        Ok(_) => {
            diag.error(
                file.span(),
                path,
                format!(
                    "{:?} holds no certificate (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)",
                    file.get_ref()
                ),
            );
            None
        }
        Err(e) => {
            diag.error(
                file.span(),
                path,
                format!("{:?}: unreadable PEM: {}", file.get_ref(), pem_message(&e)),
            );
            None
        }
    }
}

fn load_key(
    file: &Spanned<String>,
    base: Option<&Path>,
    path: &str,
    diag: &mut Diagnostics<'_>,
) -> Option<PrivateKeyDer<'static>> {
    let bytes = read(file, base, path, diag)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Some(key),
        Err(pem::Error::NoItemsFound) => {
            diag.error(
                file.span(),
                path,
                format!(
                    "{:?} holds no private key (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)",
                    file.get_ref()
                ),
            );
            None
        }
        Err(e) => {
            diag.error(
                file.span(),
                path,
                format!("{:?}: unreadable PEM: {}", file.get_ref(), pem_message(&e)),
            );
            None
        }
    }
}

fn pem_message(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}
