//! `iii`: runs the engine until SIGINT or SIGTERM.
//!
//! ```text
//! iii --port 49134 --http-port 3111 --host 127.0.0.1
//! RUST_LOG=debug iii
//! ```

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

mod cluster_args;
mod status_command;

use clap::Parser;
use iii_engine::{EngineConfig, Quotas};
use tracing_subscriber::EnvFilter;

/// The iii engine: workers connect over WebSocket, call each other's functions and stream
/// data through channels.
#[derive(Debug, Parser)]
#[command(name = "iii", version, about)]
struct Cli {
    /// Address to listen on (use 0.0.0.0 to accept remote workers).
    #[arg(long, env = "III_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port of the worker WebSocket (0 picks a free port).
    #[arg(long, env = "III_PORT", default_value_t = 49134)]
    port: u16,
    /// Port of the HTTP trigger server (0 picks a free port).
    #[arg(long, env = "III_HTTP_PORT", default_value_t = iii_engine::DEFAULT_HTTP_PORT)]
    http_port: u16,
    /// Run no HTTP trigger server.
    #[arg(long, conflicts_with = "http_port")]
    no_http: bool,
    /// Seconds an HTTP request waits for its function's status and headers before 504.
    #[arg(long, default_value_t = 30)]
    http_timeout_secs: u64,
    /// Largest JSON request body parsed into `body` (larger ones get 413).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_json_body_bytes: usize,
    /// Seconds a channel may wait for both of its ends to connect.
    #[arg(long, default_value_t = 300)]
    channel_ttl_secs: u64,
    /// Seconds a finished channel is remembered for late connects.
    #[arg(long, default_value_t = 60)]
    tombstone_ttl_secs: u64,
    /// Seconds the engine waits for the answer of a call before answering `timeout`.
    #[arg(long, default_value_t = 300)]
    invocation_timeout_secs: u64,
    /// Bytes the engine holds for one worker that does not read them; calls to a worker over
    /// this are refused with `worker_busy`, and one at twice this is dropped.
    #[arg(long, env = "III_MAX_OUTBOUND_BYTES", default_value_t = 32 * 1024 * 1024)]
    max_outbound_bytes: usize,
    /// Seconds a worker may stay over --max-outbound-bytes before it is dropped as a slow
    /// consumer.
    #[arg(long, env = "III_SLOW_CONSUMER_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    slow_consumer_secs: u64,
    /// Seconds a worker's main socket may be quiet before the engine pings it.
    #[arg(long, env = "III_PING_INTERVAL_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    ping_interval_secs: u64,
    /// Seconds a pinged worker may stay silent before it is dropped as unresponsive (its
    /// pending calls fail with `invocation_stopped`).
    #[arg(long, env = "III_PING_TIMEOUT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    ping_timeout_secs: u64,
    /// Let functions the engine calls over HTTP (registered with an `invocation` URL) be at
    /// loopback, private or link-local addresses. Off by default: a worker cannot make the
    /// engine reach into its network.
    #[arg(long, env = "III_HTTP_FUNCTIONS_ALLOW_PRIVATE")]
    http_functions_allow_private: bool,
    /// A PEM file of CA certificates trusted for `https://` HTTP-invoked functions, beside the
    /// Mozilla roots (repeatable).
    #[arg(long = "http-functions-ca", value_name = "FILE")]
    http_functions_ca: Vec<std::path::PathBuf>,
    /// An environment variable of the engine that HTTP-invoked functions may name in their
    /// `auth` (repeatable, or comma-separated in III_HTTP_FUNCTIONS_SECRETS); no other is read.
    #[arg(
        long = "http-functions-secret",
        value_name = "NAME",
        env = "III_HTTP_FUNCTIONS_SECRETS",
        value_delimiter = ','
    )]
    http_functions_secret: Vec<String>,
    /// Largest message accepted on a worker's main socket; larger ones close it with 1009.
    #[arg(long, env = "III_MAX_MESSAGE_BYTES", default_value_t = iii_protocol::limits::MAX_MAIN_MESSAGE_BYTES)]
    max_message_bytes: usize,
    /// Connections open at once, both ports together (worker sockets and HTTP); more are
    /// answered 503.
    #[arg(long, env = "III_MAX_CONNECTIONS", default_value_t = Quotas::default().max_connections)]
    max_connections: usize,
    /// Unfinished channels one connection may have created.
    #[arg(long, env = "III_MAX_CHANNELS_PER_CONNECTION", default_value_t = Quotas::default().max_channels_per_connection)]
    max_channels_per_connection: usize,
    /// Unfinished channels workers may have created, all connections together.
    #[arg(long, env = "III_MAX_CHANNELS", default_value_t = Quotas::default().max_channels)]
    max_channels: usize,
    /// Functions one connection may register.
    #[arg(long, env = "III_MAX_FUNCTIONS_PER_CONNECTION", default_value_t = Quotas::default().max_functions_per_connection)]
    max_functions_per_connection: usize,
    /// Triggers one connection may register (and, counted apart, trigger types it may provide).
    #[arg(long, env = "III_MAX_TRIGGERS_PER_CONNECTION", default_value_t = Quotas::default().max_triggers_per_connection)]
    max_triggers_per_connection: usize,
    /// Longest function id, trigger id, trigger type or HTTP route path, in bytes.
    #[arg(long, env = "III_MAX_ID_BYTES", default_value_t = Quotas::default().max_id_bytes)]
    max_id_bytes: usize,
    /// Largest channel `buffer_size` (frames of up to 64 KiB); larger requests are clamped.
    #[arg(long, env = "III_MAX_BUFFER_FRAMES", default_value_t = Quotas::default().max_buffer_frames)]
    max_buffer_frames: usize,
    /// Bytes all channel buffers together may hold; past it writers wait for readers.
    #[arg(long, env = "III_MAX_CHANNEL_BYTES", default_value_t = Quotas::default().max_channel_bytes)]
    max_channel_bytes: usize,
    /// Seconds a stopping engine (SIGINT or SIGTERM) lets calls and streams in flight finish
    /// before it closes every socket with 1001; a second signal stops it at once.
    #[arg(long, env = "III_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
    /// A YAML configuration file in the published iii engine's shape (`workers:` with
    /// `iii-worker-manager` and `iii-http` entries; docs/ACCESS.md). Flags given on the
    /// command line or in the environment override it.
    #[arg(long, env = "III_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// A browser origin (e.g. `https://app.example`, or `*`) whose pages may open worker and
    /// channel sockets on the main listener (repeatable); upgrades from any other origin get 403.
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        env = "III_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    allow_origin: Vec<String>,
    /// A host name (beside IP addresses and `localhost`) under which `/metrics` and `/status`
    /// are served when the engine listens on a non-loopback address (repeatable).
    #[arg(
        long = "allow-host",
        value_name = "NAME",
        env = "III_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    allow_host: Vec<String>,
    /// How calls are spread across the replicas of a function (workers registering the same
    /// id): `least-in-flight` (the one with the fewest unanswered calls) or `round-robin`.
    #[arg(long, env = "III_REPLICA_CHOICE", default_value = "least-in-flight",
          value_parser = ["least-in-flight", "round-robin"])]
    replica_choice: String,
    /// PEM certificate chain: with --tls-key, the worker port serves `wss://` and the HTTP
    /// port `https://` (plain connections are refused). SIGHUP reads both files again.
    #[arg(long, env = "III_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "III_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Threads moving the traffic; 1 runs everything on one thread (fastest on small
    /// machines), more helps when one core cannot keep up.
    #[arg(long, env = "III_WORKER_THREADS", default_value_t = iii_engine::DEFAULT_WORKER_THREADS)]
    worker_threads: usize,
    /// Keep no Prometheus metrics (`GET /metrics` then answers 404; `/status` stays).
    #[arg(long, env = "III_NO_METRICS", value_parser = clap::builder::BoolishValueParser::new())]
    no_metrics: bool,
    /// How log lines are written: `human` (the default) or `json` (one object per line).
    #[arg(long, env = "III_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    #[command(flatten)]
    cluster: cluster_args::ClusterArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do instead of running an engine.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Prints a running engine's workers and open channels as tables.
    Status(status_command::StatusArgs),
}

