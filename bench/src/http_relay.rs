//! The ceiling of an HTTP trigger's design: the same two hops as a request through the engine
//! (HTTP client → server → WebSocket → answering process → back), made by a plain hyper server
//! and a plain tokio-tungstenite process with no protocol of their own — no JSON, no channels,
//! no ids beyond a counter. The HTTP figures through the engine can then be read against both
//! one hop (a plain hyper server) and the least any two-hop design pays.
//!
//! Messages are text `"<id> <path>"` to the answerer and `"<id> <body>"` back. A download is
//! answered with binary frames and then a text `"<id> END"`; one runs at a time, like the
//! benchmark's downloads, and the server holds at most [`DOWNLOAD_FRAMES`] frames of it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::workers::{FRAME, frame};

/// Frames of a download the server holds before the answerer waits (as a channel buffer).
const DOWNLOAD_FRAMES: usize = 64;

/// Most messages written before one flush.
const BATCH: usize = 64;

/// The small JSON body of the requests-per-second route.
const HELLO: &str = r#"{"hello":"world"}"#;

/// Replies awaited, by id.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>;

/// Where the frames of the one running download go.
type Download = Arc<Mutex<Option<mpsc::Sender<Bytes>>>>;

/// A reply, or a download's frames as they come.
type RelayBody = Either<Full<Bytes>, BoxBody<Bytes, Infallible>>;

