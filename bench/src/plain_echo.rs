//! The ceiling of a message round trip: the same WebSocket hops as a channel echo, two each
//! way (sender → relay → echoer → relay → sender), made by plain tokio-tungstenite processes
//! with no protocol of their own. The relay stands where the engine stands, in its own process on
//! the engine's runtime, so the channel figure can be read as a multiple of this one.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Accepts two WebSocket clients (the echoer first, then the sender) and forwards every text
/// message from one to the other until either leaves. Prints `READY <port>` first.
pub async fn relay_server() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("READY {port}");
    let mut sockets = Vec::new();
    while sockets.len() < 2 {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let socket = tokio_tungstenite::accept_async(stream)
            .await
            .map_err(|e| format!("accept: {e}"))?;
        sockets.push(socket);
    }
    let (second, first) = (sockets.pop(), sockets.pop());
    let (Some(first), Some(second)) = (first, second) else {
        return Err("two clients expected".into());
    };
    let (mut first_out, mut first_in) = first.split();
    let (mut second_out, mut second_in) = second.split();
    let forward_one = async {
        while let Some(Ok(Message::Text(text))) = first_in.next().await {
            second_out.send(Message::Text(text)).await?;
        }
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    };
    let forward_two = async {
        while let Some(Ok(Message::Text(text))) = second_in.next().await {
            first_out.send(Message::Text(text)).await?;
        }
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    };
    tokio::select! {
        _ = forward_one => {}
        _ = forward_two => {}
    }
    Ok(())
}

/// Connects to the relay at `url`, prints `READY`, and sends every text message back until
/// `STOP`.
pub async fn echo_client(url: &str) -> Result<(), String> {
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    println!("READY");
    while let Some(message) = socket.next().await {
        match message.map_err(|e| format!("read: {e}"))? {
            Message::Text(text) if text.as_str() == "STOP" => break,
            Message::Text(text) => socket
                .send(Message::Text(text))
                .await
                .map_err(|e| format!("echo: {e}"))?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}
