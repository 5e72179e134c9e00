//! Worker options and the reconnect backoff schedule.
//!
//! Kept apart from the connection code so the schedule (1 s × 2, cap 30 s, ±30 % jitter, as
//! the published clients do) is a pure function with its own tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iii_protocol::limits::DEFAULT_TRIGGER_TIMEOUT_MS;

/// How long a call waits for a connection to the engine by default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Options of [`register_worker_with`](crate::register_worker_with).
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The name this worker reports to the engine (`engine::workers::register`); defaults to
    /// the executable's name.
    pub worker_name: Option<String>,
    /// A description of this worker for the engine's listings (`engine::workers::list`).
    pub worker_description: Option<String>,
    /// The runtime this worker reports (`rust`; bindings report `python`, `node`, `c`).
    pub runtime: String,
    /// The version this worker reports; defaults to this crate's version.
    pub version: String,
    /// Default timeout of a call with a result, when the request gives none.
    pub invocation_timeout_ms: u64,
    /// How to reconnect after the main socket drops.
    pub reconnection: ReconnectionConfig,
    /// Capacity, in messages, of the queue between the API and the main socket; callers wait
    /// when it is full.
    pub max_queued_messages: usize,
    /// How long a call waits for the main socket when the worker is not connected (and how
    /// long one connection attempt may take) before it fails with
    /// [`IIIError::Connection`](crate::IIIError::Connection) naming the URL and the cause.
    /// The worker keeps reconnecting in the background either way.
    pub connect_timeout_ms: u64,
    /// Extra headers of the WebSocket handshake (e.g. `Authorization`). When none is named
    /// `Authorization` and `III_TOKEN` is set, `Authorization: Bearer $III_TOKEN` is added
    /// (see [`handshake_headers`](Self::handshake_headers)).
    pub headers: Vec<(String, String)>,
    /// Liveness of the engine: once the main socket has brought nothing for this long, the
    /// worker pings the engine (a WebSocket Ping, which every engine answers by itself);
    /// `0` turns the check off.
    pub ping_interval_ms: u64,
    /// An engine that then sends nothing at all for this long is treated as gone: calls in
    /// flight fail with a connection error and the worker reconnects, instead of waiting
    /// for a socket the network silently dropped.
    pub ping_timeout_ms: u64,
    /// A PEM file of CA certificates trusted for `wss://` besides the system roots (and
    /// `III_CA_FILE`); see [`crate::tls`].
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            worker_name: None,
            worker_description: None,
            runtime: "rust".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            invocation_timeout_ms: DEFAULT_TRIGGER_TIMEOUT_MS,
            reconnection: ReconnectionConfig::default(),
            max_queued_messages: 1024,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            headers: Vec::new(),
            ping_interval_ms: 20_000,
            ping_timeout_ms: 20_000,
            ca_file: None,
        }
    }
}

