//! The accept loop both listeners share (worker WebSocket, HTTP triggers): accept until the
//! engine stops, with Nagle disabled and TCP keepalive on for every connection (so a peer whose
//! machine vanished is noticed even on a quiet socket), serve each in its own task, and back off
//! briefly when accepting fails (e.g. out of file descriptors) instead of spinning.
//!
//! On Linux an accepted socket inherits these options from its listener, so they are set once,
//! on the listening socket before it listens, rather than with four system calls per
//! connection (a channel setup accepts two connections). Elsewhere they are set on each
//! connection.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

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
                if !INHERITED_FROM_LISTENER {
                    set_socket_options(socket2::SockRef::from(&stream));
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

/// Connections the kernel queues for `accept` (the most Linux allows by default).
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` whose options every accepted connection inherits where the
/// platform copies them (set before `listen`, so no connection can come before them).
pub(crate) fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As std and tokio do: a restarted engine can bind the port its predecessor's
    // connections still hold in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    set_socket_options(socket2::SockRef::from(&socket));
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Whether accepted sockets inherit `TCP_NODELAY` and the keepalive settings from their
/// listener (Linux copies the listening socket's options into each connection it accepts).
const INHERITED_FROM_LISTENER: bool = cfg!(target_os = "linux");

/// Disables Nagle and turns on TCP keepalive on `socket` (a listener or a connection);
/// failures are logged, not fatal.
fn set_socket_options(socket: socket2::SockRef<'_>) {
    if let Err(error) = socket.set_tcp_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(error) = socket.set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "could not turn on TCP keepalive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `INHERITED_FROM_LISTENER` relies on: a connection accepted by the loop has Nagle
    /// off and keepalive on, with our timings.
    #[tokio::test]
    async fn accepted_connections_have_nodelay_and_keepalive() {
        let listener = listen_on(([127, 0, 0, 1], 0).into()).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shutdown = Shutdown(stopped);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let accepting = tokio::spawn(accept_loop(listener, shutdown, move |stream, _| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(stream);
            }
        }));
        let _client = TcpStream::connect(addr).await.expect("connect");
        let accepted = rx.recv().await.expect("accepted");
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.tcp_nodelay().expect("TCP_NODELAY"));
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            KEEPALIVE_IDLE
        );
        assert_eq!(
            socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            KEEPALIVE_INTERVAL
        );
        drop(stop);
        accepting.abort();
    }
}