impl Cli {
    fn tls_files(&self) -> Option<iii_engine::TlsFiles> {
        Some(iii_engine::TlsFiles {
            cert_file: self.tls_cert.clone()?,
            key_file: self.tls_key.clone()?,
        })
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            host: self.host.clone(),
            port: self.port,
            channel_ttl: Duration::from_secs(self.channel_ttl_secs),
            tombstone_ttl: Duration::from_secs(self.tombstone_ttl_secs),
            invocation_timeout: Duration::from_secs(self.invocation_timeout_secs),
            max_outbound_bytes: self.max_outbound_bytes,
            slow_consumer_timeout: Duration::from_secs(self.slow_consumer_secs),
            ping_interval: Duration::from_secs(self.ping_interval_secs),
            ping_timeout: Duration::from_secs(self.ping_timeout_secs),
            http_port: (!self.no_http).then_some(self.http_port),
            http_host: None,
            http_timeout: Duration::from_secs(self.http_timeout_secs),
            max_json_body_bytes: self.max_json_body_bytes,
            http_functions_allow_private: self.http_functions_allow_private,
            http_functions_ca_files: self.http_functions_ca.clone(),
            http_functions_secrets: self.http_functions_secret.clone(),
            // Below a few KiB no worker could even register.
            max_main_message_bytes: self.max_message_bytes.max(4096),
            access: iii_engine::access::ListenerPolicy {
                allowed_origins: self.allow_origin.clone(),
                allowed_hosts: self.allow_host.clone(),
                ..Default::default()
            },
            extra_listeners: Vec::new(),
            replica_choice: match self.replica_choice.as_str() {
                "round-robin" => iii_engine::ReplicaChoice::RoundRobin,
                _ => iii_engine::ReplicaChoice::LeastInFlight,
            },
            tls: self.tls_files(),
            http_tls: self.tls_files(),
            metrics: !self.no_metrics,
            cluster: self.cluster.config(self.port),
            quotas: Quotas {
                max_connections: self.max_connections,
                max_channels_per_connection: self.max_channels_per_connection,
                max_functions_per_connection: self.max_functions_per_connection,
                max_triggers_per_connection: self.max_triggers_per_connection,
                max_channels: self.max_channels,
                max_id_bytes: self.max_id_bytes,
                max_buffer_frames: self.max_buffer_frames.max(1),
                max_channel_bytes: self.max_channel_bytes,
            },
        }
    }
}

