//! HTTPS for the collector: reads the configured PEM certificate chain and private key into a
//! rustls server configuration (on the `ring` provider), with every problem reported at the
//! configuration line that names the file.

use crate::config::{Config, ConfigError, TlsFiles};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

/// The rustls configuration for `config`'s TLS files, or `None` when TLS is not configured.
///
/// Checks that the certificate file holds at least one PEM certificate, that the key file holds
/// a PEM private key of a supported type, and that the key belongs to the first (end-entity)
/// certificate. ALPN offers HTTP/1.1 only, the protocol the collector serves.
pub fn server_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
    let Some(files) = &config.tls else {
        return Ok(None);
    };
    let cert_error = |message: String| config.error_at(files.cert_at, message);
    let key_error = |message: String| config.error_at(files.key_at, message);

    let cert_pem = read("tls_cert_file", &files.cert_file).map_err(cert_error)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(not_pem("tls_cert_file", &files.cert_file, &e)))?;
    if certs.is_empty() {
        return Err(cert_error(format!(
            "`tls_cert_file` {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            files.cert_file.display()
        )));
    }

    warn_if_world_readable(files);
    let key_pem = read("tls_key_file", &files.key_file).map_err(key_error)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => key_error(format!(
            "`tls_key_file` {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            files.key_file.display()
        )),
        other => key_error(not_pem("tls_key_file", &files.key_file, &other)),
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
        key_error(format!(
            "`tls_key_file` {}: unusable private key: {e}",
            files.key_file.display()
        ))
    })?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        // A key type whose public half rustls cannot derive: the handshake will tell.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(key_error(format!(
                "`tls_key_file` {} does not match the certificate in `tls_cert_file` {}",
                files.key_file.display(),
                files.cert_file.display()
            )))
        }
        Err(e) => {
            return Err(cert_error(format!(
                "`tls_cert_file` {}: unusable certificate: {e}",
                files.cert_file.display()
            )))
        }
    }

    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_error(format!("TLS set-up failed: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read `{key}` {}: {e}", path.display()))
}

fn not_pem(key: &str, path: &Path, error: &pem::Error) -> String {
    format!("`{key}` {} is not valid PEM: {error}", path.display())
}

/// A private key anyone on the machine can read is worth a warning (not a refusal: packaging
/// conventions such as a `ssl-cert` group differ, and the file may be a copy in a container).
fn warn_if_world_readable(files: &TlsFiles) {
    if let Ok(meta) = std::fs::metadata(&files.key_file) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                path = %files.key_file.display(),
                "the TLS private key is readable by every user; chmod o-r it"
            );
        }
    }
}
