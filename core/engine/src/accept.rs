//! The accept loop both listeners share (worker WebSocket, HTTP triggers): accept until the
//! engine stops, disable Nagle and turn on TCP keepalive on each connection (so a peer whose
//! machine vanished is noticed even on a quiet socket), serve it in its own task, and back off
//! briefly when accepting fails (e.g. out of file descriptors) instead of spinning.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::lifecycle::Shutdown;

/// TCP keepalive: first probe after this much idle time, then one per interval; the kernel
/// gives up on the connection after its default number of unanswered probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Pause after a failed accept before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` until `shutdown`, spawning `serve(stream, peer)` for each.
pub(crate) async fn accept_loop<F, Fut>(listener: TcpListener, mut shutdown: Shutdown, mut serve: F)
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "could not set TCP_NODELAY");
                }
                let keepalive = socket2::TcpKeepalive::new()
                    .with_time(KEEPALIVE_IDLE)
                    .with_interval(KEEPALIVE_INTERVAL);
                if let Err(error) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
                    tracing::debug!(%error, "could not turn on TCP keepalive");
                }
                tokio::spawn(serve(stream, peer));
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
