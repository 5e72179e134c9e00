//! What a worker's handles and its main socket task share: the registrations (replayed on
//! every reconnect), the socket's sending side, the queue for when it is down, and why the
//! worker stopped. It lives apart from the handle ([`crate::worker`]) and the socket task
//! ([`crate::connection`]) so that each depends on the state, not on the other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tokio::sync::{mpsc, watch};

use crate::link::{Link, Outbound};
use crate::trigger_type::RegisterTriggerType;
use crate::{IIIError, InitOptions, RegisterFunction, RegisterTrigger};

/// State shared by the worker handles and the main socket task.
pub(crate) struct WorkerState {
    pub(crate) address: String,
    pub(crate) options: InitOptions,
    /// Registered functions by id, with the generation of their registration.
    pub(crate) functions: Mutex<HashMap<String, (u64, RegisterFunction)>>,
    /// Registered triggers by trigger id.
    pub(crate) triggers: Mutex<HashMap<String, RegisterTrigger>>,
    /// Trigger types this worker provides, with the generation of their registration.
    pub(crate) trigger_types: Mutex<HashMap<String, (u64, RegisterTriggerType)>>,
    /// Counts registrations, so an unregister withdraws only its own.
    pub(crate) generation: AtomicU64,
    /// The main socket's sending side, shared with callers.
    pub(crate) link: Link,
    /// What waits for a connection (calls, results, pings), in order; bounded.
    pub(crate) outbound: mpsc::Sender<Outbound>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Why the worker stopped for good (shutdown, or reconnecting gave up).
    pub(crate) terminal: OnceLock<IIIError>,
    /// Whether the main socket is up (connected and greeted).
    pub(crate) connected: watch::Sender<bool>,
    /// Whether it has been up at least once (a drop after that is a reconnect).
    pub(crate) was_connected: AtomicBool,
    /// Why the last connection attempt failed, for the error of a call that cannot wait longer.
    pub(crate) last_failure: Mutex<Option<String>>,
}

/// Where a worker's connection to the engine stands, with the published clients' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected yet (the first attempts).
    Connecting,
    /// Connected and greeted.
    Connected,
    /// Connected before, now trying again.
    Reconnecting,
    /// Stopped by `shutdown()`.
    Disconnected,
    /// Stopped for good otherwise (reconnecting gave up).
    Failed,
}

impl ConnectionState {
    /// The published clients' name: `connecting`, `connected`, `reconnecting`,
    /// `disconnected` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
        }
    }
}

/// Locks `mutex`, taking over a poisoned one (no state here is left broken by a panic).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WorkerState {
    /// The state of a new worker for `url`, whose queued messages go to `outbound`.
    pub(crate) fn new(url: &str, options: InitOptions, outbound: mpsc::Sender<Outbound>) -> Self {
        Self {
            address: url.to_string(),
            options,
            functions: Mutex::new(HashMap::new()),
            triggers: Mutex::new(HashMap::new()),
            trigger_types: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            link: Link::default(),
            outbound,
            shutdown: watch::Sender::new(false),
            terminal: OnceLock::new(),
            connected: watch::Sender::new(false),
            was_connected: AtomicBool::new(false),
            last_failure: Mutex::new(None),
        }
    }

    /// Waits until the main socket is up, at most the connect timeout: a call to an engine
    /// that cannot be reached fails soon, naming the URL and why, instead of waiting for its
    /// own timeout. Fails at once once the worker stopped.
    pub(crate) async fn connection(&self) -> Result<(), IIIError> {
        // Connected: no receiver, no timer (every call passes here).
        if *self.connected.borrow() {
            return Ok(());
        }
        let mut connected = self.connected.subscribe();
        let limit = self.options.connect_timeout();
        let deadline = {
            let _home = crate::runtime::enter_home();
            tokio::time::sleep(limit)
        };
        let mut stopping = self.shutdown.subscribe();
        tokio::select! {
            biased;
            _ = stopping.wait_for(|stop| *stop) => Err(self.stopped()),
            up = connected.wait_for(|up| *up) => up.map(|_| ()).map_err(|_| self.stopped()),
            _ = deadline => {
                self.check_open()?;
                let cause = lock(&self.last_failure).clone();
                let cause = cause.unwrap_or_else(|| "the connection attempt got no answer".into());
                Err(IIIError::Connection(format!(
                    "cannot reach the engine at {}: {cause} (not connected within {} ms; \
                     still retrying in the background)",
                    self.address,
                    limit.as_millis()
                )))
            }
        }
    }

    /// Where the connection stands now.
    pub(crate) fn connection_state(&self) -> ConnectionState {
        if *self.shutdown.borrow() {
            return match self.terminal.get() {
                None | Some(IIIError::Shutdown) => ConnectionState::Disconnected,
                Some(_) => ConnectionState::Failed,
            };
        }
        if *self.connected.borrow() {
            ConnectionState::Connected
        } else if self.was_connected.load(Ordering::Acquire) {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        }
    }

    /// Waits until the connection state differs from `seen`, and returns the new one (at
    /// once if it already differs). A stopped worker's state is final: this then waits forever.
    pub(crate) async fn connection_state_change(&self, seen: ConnectionState) -> ConnectionState {
        let mut connected = self.connected.subscribe();
        let mut stopping = self.shutdown.subscribe();
        loop {
            let now = self.connection_state();
            if now != seen {
                return now;
            }
            tokio::select! {
                changed = connected.changed() => if changed.is_err() { std::future::pending::<()>().await },
                changed = stopping.changed() => if changed.is_err() { std::future::pending::<()>().await },
            }
        }
    }

    /// `Ok` while the worker runs; why it stopped once it has.
    pub(crate) fn check_open(&self) -> Result<(), IIIError> {
        match self.terminal.get() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Why the worker stopped ([`IIIError::Shutdown`] when nothing more is known).
    pub(crate) fn stopped(&self) -> IIIError {
        self.terminal.get().cloned().unwrap_or(IIIError::Shutdown)
    }

    /// Sends `item` now if connected (from the caller's future), else queues it for the next
    /// connection.
    pub(crate) async fn send(&self, item: Outbound) -> Result<(), IIIError> {
        match self.link.send_now(item).await {
            Ok(written) => written,
            Err(item) => self.outbound.send(item).await.map_err(|_| self.stopped()),
        }
    }
}
