//! Starting and stopping the engine: [`start`] binds the listeners and spawns their tasks over
//! one [`EngineState`], the [`Engine`] handle stops them, and one periodic task expires channels
//! and forgets old tombstones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::EngineConfig;
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;
use crate::stats::EngineStats;
use crate::tls::{Reloadable, TlsFiles};
use crate::worker::registry::WorkerInfo;

/// Which listeners serve TLS.
struct Schemes {
    /// The worker listeners, main first.
    worker: Vec<bool>,
    /// The HTTP trigger server.
    http: bool,
}

/// How long [`Engine::shutdown`] waits for its tasks to finish closing their sockets.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often [`Engine::drain`] looks whether anything is still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// A running engine. Dropping it stops it too; [`Engine::shutdown`] also waits until every
/// socket is closed.
pub struct Engine {
    local_addr: SocketAddr,
    extra_addrs: Vec<SocketAddr>,
    /// Per worker listener (main first), then the HTTP server: whether it serves TLS.
    schemes: Schemes,
    certificates: Vec<Arc<Reloadable>>,
    http_addr: Option<SocketAddr>,
    shared: Arc<EngineState>,
    stop: watch::Sender<bool>,
    lifeline: Option<Lifeline>,
    finished: Option<mpsc::Receiver<()>>,
}

/// A listener on `host:port` (the first of its addresses that can be bound); a failure names
/// the address (say, the port that is busy).
async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let named = |error: std::io::Error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot listen on {host}:{port}: {error}"),
        )
    };
    let mut failed = None;
    for addr in tokio::net::lookup_host((host, port)).await.map_err(named)? {
        match crate::accept::listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(error) => failed = Some(error),
        }
    }
    Err(named(failed.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the host resolves to no address",
        )
    })))
}

/// Binds the listeners (worker WebSocket, and HTTP triggers unless `http_port` is `None`)
/// and starts serving. Works from any tokio runtime; the engine's tasks run on the runtime
/// `start` is called from.
pub async fn start(config: EngineConfig) -> std::io::Result<Engine> {
    let listener = bind(&config.host, config.port).await?;
    let local_addr = listener.local_addr()?;
    let mut certificates = Vec::new();
    let mut acceptor = |files: &Option<TlsFiles>, alpn: &[&[u8]]| -> std::io::Result<_> {
        let Some(files) = files else { return Ok(None) };
        let certificate = Reloadable::new(files.clone())?;
        let acceptor = certificate.acceptor(alpn)?;
        certificates.push(certificate);
        Ok(Some(acceptor))
    };
    let main_tls = acceptor(&config.tls, &[b"http/1.1"])?;
    let mut schemes = Schemes {
        worker: vec![main_tls.is_some()],
        http: config.http_tls.is_some(),
    };
    let mut extra = Vec::new();
    for spec in &config.extra_listeners {
        let bound = bind(&spec.host, spec.port).await?;
        let tls = acceptor(&spec.tls, &[b"http/1.1"])?;
        schemes.worker.push(tls.is_some());
        extra.push((bound, Arc::new(spec.access.clone()), tls));
    }
    let http_tls = acceptor(&config.http_tls, &[b"http/1.1"])?;
    let extra_addrs = (extra.iter())
        .map(|(bound, _, _)| bound.local_addr())
        .collect::<std::io::Result<Vec<_>>>()?;
    let main_access = Arc::new(config.access.clone());
    let http_listener = match config.http_port {
        Some(port) => Some(bind(config.http_host.as_ref().unwrap_or(&config.host), port).await?),
        None => None,
    };
    let http_addr = match &http_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let (stop, stop_rx) = watch::channel(false);
    let (lifeline_tx, finished) = mpsc::channel(1);
    let lifeline = Lifeline(lifeline_tx);
    let remote = crate::remote::RemoteClient::new(crate::remote::RemoteSettings {
        allow_private: config.http_functions_allow_private,
        ca_files: &config.http_functions_ca_files,
        allowed_secrets: config.http_functions_secrets.clone(),
        max_response_bytes: config.max_json_body_bytes,
        max_timeout: config.invocation_timeout,
    })
    .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error.to_string()))?;
    let cluster = (config.cluster.clone()).map(|mut cluster| {
        if cluster.advertise.is_empty() {
            let scheme = if main_tls.is_some() { "wss" } else { "ws" };
            cluster.advertise = format!("{scheme}://{}", reachable(local_addr));
            if local_addr.ip().is_unspecified() {
                tracing::warn!(advertise = %cluster.advertise, "the engine listens on every address: give --advertise so other machines can reach it");
            }
        }
        cluster
    });
    let shared = Arc::new(EngineState::new(config, remote));
    let shutdown = Shutdown(stop_rx);
    if let Some(cluster) = cluster {
        crate::cluster::join(&shared, cluster, shutdown.clone(), lifeline.clone()).await?;
    }
    for (listener, access, tls) in std::iter::once((listener, main_access, main_tls)).chain(extra) {
        tokio::spawn(crate::listener::run(
            listener,
            access,
            tls,
            shared.clone(),
            shutdown.clone(),
            lifeline.clone(),
        ));
    }
    if let Some(http_listener) = http_listener {
        tokio::spawn(crate::http::run(
            http_listener,
            http_tls,
            shared.clone(),
            shutdown.clone(),
            lifeline.clone(),
        ));
    }
    tokio::spawn(crate::functions_available::run(
        shared.clone(),
        shutdown.clone(),
        lifeline.clone(),
    ));
    tokio::spawn(sweep(shared.clone(), shutdown, lifeline.clone()));
    tracing::debug!(%local_addr, ?http_addr, "iii engine listening");
    Ok(Engine {
        local_addr,
        extra_addrs,
        schemes,
        certificates,
        http_addr,
        shared,
        stop,
        lifeline: Some(lifeline),
        finished: Some(finished),
    })
}