impl InitOptions {
    /// The void `engine::workers::register` call describing this worker (sent on every
    /// connect): its runtime, version, name (the executable's, unless given), OS and pid.
    pub(crate) fn description_message(&self) -> String {
        use iii_protocol::builtins::FN_WORKERS_REGISTER;
        use iii_protocol::{Message, TriggerAction};
        let name = self.worker_name.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "iii-worker".into())
        });
        let mut data = serde_json::json!({
            "runtime": self.runtime,
            "version": self.version,
            "name": name,
            "os": std::env::consts::OS,
            "pid": std::process::id(),
        });
        if let (Some(description), serde_json::Value::Object(fields)) =
            (&self.worker_description, &mut data)
        {
            fields.insert("description".into(), description.as_str().into());
        }
        Message::InvokeFunction {
            invocation_id: None,
            function_id: FN_WORKERS_REGISTER.into(),
            data,
            action: Some(TriggerAction::Void),
            metadata: None,
            traceparent: None,
            tracestate: None,
            baggage: None,
            namespace: None,
        }
        .to_json()
    }

    /// The options of a binding's worker: it reports `runtime` (`python`, `node`, `c`) and
    /// takes a worker name and a default call timeout from its caller (a timeout of 0 keeps
    /// the default).
    pub fn for_binding(
        runtime: &str,
        worker_name: Option<String>,
        invocation_timeout_ms: Option<u64>,
    ) -> Self {
        let defaults = Self::default();
        Self {
            worker_name,
            runtime: runtime.to_string(),
            invocation_timeout_ms: invocation_timeout_ms
                .filter(|ms| *ms > 0)
                .unwrap_or(defaults.invocation_timeout_ms),
            ..defaults
        }
    }

    /// How long a call waits for a connection (and one attempt may take): 0 means the default.
    pub fn connect_timeout(&self) -> Duration {
        match self.connect_timeout_ms {
            0 => Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            ms => Duration::from_millis(ms),
        }
    }

    /// These options with a worker description (for the engine's listings).
    pub fn with_description(mut self, description: Option<String>) -> Self {
        self.worker_description = description;
        self
    }

    /// These options with extra handshake headers.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// These options with a binding's settings given as JSON in the published clients'
    /// names: `headers` (an object of strings), `caFile` / `ca_file` (see
    /// [`ca_file`](Self::ca_file)), `connectTimeoutMs` / `connect_timeout_ms`, and
    /// `reconnectionConfig` /
    /// `reconnection_config` (see [`ReconnectionConfig::from_value`]); absent or `null` ones
    /// keep their values. A header value that is not a string is
    /// [`IIIError::InvalidArgument`](crate::IIIError::InvalidArgument).
    pub fn with_settings(mut self, settings: &serde_json::Value) -> Result<Self, crate::IIIError> {
        match settings.get("headers") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(headers)) => {
                let mut pairs = Vec::with_capacity(headers.len());
                for (name, value) in headers {
                    let value = value.as_str().ok_or_else(|| {
                        crate::IIIError::InvalidArgument(format!(
                            "header {name:?} must be a string"
                        ))
                    })?;
                    pairs.push((name.clone(), value.to_string()));
                }
                self.headers = pairs;
            }
            Some(_) => {
                return Err(crate::IIIError::InvalidArgument(
                    "headers must be an object of strings".into(),
                ));
            }
        }
        let timeout = ["connectTimeoutMs", "connect_timeout_ms"]
            .iter()
            .find_map(|key| settings.get(*key).and_then(serde_json::Value::as_u64));
        self = self.with_connect_timeout(timeout);
        let ca_file = ["caFile", "ca_file"]
            .iter()
            .find_map(|key| settings.get(*key).and_then(serde_json::Value::as_str));
        if let Some(path) = ca_file {
            self.ca_file = Some(path.into());
        }
        let reconnection = ["reconnectionConfig", "reconnection_config"]
            .iter()
            .find_map(|key| settings.get(*key).filter(|config| config.is_object()));
        if let Some(config) = reconnection {
            self.reconnection = ReconnectionConfig::from_value(config);
        }
        Ok(self)
    }

    /// The handshake's extra headers: [`headers`](Self::headers), plus
    /// `Authorization: Bearer $III_TOKEN` when `III_TOKEN` is set and no header is named
    /// `Authorization`.
    pub fn handshake_headers(&self) -> Vec<(String, String)> {
        self.headers_with_token(std::env::var("III_TOKEN").ok())
    }

    /// [`headers`](Self::headers), plus `Authorization: Bearer <token>` for a non-empty
    /// `token` when no header is named `Authorization`.
    fn headers_with_token(&self, token: Option<String>) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        let has_authorization = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        let token = token.filter(|token| !token.is_empty());
        if let (false, Some(token)) = (has_authorization, token) {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        headers
    }

    /// These options with `connect_timeout_ms` (`None` or 0 keeps the default).
    pub fn with_connect_timeout(mut self, connect_timeout_ms: Option<u64>) -> Self {
        if let Some(ms) = connect_timeout_ms.filter(|ms| *ms > 0) {
            self.connect_timeout_ms = ms;
        }
        self
    }
}

/// The reconnect schedule: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectionConfig {
    /// Delay before the first retry.
    pub initial_delay_ms: u64,
    /// Largest delay between retries.
    pub max_delay_ms: u64,
    /// Growth factor of the delay after each failed attempt.
    pub backoff_multiplier: f64,
    /// Random spread of each delay, as a fraction (0.3 = ±30 %).
    pub jitter_factor: f64,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_retries: Option<u32>,
}

impl Default for ReconnectionConfig {
    fn default() -> Self {
        Self {
            initial_delay_ms: 1_000,
            max_delay_ms: 30_000,
            backoff_multiplier: 2.0,
            jitter_factor: 0.3,
            max_retries: None,
        }
    }
}

