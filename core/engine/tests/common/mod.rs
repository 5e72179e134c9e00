//! Raw WebSocket helpers for the engine's integration tests: every test talks to a real
//! engine over real sockets, the way any worker would.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iii_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Starts an engine on a free port.
pub async fn engine() -> Engine {
    engine_with(EngineConfig::ephemeral()).await
}

/// Starts an engine with `config`.
pub async fn engine_with(config: EngineConfig) -> Engine {
    iii_engine::start(config).await.expect("engine starts")
}

/// Opens a WebSocket to `url`.
pub async fn connect(url: &str) -> Ws {
    let limit = Some(iii_protocol::limits::MAX_MAIN_MESSAGE_BYTES);
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(limit)
        .max_frame_size(limit);
    let (ws, _) = tokio::time::timeout(WAIT, connect_async_with_config(url, Some(config), true))
        .await
        .expect("connect in time")
        .expect("upgrade accepted");
    ws
}

/// The HTTP status an upgrade to `url` is refused with.
pub async fn refused_status(url: &str) -> u16 {
    match tokio::time::timeout(WAIT, connect_async_with_config(url, None, true))
        .await
        .expect("answer in time")
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the upgrade was accepted"),
    }
}

/// A worker connection, past its `workerregistered`.
pub struct Worker {
    pub ws: Ws,
    pub worker_id: String,
}

/// Connects a worker to `engine` and reads its `workerregistered`.
pub async fn worker(engine: &Engine) -> Worker {
    worker_at(&engine.ws_url()).await
}

impl Worker {
    pub async fn send(&mut self, value: Value) {
        send_json(&mut self.ws, value).await;
    }

    pub async fn recv(&mut self) -> Value {
        recv_json(&mut self.ws).await
    }

    /// Registers `id` and makes sure the engine has processed it (a ping round trip: one
    /// connection's messages are handled in order).
    pub async fn register(&mut self, id: &str) {
        self.send(json!({"type": "registerfunction", "id": id}))
            .await;
        self.sync().await;
    }

    /// A JSON ping round trip: everything sent before has been handled.
    pub async fn sync(&mut self) {
        self.send(json!({"type": "ping"})).await;
        let pong = self.recv().await;
        assert_eq!(pong, json!({"type": "pong"}), "expected only a pong");
    }

    /// Calls `function_id` with `data` under a fresh id; returns that id.
    pub async fn call(&mut self, function_id: &str, data: Value) -> String {
        let id = uuid();
        self.send(json!({"type": "invokefunction", "invocation_id": id,
                         "function_id": function_id, "data": data}))
            .await;
        id
    }

    /// Creates a channel through the built-in; returns (writer ref, reader ref).
    /// Creates a channel and connects its writer, then its reader:
    /// `(writer_ref, reader_ref, writer_socket, reader_socket)`.
    pub async fn connected_channel(
        &mut self,
        engine: &Engine,
        buffer_size: Value,
    ) -> (Value, Value, Ws, Ws) {
        let (writer, reader) = self.create_channel(buffer_size).await;
        let w = connect(&end_url(engine, &writer)).await;
        let r = connect(&end_url(engine, &reader)).await;
        (writer, reader, w, r)
    }

    pub async fn create_channel(&mut self, buffer_size: Value) -> (Value, Value) {
        let id = self
            .call(
                "engine::channels::create",
                json!({"buffer_size": buffer_size}),
            )
            .await;
        let answer = self.recv().await;
        assert_eq!(answer["type"], "invocationresult");
        assert_eq!(answer["invocation_id"], id);
        let result = answer["result"].clone();
        (result["writer"].clone(), result["reader"].clone())
    }
}

/// A random UUID v4 string.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(WsMessage::text(value.to_string()))
        .await
        .expect("send");
}

/// The next JSON text frame (other frames are skipped).
pub async fn recv_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("readable");
        if let WsMessage::Text(text) = message {
            return serde_json::from_str(&text).expect("json");
        }
    }
}

/// True when nothing arrives on `ws` within `wait`.
pub async fn silent_for(ws: &mut Ws, wait: Duration) -> bool {
    tokio::time::timeout(wait, ws.next()).await.is_err()
}

/// The URL of one channel end from its ref.
pub fn end_url(engine: &Engine, channel_ref: &Value) -> String {
    end_url_at(&engine.ws_url(), channel_ref)
}

/// The URL of one channel end from its ref, on the engine at `url`.
pub fn end_url_at(url: &str, channel_ref: &Value) -> String {
    format!(
        "{url}/ws/channels/{}?key={}&dir={}",
        channel_ref["channel_id"].as_str().expect("channel id"),
        channel_ref["access_key"].as_str().expect("key"),
        channel_ref["direction"].as_str().expect("direction"),
    )
}

/// Starts the `iii` binary with `args` (and a free worker port, no HTTP server); returns the
/// process and its worker URL, read from its first line.
pub fn spawn_engine(args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_iii"))
        .args(["--port", "0", "--no-http"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the engine binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let url = line
        .strip_prefix("iii engine listening on ")
        .expect("the worker URL")
        .to_string();
    (child, url)
}

/// A worker connected to the engine at `url`, past its `workerregistered`.
pub async fn worker_at(url: &str) -> Worker {
    let mut ws = connect(url).await;
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["type"], "workerregistered");
    let worker_id = hello["worker_id"].as_str().expect("worker id").to_string();
    Worker { ws, worker_id }
}

/// Writes `frames` as binary frames on a writer socket, then closes it cleanly (1000).
pub async fn write_complete(ws: &mut Ws, frames: impl IntoIterator<Item = Vec<u8>>) {
    for frame in frames {
        ws.send(WsMessage::Binary(frame.into()))
            .await
            .expect("send");
    }
    ws.close(Some(close(1000, "stream_complete")))
        .await
        .expect("close");
}

/// A close frame.
pub fn close(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }
}

/// Everything a channel socket receives until its close, and the close code and reason.
pub async fn read_to_close(ws: &mut Ws) -> (Vec<WsMessage>, Option<(u16, String)>) {
    let mut frames = Vec::new();
    let mut closed = None;
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frames or close in time");
        match next {
            Some(Ok(WsMessage::Close(frame))) => {
                closed = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(message @ (WsMessage::Binary(_) | WsMessage::Text(_)))) => frames.push(message),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (frames, closed),
        }
    }
}

/// Only the close code and reason of a socket the engine is about to close.
pub async fn close_of(ws: &mut Ws) -> Option<(u16, String)> {
    read_to_close(ws).await.1
}

/// The bytes of every binary frame, concatenated.
pub fn binary_bytes(frames: &[WsMessage]) -> Vec<u8> {
    frames
        .iter()
        .filter_map(|m| match m {
            WsMessage::Binary(bytes) => Some(bytes.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Polls `check` until it holds, failing the test after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A text frame whose payload is not UTF-8 (a client library would refuse to build one).
pub fn invalid_text_frame() -> WsMessage {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    WsMessage::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    ))
}
