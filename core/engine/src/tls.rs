//! TLS for the worker and HTTP ports (rustls, ring): `wss://` and `https://`. The certificate
//! and key are PEM files; [`Reloadable`] reads them again on [`crate::Engine::reload_tls`]
//! (the binary calls it on SIGHUP), so a renewed certificate needs no restart. Connections
//! already open keep the certificate they began with.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// The certificate a listener presents, replaced in place when reloaded.
#[derive(Debug)]
pub(crate) struct Reloadable {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

fn invalid(files: &TlsFiles, error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "TLS certificate {} / key {}: {error}",
            files.cert_file.display(),
            files.key_file.display()
        ),
    )
}

/// Reads and checks the certificate and key in `files`.
fn load(files: &TlsFiles) -> std::io::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(|error| invalid(files, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(files, error))?;
    if chain.is_empty() {
        return Err(invalid(files, "no certificate in the file"));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| invalid(files, error))?;
    let signing = tokio_rustls::rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|error| invalid(files, error))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|error| invalid(files, error))?;
    Ok(Arc::new(certified))
}

impl Reloadable {
    /// Reads `files` once; a failure names them.
    pub(crate) fn new(files: TlsFiles) -> std::io::Result<Arc<Self>> {
        let current = RwLock::new(load(&files)?);
        Ok(Arc::new(Self { files, current }))
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub(crate) fn reload(&self) -> std::io::Result<()> {
        let fresh = load(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        tracing::info!(cert = %self.files.cert_file.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// An acceptor presenting this certificate, offering `alpn` protocols.
    pub(crate) fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> std::io::Result<TlsAcceptor> {
        let provider = Arc::new(iii_protocol::tls::provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| invalid(&self.files, error))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Our order (iii_protocol::tls) over the client's: clients list AES-256 first.
        config.ignore_client_order = true;
        // Resumption tickets: a worker's channel sockets after its first connection resume
        // its TLS session instead of making the engine sign a full handshake each
        // (BENCHMARKS.md, "TLS").
        config.ticketer = tokio_rustls::rustls::crypto::ring::Ticketer::new()
            .map_err(|error| invalid(&self.files, error))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}