/// Settings from the file under those from flags: a setting whose flag was given on the
/// command line or in the environment keeps the flag's value.
fn apply_file(
    config: &mut EngineConfig,
    file: iii_engine::config_file::FileConfig,
    given: impl Fn(&str) -> bool,
) {
    for ignored in &file.ignored {
        tracing::warn!("config: {ignored} is not served by this engine; ignored");
    }
    // The command line's --cluster replaces the file's section as a whole.
    if let Some(mut cluster) = file.cluster.filter(|_| !given("nats_urls")) {
        if cluster.node_id.is_empty() {
            cluster.node_id = cluster_args::default_node_id(config.port);
        }
        config.cluster = Some(cluster);
    }
    let mut listeners = file.listeners.into_iter();
    if let Some(main) = listeners.next() {
        if let Some(host) = main.host.filter(|_| !given("host")) {
            config.host = host;
        }
        if let Some(port) = main.port.filter(|_| !given("port")) {
            config.port = port;
        }
        let mut access = main.access;
        access
            .allowed_origins
            .append(&mut config.access.allowed_origins);
        access
            .allowed_hosts
            .append(&mut config.access.allowed_hosts);
        config.access = access;
        if let Some(tls) = main.tls.filter(|_| !given("tls_cert")) {
            config.tls = Some(tls);
        }
    }
    config.extra_listeners = listeners
        .map(|entry| iii_engine::WorkerListener {
            host: entry.host.unwrap_or_else(|| config.host.clone()),
            port: entry.port.unwrap_or(0),
            access: entry.access,
            tls: entry.tls,
        })
        .collect();
    if let Some(http) = file.http {
        if !given("http_port") && !given("no_http") {
            config.http_port = Some(http.port.unwrap_or(iii_engine::DEFAULT_HTTP_PORT));
        }
        if let Some(host) = http.host.filter(|_| !given("host")) {
            config.http_host = Some(host);
        }
        if let Some(timeout) = http
            .default_timeout_ms
            .filter(|_| !given("http_timeout_secs"))
        {
            config.http_timeout = Duration::from_millis(timeout);
        }
        if let Some(tls) = http.tls.filter(|_| !given("tls_cert")) {
            config.http_tls = Some(tls);
        }
    }
}

