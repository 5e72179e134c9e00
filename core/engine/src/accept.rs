//! The accept loop both listeners share (worker WebSocket, HTTP triggers): accept until the
//! engine stops, with Nagle disabled and TCP keepalive on for every connection (so a peer whose
//! machine vanished is noticed even on a quiet socket), serve each in its own task, and back off
//! briefly when accepting fails (e.g. out of file descriptors) instead of spinning.
//!
//! On Linux an accepted socket inherits these options from its listener, so they are set once,
//! on the listening socket before it listens, rather than with four system calls per
//! connection (a channel setup accepts two connections). Elsewhere they are set on each
//! connection.
//!
//! [`open`] then reads the start of what a worker-port client sent: peeked on plain TCP, read
//! after the TLS handshake (and replayed) on a `wss://` listener.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::lifecycle::Shutdown;
use crate::tcp::Io;

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

/// How long to wait before peeking again at a request head that is not complete, at first
/// and at most.
const PEEK_PAUSE: Duration = Duration::from_millis(5);
const PEEK_PAUSE_MAX: Duration = Duration::from_millis(200);

/// The connection, and the start of what its client sent (up to `max_head` bytes, the
/// request head when it is complete): peeked on plain TCP; on TLS read after the handshake
/// and put back in front of the stream.
pub(crate) async fn open(
    stream: TcpStream,
    tls: Option<&TlsAcceptor>,
    max_head: usize,
) -> std::io::Result<(Io, Vec<u8>)> {
    let mut head = vec![0u8; max_head];
    let Some(acceptor) = tls else {
        let seen = peek_head(&stream, &mut head).await?;
        head.truncate(seen);
        return Ok((Io::Plain(stream), head));
    };
    let mut stream = acceptor.accept(stream).await?;
    let mut seen = 0;
    while let Some(free) = head.get_mut(seen..).filter(|free| !free.is_empty()) {
        let read = stream.read(free).await?;
        seen += read;
        let complete = (head.get(..seen)).is_some_and(|h| crate::health::head_end(h).is_some());
        if read == 0 || complete {
            break;
        }
    }
    head.truncate(seen);
    let replay = Bytes::copy_from_slice(&head);
    let stream = Box::new(stream);
    Ok((Io::Tls { stream, replay }, head))
}

/// Peeks (without consuming) at the start of what the client sent until the request head is
/// complete (`\r\n\r\n`), `head` is full, or the client stops sending: a head that arrives
/// in pieces (a person typing, a proxy) is still told apart from an upgrade. Returns the
/// bytes seen.
async fn peek_head(stream: &TcpStream, head: &mut [u8]) -> std::io::Result<usize> {
    let mut pause = PEEK_PAUSE;
    loop {
        let seen = stream.peek(head).await?;
        let complete = head
            .get(..seen)
            .is_some_and(|bytes| crate::health::head_end(bytes).is_some());
        if seen == 0 || complete || seen == head.len() {
            return Ok(seen);
        }
        // More of the head is on its way (the caller bounds the whole wait). A peek leaves
        // the socket readable, so this polls, less and less often, rather than waiting for
        // readiness.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PEEK_PAUSE_MAX);
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