/// Writes what `queue` carries to `sink`, flushing once per batch, until either ends.
async fn write_batched<S>(mut sink: S, mut queue: mpsc::UnboundedReceiver<Message>)
where
    S: Sink<Message> + Unpin,
{
    while let Some(first) = queue.recv().await {
        if sink.feed(first).await.is_err() {
            return;
        }
        for _ in 1..BATCH {
            match queue.try_recv() {
                Ok(next) => {
                    if sink.feed(next).await.is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// The answerer's writer: replies first, then download frames, flushing once per batch.
async fn write_answers<S>(
    mut sink: S,
    mut replies: mpsc::UnboundedReceiver<Message>,
    mut frames: mpsc::Receiver<Message>,
) where
    S: Sink<Message> + Unpin,
{
    loop {
        let first = tokio::select! {
            biased;
            Some(reply) = replies.recv() => reply,
            Some(frame) = frames.recv() => frame,
            else => return,
        };
        if sink.feed(first).await.is_err() {
            return;
        }
        for _ in 1..BATCH {
            let Some(next) = replies.try_recv().or_else(|_| frames.try_recv()).ok() else {
                break;
            };
            if sink.feed(next).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Splits `"<id> <rest>"`.
fn split_id(text: &str) -> Option<(u64, &str)> {
    let (id, rest) = text.split_once(' ')?;
    Some((id.parse().ok()?, rest))
}

/// Accepts one answerer on a WebSocket port, then serves HTTP by asking it. Prints
/// `READY <ws port> <http addr>`.
pub async fn relay_http_server() -> Result<(), String> {
    let bind = || TcpListener::bind("127.0.0.1:0");
    let ws_listener = bind().await.map_err(|e| format!("bind: {e}"))?;
    let http_listener = bind().await.map_err(|e| format!("bind: {e}"))?;
    let ws_port = ws_listener.local_addr().map_err(|e| e.to_string())?.port();
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;
    println!("READY {ws_port} {http_addr}");
    let (stream, _) = ws_listener.accept().await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let socket = tokio_tungstenite::accept_async(stream)
        .await
        .map_err(|e| format!("accept: {e}"))?;
    let (sink, answers) = socket.split();
    let (outbound, queue) = mpsc::unbounded_channel();
    tokio::spawn(write_batched(sink, queue));
    let pending: Pending = Arc::default();
    let download: Download = Arc::default();
    tokio::spawn(route_answers(answers, pending.clone(), download.clone()));
    let next_id = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = http_listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let asking = Asking {
            pending: pending.clone(),
            download: download.clone(),
            outbound: outbound.clone(),
            next_id: next_id.clone(),
        };
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let asking = asking.clone();
                async move { Ok::<_, Infallible>(asking.ask(request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Hands each answer to whoever waits for it: a reply to its request, download frames to the
/// running download (waiting while its body is full), `"<id> END"` ends the download.
async fn route_answers<S>(mut answers: S, pending: Pending, download: Download)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut frames: Option<mpsc::Sender<Bytes>> = None;
    while let Some(Ok(message)) = answers.next().await {
        match message {
            Message::Binary(data) => {
                if frames.is_none() {
                    frames = download.lock().ok().and_then(|mut slot| slot.take());
                }
                if let Some(sender) = &frames {
                    let _ = sender.send(data).await;
                }
            }
            Message::Text(text) => {
                let Some((id, body)) = split_id(text.as_str()) else {
                    continue;
                };
                if body == "END" {
                    frames = None;
                    continue;
                }
                let reply = pending.lock().ok().and_then(|mut map| map.remove(&id));
                if let Some(reply) = reply {
                    let _ = reply.send(Bytes::copy_from_slice(body.as_bytes()));
                }
            }
            _ => {}
        }
    }
}

/// What one HTTP connection needs to ask the answerer.
#[derive(Clone)]
struct Asking {
    pending: Pending,
    download: Download,
    outbound: mpsc::UnboundedSender<Message>,
    next_id: Arc<AtomicU64>,
}

impl Asking {
    /// Answers one request by asking the answerer.
    async fn ask(&self, request: Request<hyper::body::Incoming>) -> Response<RelayBody> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = request.uri().path();
        let question = Message::Text(format!("{id} {path}").into());
        if path.starts_with("/bytes/") {
            let (frames, mut received) = mpsc::channel::<Bytes>(DOWNLOAD_FRAMES);
            if let Ok(mut slot) = self.download.lock() {
                *slot = Some(frames);
            }
            let _ = self.outbound.send(question);
            let stream = futures_util::stream::poll_fn(move |cx| received.poll_recv(cx))
                .map(|data| Ok(Frame::data(data)));
            return Response::new(Either::Right(BodyExt::boxed(StreamBody::new(stream))));
        }
        let (reply, answer) = oneshot::channel();
        if let Ok(mut map) = self.pending.lock() {
            map.insert(id, reply);
        }
        let _ = self.outbound.send(question);
        let body = answer.await.unwrap_or_default();
        let mut response = Response::new(Either::Left(Full::new(body)));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Connects to the relay server's WebSocket port at `url` and answers its questions: the
/// small JSON body, or `n` bytes in 64 KiB frames followed by `"<id> END"`. Prints `READY`.
pub async fn relay_http_answerer(url: &str) -> Result<(), String> {
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (sink, mut questions) = socket.split();
    println!("READY");
    let (outbound, queue) = mpsc::unbounded_channel::<Message>();
    // A download's frames go through a bounded queue, so the socket paces the download.
    let (frames, frame_queue) = mpsc::channel::<Message>(DOWNLOAD_FRAMES);
    tokio::spawn(write_answers(sink, queue, frame_queue));
    while let Some(message) = questions.next().await {
        let Message::Text(text) = message.map_err(|e| format!("read: {e}"))? else {
            continue;
        };
        let Some((id, path)) = split_id(text.as_str()) else {
            continue;
        };
        if let Some(n) = path
            .strip_prefix("/bytes/")
            .and_then(|n| n.parse::<u64>().ok())
        {
            let frames = frames.clone();
            tokio::spawn(async move {
                let frame = frame();
                let mut left = n;
                while left > 0 {
                    let len = (FRAME as u64).min(left) as usize;
                    left -= len as u64;
                    if frames
                        .send(Message::Binary(frame.slice(..len)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = frames.send(Message::Text(format!("{id} END").into())).await;
            });
        } else if outbound
            .send(Message::Text(format!("{id} {HELLO}").into()))
            .is_err()
        {
            break;
        }
    }
    Ok(())
}