impl Engine {
    /// The address the engine listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL workers connect to, e.g. `ws://127.0.0.1:49134` (a wildcard bind address is
    /// shown as the loopback address).
    pub fn ws_url(&self) -> String {
        let scheme = if self.schemes.worker.first() == Some(&true) {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}", reachable(self.local_addr))
    }

    /// Reads every TLS certificate and key again (the binary does on SIGHUP); connections
    /// opened from now on get the new ones. A file that does not load leaves its old
    /// certificate in use, and is reported.
    pub fn reload_tls(&self) -> std::io::Result<()> {
        let mut failed = None;
        for certificate in &self.certificates {
            if let Err(error) = certificate.reload() {
                tracing::error!(%error, "TLS certificate not reloaded; the old one stays");
                failed = Some(error);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// The URLs of the extra worker listeners, in the order they were configured.
    pub fn extra_ws_urls(&self) -> Vec<String> {
        (self
            .extra_addrs
            .iter()
            .zip(self.schemes.worker.iter().skip(1)))
        .map(|(addr, tls)| {
            let scheme = if *tls { "wss" } else { "ws" };
            format!("{scheme}://{}", reachable(*addr))
        })
        .collect()
    }

    /// The address of the HTTP trigger server, if it runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The base URL of the HTTP trigger server, e.g. `http://127.0.0.1:3111`, if it runs.
    pub fn http_url(&self) -> Option<String> {
        let scheme = if self.schemes.http { "https" } else { "http" };
        self.http_addr
            .map(|addr| format!("{scheme}://{}", reachable(addr)))
    }

    /// What the engine holds right now.
    pub fn stats(&self) -> EngineStats {
        let shared = &self.shared;
        EngineStats {
            connections: shared.connections.len(),
            sockets: shared.sockets.taken(),
            functions: shared.functions.len(),
            triggers: shared.triggers.len(),
            http_routes: shared.routes.len(),
            pending_invocations: shared.invocations.len(),
            channels: shared.channels.len(),
            tombstones: shared.channels.tombstones(),
            buffered_bytes: shared.bytes.buffered(),
            peak_buffered_bytes: shared.bytes.peak(),
        }
    }

    /// The workers connected now, with what they said about themselves through
    /// `engine::workers::register`.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.shared.connections.workers()
    }

    /// The first half of a graceful stop: from now on new workers are refused (503 on the
    /// worker port, `/health` answers 503 `stopping`) and so are new HTTP requests (503),
    /// while connected workers go on, channels keep connecting, and calls and streams in
    /// flight finish. Resolves once nothing is in flight or `grace` has passed, whichever
    /// comes first; [`shutdown`](Self::shutdown) then closes what is left with 1001.
    pub async fn drain(&self, grace: Duration) {
        self.shared
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.shared.is_idle() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// Stops accepting, closes every socket and waits (a few seconds at most) for the
    /// engine's tasks to finish.
    pub async fn shutdown(mut self) {
        crate::cluster::leave(&self.shared).await;
        self.signal_stop();
        self.lifeline = None;
        if let Some(mut finished) = self.finished.take() {
            // `recv` returns `None` once every task has dropped its lifeline.
            if tokio::time::timeout(SHUTDOWN_GRACE, finished.recv())
                .await
                .is_err()
            {
                tracing::warn!("engine tasks still running after the shutdown grace period");
            }
        }
    }

    fn signal_stop(&self) {
        self.stop.send_replace(true);
        self.shared.invocations.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// `addr`, with a wildcard IP replaced by loopback, for URLs a local client can use.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// Expires channels past their TTL and forgets old tombstones, on one timer for all.
async fn sweep(shared: Arc<EngineState>, mut shutdown: Shutdown, _lifeline: Lifeline) {
    let mut ticks = tokio::time::interval(shared.config.sweep_interval());
    let mut last_trim = tokio::time::Instant::now();
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = ticks.tick() => {}
        }
        for channel in shared.channels.sweep(tokio::time::Instant::now()) {
            if let Some(status) = channel.expire() {
                shared.channels.retire(&channel, status);
            }
        }
        shared.invocations.shrink();
        shared.functions.shrink();
        if last_trim.elapsed() >= crate::memory::TRIM_EVERY {
            crate::memory::give_back();
            last_trim = tokio::time::Instant::now();
        }
    }
}
