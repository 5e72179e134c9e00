//! Blocking the caller's thread on the core: `block_on` with the core's runtime and a
//! timeout, refused (instead of tokio's panic) where the core says blocking is not allowed
//! ([`iii_sdk::binding::blocking_allowed`]).

use std::future::Future;
use std::time::Duration;

use crate::result::{Failure, iii_result};

/// The timeout of a blocking call: `None` for 0 (no limit).
pub(crate) fn limit(timeout_ms: u32) -> Option<Duration> {
    (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)))
}

/// Runs `future` on the caller's thread with the core's runtime, for at most `timeout_ms`
/// (0 = no limit): a timeout is `III_TIMEOUT` and drops (cancels) the future.
pub(crate) fn block_on<F: Future>(timeout_ms: u32, future: F) -> Result<F::Output, Failure> {
    if !iii_sdk::binding::blocking_allowed() {
        return Err(Failure::invalid(
            "this call blocks, and this thread belongs to iii's runtime: call iii functions \
             from your own threads or from inside an iii_handler",
        ));
    }
    iii_sdk::runtime().block_on(async move {
        match limit(timeout_ms) {
            None => Ok(future.await),
            Some(duration) => tokio::time::timeout(duration, future).await.map_err(|_| {
                Failure::new(
                    iii_result::III_TIMEOUT,
                    format!("no result within {timeout_ms} ms"),
                )
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_and_refuses_runtime_threads() {
        let slow = block_on(10, std::future::pending::<()>());
        assert_eq!(slow.err().map(|f| f.code), Some(iii_result::III_TIMEOUT));
        assert_eq!(block_on(0, async { 7 }).ok(), Some(7));
        let (tx, rx) = std::sync::mpsc::channel();
        iii_sdk::runtime().spawn(async move {
            let _ = tx.send(block_on(0, async {}).err().map(|f| f.code));
        });
        assert_eq!(
            rx.recv().ok().flatten(),
            Some(iii_result::III_INVALID_ARGUMENT)
        );
    }
}