/// The engine's settings: flags, over the config file if one is named.
fn settings(cli: &Cli, matches: &clap::ArgMatches) -> Result<EngineConfig, String> {
    use clap::parser::ValueSource;
    let mut config = cli.config();
    if let Some(path) = &cli.config {
        let file = iii_engine::config_file::load(path)?;
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        apply_file(&mut config, file, given);
    }
    Ok(config)
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr, coloured only on a terminal (and not with NO_COLOR); stdout carries
    // only the "listening on" lines, which scripts read.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if let Some(Command::Status(args)) = &cli.command {
        return status_command::run(args);
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().with_current_span(false).init();
    } else {
        logs.with_ansi(colour).init();
    }
    let config = match settings(&cli, &matches) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("iii: {error}");
            return ExitCode::FAILURE;
        }
    };
    match iii_engine::build_runtime(cli.worker_threads) {
        Ok(runtime) => runtime.block_on(run(cli, config)),
        Err(error) => {
            tracing::error!(%error, "could not start the tokio runtime");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: EngineConfig) -> ExitCode {
    let mut signals = StopSignals::new();
    let engine = match iii_engine::start(config).await {
        Ok(engine) => engine,
        Err(error) => {
            tracing::error!(%error, "could not start the engine");
            return ExitCode::FAILURE;
        }
    };
    println!("iii engine listening on {}", engine.ws_url());
    for url in engine.extra_ws_urls() {
        println!("iii engine also listening on {url}");
    }
    if let Some(http_url) = engine.http_url() {
        println!("iii http triggers on {http_url}");
    }

    wait_for_stop(&mut signals, &engine).await;
    let first_signal = tokio::time::Instant::now();
    let grace = Duration::from_secs(cli.shutdown_grace_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: refusing new workers and requests while calls and streams in flight finish (a second signal stops at once)"
    );
    let insisted = async {
        loop {
            signals.next().await;
            if first_signal.elapsed() >= SAME_STOP {
                return;
            }
            tracing::debug!("a second signal at once after the first: the same stop");
        }
    };
    tokio::select! {
        () = engine.drain(grace) => {}
        () = insisted => tracing::warn!("second signal: stopping at once"),
    }
    tracing::info!("shutting down");
    engine.shutdown().await;
    ExitCode::SUCCESS
}

/// Waits for SIGINT or SIGTERM; each SIGHUP meanwhile reloads the TLS certificates.
async fn wait_for_stop(signals: &mut StopSignals, engine: &iii_engine::Engine) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return signals.next().await;
        };
        loop {
            tokio::select! {
                () = signals.next() => return,
                Some(()) = hangups.recv() => {
                    tracing::info!("SIGHUP: reloading TLS certificates");
                    let _ = engine.reload_tls();
                }
            }
        }
    }
    #[cfg(not(unix))]
    signals.next().await
}

/// A signal this soon after the first is the same stop delivered twice, not an operator
/// insisting: `timeout`, for one, signals the engine and then its own process group, the
/// engine included.
const SAME_STOP: Duration = Duration::from_millis(100);

/// SIGINT (Ctrl-C) and, on Unix, SIGTERM, listened for from start-up to exit: a second
/// signal during the drain is never lost between two listeners.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(listener) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for {name}");
                    None
                }
            };
            Self {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the next SIGINT or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn on(listener: &mut Option<tokio::signal::unix::Signal>) {
                match listener {
                    Some(listener) => {
                        if listener.recv().await.is_none() {
                            // The signal driver is gone (the runtime is ending): no more
                            // signals will come.
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = on(&mut self.interrupt) => {}
                () = on(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
