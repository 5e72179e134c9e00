//! `wss://` and `https://` end to end: an engine serving TLS with a certificate from a test CA
//! (scripts/make-test-certs.sh), workers that trust that CA streaming a channel through it, an
//! HTTP download over https, and a worker that does not trust it refused. One test: the trust
//! of CA files is process-wide, so the refusal must come before any worker trusts the CA.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::{data, engine_with, expected_hash, read_stream, within, write_stream};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use iii_engine::{EngineConfig, TlsFiles};
use iii_sdk::{
    ChannelReader, HttpRequest, HttpResponse, IIIError, InitOptions, RegisterFunction,
    RegisterTrigger, TriggerRequest, http,
};
use serde_json::{Value, json};

/// Makes the test CA and certificate in a fresh directory: (ca.pem, the engine's TLS files).
fn certificates() -> (PathBuf, TlsFiles) {
    let dir = std::env::temp_dir().join(format!("iii-tls-{}", uuid::Uuid::new_v4()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-test-certs.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(&dir)
        .status()
        .expect("bash runs");
    assert!(
        status.success(),
        "make-test-certs.sh (needs openssl) failed"
    );
    let files = TlsFiles {
        cert_file: dir.join("leaf.pem"),
        key_file: dir.join("leaf.key"),
    };
    (dir.join("ca.pem"), files)
}

/// GET `path` over https from `addr`, trusting `ca`: status and whole body.
async fn https_get(addr: std::net::SocketAddr, ca: &Path, path: &str) -> (u16, Vec<u8>) {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(certificate.expect("ca cert")).expect("root");
    }
    #[allow(deprecated)] // ring's provider, as the engine and SDK use
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the engine's HTTP port");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http handshake");
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body.to_vec())
}

const STREAMED: u64 = 5 * 1024 * 1024 + 3;
const DOWNLOAD: usize = 3 * 1024 * 1024 + 7;

#[tokio::test(flavor = "multi_thread")]
async fn channels_and_downloads_go_over_tls_to_workers_that_trust_the_ca() {
    let (ca, files) = certificates();
    let engine = engine_with(EngineConfig {
        tls: Some(files.clone()),
        http_tls: Some(files),
        ..EngineConfig::ephemeral()
    })
    .await;
    let url = engine.ws_url();
    assert!(url.starts_with("wss://"), "{url}");

    // Before anything trusts the test CA: the certificate is refused, with a clear error.
    let untrusting = iii_sdk::register_worker_with(
        &url,
        InitOptions {
            connect_timeout_ms: 1500,
            ..InitOptions::default()
        },
    );
    let refused = untrusting
        .trigger(TriggerRequest::new("engine::functions::list", json!({})))
        .await
        .expect_err("an untrusted certificate");
    assert!(matches!(refused, IIIError::Connection(_)), "{refused}");
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
    untrusting.shutdown();

    let trusting = || InitOptions {
        ca_file: Some(ca.clone()),
        ..common::fast_reconnect()
    };
    let owner = iii_sdk::register_worker_with(&url, trusting());
    let address = owner.address().to_string();
    owner.register_function(RegisterFunction::new_async(
        "tls::digest",
        move |input: Value| {
            let address = address.clone();
            async move {
                let refs = iii_sdk::extract_channel_refs(&input);
                let (_, reader_ref) = (refs.iter().find(|(key, _)| key == "reader"))
                    .ok_or_else(|| IIIError::Handler("no reader ref".into()))?;
                let reader = ChannelReader::new(&address, reader_ref);
                let (len, hash) = read_stream(&reader).await?;
                Ok(json!({"len": len, "hash": hash.to_vec()}))
            }
        },
    ));
    owner.register_function(RegisterFunction::new_async(
        "tls::download",
        http(|_req: HttpRequest, res: HttpResponse| async move {
            res.status(200).await?;
            res.write(&data(9, DOWNLOAD)).await?;
            res.close().await
        }),
    ));
    owner
        .register_trigger(RegisterTrigger::http("tls::download", "/download", "GET"))
        .expect("trigger");
    within(10, owner.ready())
        .await
        .expect("the owner connects over wss://");

    let caller = iii_sdk::register_worker_with(&url, trusting());
    let channel = within(10, caller.create_channel(None))
        .await
        .expect("channel");
    let request = TriggerRequest::new("tls::digest", json!({"reader": channel.reader_ref}));
    let (written, digest) = within(60, async {
        tokio::join!(
            write_stream(&channel.writer, 4, STREAMED, 100_000),
            caller.trigger(request)
        )
    })
    .await;
    let written = written.expect("written over wss://");
    let digest = digest.expect("digested");
    assert_eq!(digest["len"], STREAMED);
    assert_eq!(digest["hash"], json!(written.to_vec()));
    assert_eq!(written, expected_hash(4, STREAMED));

    let addr = engine.http_addr().expect("http server");
    assert!(engine.http_url().is_some_and(|u| u.starts_with("https://")));
    let (status, body) = within(30, https_get(addr, &ca, "/download")).await;
    assert_eq!(status, 200);
    assert!(
        body == data(9, DOWNLOAD),
        "the download is byte-exact over https"
    );

    // The certificate reloads in place.
    engine.reload_tls().expect("reloaded");
    let (status, _) = within(30, https_get(addr, &ca, "/download")).await;
    assert_eq!(status, 200);

    owner.shutdown();
    caller.shutdown();
    engine.shutdown().await;
}