impl ReconnectionConfig {
    /// The schedule given as JSON by a binding, in the published clients' names
    /// (`initial_delay_ms` | `initialDelayMs`, `max_delay_ms` | `maxDelayMs`,
    /// `backoff_multiplier` | `backoffMultiplier`, `jitter_factor` | `jitterFactor`,
    /// `max_retries` | `maxRetries`, where -1 means never give up); absent or unusable
    /// fields keep their defaults.
    pub fn from_value(value: &serde_json::Value) -> Self {
        let field = |snake: &str, camel: &str| value.get(snake).or_else(|| value.get(camel));
        let millis = |snake, camel, default| {
            field(snake, camel)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(default)
        };
        let ratio = |snake, camel, default: f64| {
            field(snake, camel)
                .and_then(serde_json::Value::as_f64)
                .filter(|x| x.is_finite() && *x >= 0.0)
                .unwrap_or(default)
        };
        let defaults = Self::default();
        Self {
            initial_delay_ms: millis(
                "initial_delay_ms",
                "initialDelayMs",
                defaults.initial_delay_ms,
            ),
            max_delay_ms: millis("max_delay_ms", "maxDelayMs", defaults.max_delay_ms),
            backoff_multiplier: ratio(
                "backoff_multiplier",
                "backoffMultiplier",
                defaults.backoff_multiplier,
            ),
            jitter_factor: ratio("jitter_factor", "jitterFactor", defaults.jitter_factor),
            max_retries: field("max_retries", "maxRetries")
                .and_then(serde_json::Value::as_i64)
                .and_then(|retries| u32::try_from(retries).ok()),
        }
    }

    /// The delay before retry number `attempt` (0-based), given a uniform sample `unit` in
    /// `[0, 1)` for the jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(attempt.min(64)).unwrap_or(64);
        let base = self.initial_delay_ms as f64 * self.backoff_multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_delay_ms as f64);
        let jitter = self.jitter_factor.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_millis((capped * factor).max(0.0) as u64)
    }
}

/// A uniform sample in `[0, 1)` for jitter. Not cryptographic: it only spreads reconnects.
pub(crate) fn jitter_sample() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    let mixed = random ^ u64::from(nanos).rotate_left(17);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_becomes_a_bearer_header_unless_one_is_given() {
        let plain = InitOptions::default();
        let with_token = plain.headers_with_token(Some("t0k".into()));
        assert_eq!(
            with_token,
            vec![("Authorization".into(), "Bearer t0k".into())]
        );
        assert!(plain.headers_with_token(Some(String::new())).is_empty());
        let given = plain.with_headers(vec![("authorization".into(), "Basic x".into())]);
        assert_eq!(given.headers_with_token(Some("t0k".into())).len(), 1);
    }

    #[test]
    fn settings_in_the_published_names() {
        let settings =
            serde_json::json!({"headers": {"x-a": "1"}, "reconnectionConfig": {"maxRetries": 2}});
        let options = InitOptions::default()
            .with_settings(&settings)
            .expect("valid");
        assert_eq!(options.headers, vec![("x-a".to_string(), "1".to_string())]);
        assert_eq!(options.reconnection.max_retries, Some(2));
        let bad = serde_json::json!({"headers": {"x-a": 1}});
        assert!(InitOptions::default().with_settings(&bad).is_err());
        assert!(
            InitOptions::default()
                .with_settings(&serde_json::json!({}))
                .is_ok()
        );
    }

    #[test]
    fn reads_the_published_names() {
        let snake =
            serde_json::json!({"initial_delay_ms": 10, "max_retries": 3, "jitter_factor": 0});
        let camel = serde_json::json!({"initialDelayMs": 10, "maxRetries": 3, "jitterFactor": 0});
        for given in [snake, camel] {
            let config = ReconnectionConfig::from_value(&given);
            assert_eq!(config.initial_delay_ms, 10);
            assert_eq!(config.max_retries, Some(3));
            assert_eq!(config.jitter_factor, 0.0);
            assert_eq!(config.max_delay_ms, 30_000);
        }
        let forever = ReconnectionConfig::from_value(&serde_json::json!({"max_retries": -1}));
        assert_eq!(forever.max_retries, None);
    }

    #[test]
    fn doubles_from_one_second_and_caps_at_thirty() {
        let config = ReconnectionConfig::default();
        let middle = |attempt| config.delay(attempt, 0.5).as_millis();
        assert_eq!(middle(0), 1_000);
        assert_eq!(middle(1), 2_000);
        assert_eq!(middle(4), 16_000);
        assert_eq!(middle(5), 30_000);
        assert_eq!(middle(100), 30_000);
    }

    #[test]
    fn jitter_stays_within_thirty_percent() {
        let config = ReconnectionConfig::default();
        assert_eq!(config.delay(0, 0.0).as_millis(), 700);
        assert_eq!(config.delay(0, 1.0).as_millis(), 1_300);
        for _ in 0..1000 {
            let sample = jitter_sample();
            assert!((0.0..1.0).contains(&sample));
            let delay = config.delay(2, sample).as_millis();
            assert!((2_800..=5_200).contains(&delay), "{delay}");
        }
    }
}
