//! Functions the engine calls over HTTP (registered with an `invocation` config, as the
//! published clients do): the request the engine sends (payload as JSON, its headers, the
//! credentials it reads from its own environment), how answers and failures come back, HTTP
//! triggers bound to them, the address policy and HTTPS with an extra CA. The engine runs as
//! its own process so its environment holds the test's secrets.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::engine_process::EngineProcess;
use common::http_server::FunctionServer;
use common::*;
use hmac::{KeyInit, Mac};
use iii_sdk::{III, IIIError, RegisterFunction, TriggerAction, TriggerRequest};
use serde_json::{Value, json};

const SECRET: &str = "hmac-secret-for-tests";
const TOKEN: &str = "bearer-token-for-tests";

fn private_engine(extra: &[&str]) -> EngineProcess {
    let mut args = vec![
        "--http-functions-allow-private",
        "--http-functions-secret",
        "III_TEST_HMAC,III_TEST_TOKEN,III_TEST_KEY,III_TEST_UNSET",
    ];
    args.extend_from_slice(extra);
    EngineProcess::start_with(
        &args,
        &[
            ("III_TEST_HMAC", SECRET),
            ("III_TEST_TOKEN", TOKEN),
            ("III_TEST_KEY", "key-42"),
        ],
    )
}

fn remote(iii: &III, id: &str, invocation: Value) {
    let function = RegisterFunction::http(id, invocation).expect("a valid invocation config");
    iii.try_register_function(function).expect("registered");
}

async fn call(iii: &III, id: &str, payload: Value) -> Result<Value, IIIError> {
    within(15, iii.trigger(TriggerRequest::new(id, payload))).await
}

fn code_of(outcome: Result<Value, IIIError>) -> (String, String) {
    match outcome.expect_err("an error") {
        IIIError::Invocation { code, message, .. } => (code, message),
        other => panic!("not an invocation error: {other:?}"),
    }
}

