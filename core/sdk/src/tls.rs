//! `wss://`: the TLS every socket of this process opens to an engine goes through one rustls
//! configuration (ring), trusting the system's root certificates plus CA files named by
//! `III_CA_FILE` (a path, or several separated by the platform's path separator) or added with
//! [`trust_ca_file`] (a worker's `ca_file` option). One place, so a worker's main socket and
//! every channel socket it opens verify the engine alike.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::Connector;

use crate::IIIError;

/// The environment variable naming extra CA files.
pub const CA_FILE_ENV: &str = "III_CA_FILE";

/// CA files trusted besides the system roots, and the configuration built from them.
#[derive(Default)]
struct Trust {
    files: Vec<PathBuf>,
    config: Option<Arc<ClientConfig>>,
}

fn trust() -> &'static Mutex<Trust> {
    static TRUST: OnceLock<Mutex<Trust>> = OnceLock::new();
    TRUST.get_or_init(|| {
        let files = std::env::var_os(CA_FILE_ENV)
            .map(|paths| std::env::split_paths(&paths).collect())
            .unwrap_or_default();
        Mutex::new(Trust {
            files,
            config: None,
        })
    })
}

/// Trusts the CA certificates in the PEM file at `path` for every `wss://` socket opened
/// from now on (besides the system roots). An unreadable file is
/// [`IIIError::InvalidArgument`].
pub fn trust_ca_file(path: &Path) -> Result<(), IIIError> {
    read_certificates(path)?;
    let mut trust = trust().lock().unwrap_or_else(|e| e.into_inner());
    if !trust.files.iter().any(|known| known == path) {
        trust.files.push(path.to_path_buf());
        trust.config = None;
    }
    Ok(())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, IIIError> {
    let unreadable =
        |error: String| IIIError::InvalidArgument(format!("CA file {}: {error}", path.display()));
    CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(error.to_string()))
}

/// The connector of `wss://` sockets (built once, again after [`trust_ca_file`]).
pub(crate) fn connector() -> Result<Connector, IIIError> {
    let mut trust = trust().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(config) = &trust.config {
        return Ok(Connector::Rustls(config.clone()));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system root certificate could not be read");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, "system root certificates");
    // A file that cannot be read (any more) is reported and left out: it must not take
    // every other worker's connections down with it.
    for file in &trust.files {
        match read_certificates(file) {
            Ok(certificates) => {
                let (_, unusable) = roots.add_parsable_certificates(certificates);
                if unusable > 0 {
                    tracing::warn!(file = %file.display(), unusable, "CA certificates that cannot be used");
                }
            }
            Err(error) => tracing::warn!(%error, "a CA file is not trusted"),
        }
    }
    let provider = Arc::new(iii_protocol::tls::provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| IIIError::Connection(format!("TLS setup: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    trust.config = Some(config.clone());
    Ok(Connector::Rustls(config))
}

/// The connector for `url`: TLS for `wss://`, plain otherwise.
pub(crate) fn connector_for(url: &str) -> Result<Option<Connector>, IIIError> {
    if url.len() >= 6
        && url
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("wss://"))
    {
        connector().map(Some)
    } else {
        Ok(None)
    }
}
