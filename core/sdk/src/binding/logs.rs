//! The core's log lines in a binding's process: a Python, Node or C program has no Rust
//! logger of its own, so without this the core's warnings (an engine that cannot be reached,
//! a write stalled because no reader was started) would go nowhere.
//!
//! [`init`] sends them to stderr, plain unless stderr is a terminal (and `NO_COLOR` is
//! unset), at the level `III_LOG` gives (`RUST_LOG` syntax, e.g. `debug` or `iii_sdk=info`),
//! `warn` by default. It installs a logger only if the process has none.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The environment variable that sets the level of the core's log lines in a binding.
pub const LOG_LEVEL_VAR: &str = "III_LOG";

/// Sends the core's log lines to stderr (see the module documentation). Safe to call more
/// than once; only the first call of a process does anything.
pub fn init() {
    let filter = EnvFilter::try_from_env(LOG_LEVEL_VAR).unwrap_or_else(|_| EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .try_init();
}