fn header(seen: &common::http_server::Seen, name: &str) -> String {
    seen.headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_go_out_as_json_with_the_engine_headers_and_credentials() {
    let engine = private_engine(&[]);
    let mut server = FunctionServer::start(None).await;
    let base = format!("http://{}", server.addr);
    let iii = iii_sdk::register_worker(&engine.ws_url);
    remote(
        &iii,
        "remote::double",
        json!({"url": format!("{base}/double"),
        "headers": {"x-extra": "1", "x-iii-function-path": "forged"},
        "auth": {"type": "hmac", "secret_key": "III_TEST_HMAC"}}),
    );
    remote(
        &iii,
        "remote::bearer",
        json!({"url": format!("{base}/double"), "method": "PUT",
        "auth": {"type": "bearer", "token_key": "III_TEST_TOKEN"}}),
    );
    remote(
        &iii,
        "remote::keyed",
        json!({"url": format!("{base}/double"),
        "auth": {"type": "api_key", "header": "x-api-key", "value_key": "III_TEST_KEY"}}),
    );
    ready(&iii).await;

    assert_eq!(
        call(&iii, "remote::double", json!({"n": 21}))
            .await
            .expect("answer"),
        json!({"n": 42})
    );
    let seen = server.next().await;
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/double")
    );
    assert_eq!(seen.body["n"], 21);
    assert!(
        seen.body.get("_caller_worker_id").is_some(),
        "{:?}",
        seen.body
    );
    assert_eq!(header(&seen, "content-type"), "application/json");
    assert_eq!(header(&seen, "x-extra"), "1");
    assert_eq!(
        header(&seen, "x-iii-function-path"),
        "remote::double",
        "a config cannot forge it"
    );
    assert!(uuid::Uuid::parse_str(&header(&seen, "x-iii-invocation-id")).is_ok());
    // The signature: HMAC-SHA256 of "<timestamp>:<base64 body>", checked as a receiver would.
    let timestamp = header(&seen, "x-iii-timestamp");
    let body = &seen.raw;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{timestamp}:{}", data_encoding::BASE64.encode(body)).as_bytes());
    let expected = data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes());
    assert_eq!(
        header(&seen, "x-iii-signature"),
        format!("sha256={expected}")
    );

    call(&iii, "remote::bearer", json!({"n": 1}))
        .await
        .expect("answer");
    let seen = server.next().await;
    assert_eq!(seen.method, "PUT");
    assert_eq!(header(&seen, "authorization"), format!("Bearer {TOKEN}"));
    call(&iii, "remote::keyed", json!({"n": 1}))
        .await
        .expect("answer");
    assert_eq!(header(&server.next().await, "x-api-key"), "key-42");

    // A void call still calls the URL.
    let void = TriggerRequest {
        action: Some(TriggerAction::Void),
        ..TriggerRequest::new("remote::double", json!({"n": 5}))
    };
    iii.trigger(void).await.expect("sent");
    assert_eq!(server.next().await.body["n"], 5);
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_and_failures_come_back_with_their_codes() {
    let engine = private_engine(&[]);
    let server = FunctionServer::start(None).await;
    let base = format!("http://{}", server.addr);
    let iii = iii_sdk::register_worker(&engine.ws_url);
    for (id, path) in [
        ("r::empty", "/empty"),
        ("r::fail", "/fail"),
        ("r::coded", "/coded"),
        ("r::html", "/html"),
    ] {
        remote(&iii, id, json!({"url": format!("{base}{path}")}));
    }
    remote(
        &iii,
        "r::slow",
        json!({"url": format!("{base}/slow"), "timeout_ms": 300}),
    );
    remote(
        &iii,
        "r::secretless",
        json!({"url": format!("{base}/double"),
        "auth": {"type": "bearer", "token_key": "III_TEST_UNSET"}}),
    );
    // PATH is set in the engine's environment, but the operator did not offer it.
    let exfiltrate = json!({"url": format!("{base}/double"),
        "auth": {"type": "bearer", "token_key": "PATH"}});
    remote(&iii, "r::exfiltrate", exfiltrate);
    ready(&iii).await;

    assert_eq!(
        call(&iii, "r::empty", json!({})).await.expect("answer"),
        Value::Null
    );
    let (code, message) = code_of(call(&iii, "r::fail", json!({})).await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("http_error", "HTTP 500 Internal Server Error")
    );
    let (code, message) = code_of(call(&iii, "r::coded", json!({})).await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("bad_input", "n is missing")
    );
    assert_eq!(
        code_of(call(&iii, "r::html", json!({})).await).0,
        "invalid_response"
    );
    let started = Instant::now();
    let (code, message) = code_of(call(&iii, "r::slow", json!({})).await);
    assert_eq!(code, "http_request_failed", "{message}");
    assert!(message.contains("300 ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (code, message) = code_of(call(&iii, "r::secretless", json!({})).await);
    assert_eq!(code, "credentials_not_found");
    assert!(message.contains("III_TEST_UNSET"), "{message}");
    let (code, message) = code_of(call(&iii, "r::exfiltrate", json!({})).await);
    assert_eq!(code, "credentials_not_found");
    assert!(message.contains("--http-functions-secret"), "{message}");

    // A config the engine could not call is refused at registration.
    assert!(RegisterFunction::http("r::bad", json!({"url": "ftp://x"})).is_err());
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_triggers_reach_them_and_they_leave_with_their_worker() {
    let engine = private_engine(&[]);
    let server = FunctionServer::start(None).await;
    let owner = iii_sdk::register_worker(&engine.ws_url);
    remote(
        &owner,
        "r::route",
        json!({"url": format!("http://{}/route", server.addr)}),
    );
    let trigger = iii_sdk::RegisterTrigger {
        trigger_type: "http".into(),
        function_id: "r::route".into(),
        config: json!({"api_path": "/made", "http_method": "GET"}),
        metadata: None,
    };
    owner.register_trigger(trigger).expect("bound");
    ready(&owner).await;
    let request = hyper::Request::get("/made")
        .header("host", "engine")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = within(10, http_client::send(engine.http_addr, request)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-remote"], "yes");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body");
    assert_eq!(body.to_bytes(), "made remotely");

    // Bound to engine::functions-available, it is called over HTTP like any other call.
    let mut server = server;
    remote(
        &owner,
        "r::watch",
        json!({"url": format!("http://{}/empty", server.addr)}),
    );
    let watch = iii_sdk::RegisterTrigger {
        trigger_type: "engine::functions-available".into(),
        function_id: "r::watch".into(),
        config: json!({}),
        metadata: None,
    };
    owner.register_trigger(watch).expect("bound");
    ready(&owner).await;
    let caller = iii_sdk::register_worker(&engine.ws_url);
    caller.register_function(RegisterFunction::new_async(
        "r::late",
        |input: Value| async move { Ok(input) },
    ));
    ready(&caller).await;
    let announced = loop {
        let seen = server.next().await;
        let listed = seen.body["functions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if listed.iter().any(|f| f["function_id"] == "r::late") {
            break seen;
        }
    };
    assert_eq!(announced.path, "/empty");
    assert_eq!(announced.body["event"], "functions_changed");
    owner.shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        code_of(call(&caller, "r::route", json!({})).await).0,
        "function_not_found"
    );
    caller.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_need_the_engine_flag() {
    let engine = EngineProcess::start();
    let server = FunctionServer::start(None).await;
    let iii = iii_sdk::register_worker(&engine.ws_url);
    remote(
        &iii,
        "r::local",
        json!({"url": format!("http://{}/double", server.addr)}),
    );
    ready(&iii).await;
    let (code, message) = code_of(call(&iii, "r::local", json!({"n": 1})).await);
    assert_eq!(code, "url_validation_failed");
    assert!(
        message.contains("--http-functions-allow-private"),
        "{message}"
    );
    iii.shutdown();
}

/// A test CA and a certificate it signed for `localhost`, made with openssl:
/// (CA cert, leaf cert, leaf key), PEM paths.
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs (the tests need it for certificates)");
        assert!(status.success(), "openssl {args:?} failed");
    };
    std::fs::write(
        path("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions file");
    let new_key = ["-newkey", "rsa:2048", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &new_key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=iii test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &new_key,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
    [path("ca.pem"), path("leaf.pem"), path("leaf.key")]
}

fn acceptor(cert: &std::path::Path, key: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .expect("cert")
        .map(|c| c.expect("cert"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    #[allow(deprecated)] // ring's provider; see the engine's client
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_works_with_a_trusted_ca_and_fails_without() {
    let dir = std::env::temp_dir().join(format!("iii-https-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let [ca, cert, key] = certificates(&dir);
    let server = FunctionServer::start(Some(acceptor(&cert, &key))).await;
    let url = format!("https://localhost:{}/double", server.addr.port());

    let trusting = private_engine(&["--http-functions-ca", ca.to_str().expect("path")]);
    let iii = iii_sdk::register_worker(&trusting.ws_url);
    remote(&iii, "r::tls", json!({"url": url}));
    ready(&iii).await;
    assert_eq!(
        call(&iii, "r::tls", json!({"n": 4})).await.expect("answer"),
        json!({"n": 8})
    );
    iii.shutdown();

    let distrusting = private_engine(&[]);
    let iii = iii_sdk::register_worker(&distrusting.ws_url);
    remote(&iii, "r::tls", json!({"url": url}));
    ready(&iii).await;
    let (code, message) = code_of(call(&iii, "r::tls", json!({"n": 4})).await);
    assert_eq!(code, "http_request_failed");
    assert!(message.contains("TLS"), "{message}");
    iii.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_bounded_in_number_and_by_the_invocation_timeout() {
    let engine = private_engine(&["--invocation-timeout-secs", "1"]);
    let server = FunctionServer::start(None).await;
    let iii = iii_sdk::register_worker(&engine.ws_url);
    // Asks for 5 s; the engine's invocation timeout (1 s) is the ceiling.
    let slow = json!({"url": format!("http://{}/slow", server.addr), "timeout_ms": 5000});
    remote(&iii, "r::slow", slow);
    ready(&iii).await;
    let started = Instant::now();
    let (code, message) = code_of(call(&iii, "r::slow", json!({})).await);
    assert_eq!(code, "http_request_failed", "{message}");
    assert!(message.contains("1000 ms"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // 256 calls in flight at most: the next one fails at once.
    let calls: Vec<_> = (0..256)
        .map(|_| {
            let iii = iii.clone();
            tokio::spawn(
                async move { iii.trigger(TriggerRequest::new("r::slow", json!({}))).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (code, message) = code_of(call(&iii, "r::slow", json!({})).await);
    assert_eq!(code, "http_request_failed", "{message}");
    assert!(message.contains("in flight"), "{message}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    for call in calls {
        let _ = call.await;
    }
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trace_context_goes_on_as_headers() {
    let engine = private_engine(&[]);
    let mut server = FunctionServer::start(None).await;
    let iii = iii_sdk::register_worker(&engine.ws_url);
    let url = format!("http://{}/double", server.addr);
    remote(&iii, "remote::traced", json!({ "url": url }));
    ready(&iii).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let context = iii_sdk::CallContext {
        trace: iii_sdk::TraceContext {
            traceparent: Some(traceparent.into()),
            tracestate: Some("vendor=1".into()),
            baggage: None,
        },
        ..Default::default()
    };
    let request = TriggerRequest::new("remote::traced", json!({"n": 1}));
    let answer = within(15, iii.trigger_in_context(request, context)).await;
    assert_eq!(answer.expect("answer"), json!({"n": 2}));
    let seen = server.next().await;
    assert_eq!(header(&seen, "traceparent"), traceparent);
    assert_eq!(header(&seen, "tracestate"), "vendor=1");
    assert!(seen.headers.get("baggage").is_none());
}
