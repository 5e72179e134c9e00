//! 2,000 concurrent random streams through the engine binary, with raw WebSocket clients: random
//! sizes (frames above 64 KiB too, which the engine splits), random text messages between them,
//! readers that connect before or after their writer, and every kind of end — complete, aborted,
//! a writer that drops its socket, a reader that leaves. Nothing may be lost, reordered or
//! invented, and every end must carry its exact close code. Seeded, so a failure reproduces.

use std::time::Duration;

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const STREAMS: usize = 2000;
const SEED: u64 = 0x1111_2222_3333_4444;

/// A small deterministic generator (xorshift64*), so the test needs no seeding API.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Complete,
    Abort,
    WriterDrops,
    ReaderLeaves,
}

#[derive(Clone, Debug)]
enum Piece {
    Bytes(usize),
    Text(String),
}

/// What one stream does.
#[derive(Clone, Debug)]
struct Plan {
    stream: usize,
    kind: Kind,
    pieces: Vec<Piece>,
    reader_first: bool,
    /// How long the second end waits before it connects.
    second_after_ms: u64,
}

fn byte_at(stream: usize, offset: usize) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(stream.wrapping_mul(7)) % 251) as u8
}

fn plan(stream: usize, rng: &mut Rng) -> Plan {
    let kind = match rng.below(4) {
        0 => Kind::Complete,
        1 => Kind::Abort,
        2 => Kind::WriterDrops,
        _ => Kind::ReaderLeaves,
    };
    let pieces = (0..rng.below(7))
        .map(|index| {
            if rng.below(4) == 0 {
                Piece::Text(format!("message {index} of stream {stream}"))
            } else {
                // Up to 100 KiB: some frames are split by the engine into 64 KiB ones.
                Piece::Bytes(rng.below(100 * 1024) as usize)
            }
        })
        .collect();
    Plan {
        stream,
        kind,
        pieces,
        reader_first: rng.below(2) == 0,
        second_after_ms: rng.below(20),
    }
}

/// The bytes and texts a plan writes, in order.
fn expected(plan: &Plan) -> (Vec<u8>, Vec<String>) {
    let mut bytes = Vec::new();
    let mut texts = Vec::new();
    for piece in &plan.pieces {
        match piece {
            Piece::Bytes(len) => {
                let start = bytes.len();
                bytes.extend((start..start + len).map(|i| byte_at(plan.stream, i)));
            }
            Piece::Text(text) => texts.push(text.clone()),
        }
    }
    (bytes, texts)
}

/// Writes a plan's pieces and ends the stream its way; returns the close the engine sent.
async fn write(plan: Plan, url: String) -> Result<(), String> {
    let mut ws = connect(&url).await;
    let mut offset = 0;
    for piece in &plan.pieces {
        let message = match piece {
            Piece::Bytes(len) => {
                let data: Vec<u8> = (offset..offset + len)
                    .map(|i| byte_at(plan.stream, i))
                    .collect();
                offset += len;
                WsMessage::Binary(data.into())
            }
            Piece::Text(text) => WsMessage::text(text.clone()),
        };
        if let Err(error) = ws.send(message).await {
            if plan.kind == Kind::ReaderLeaves {
                return Ok(()); // the engine closed this writer first
            }
            return Err(format!("stream {}: send failed: {error}", plan.stream));
        }
    }
    let stream = plan.stream;
    match plan.kind {
        Kind::Complete => {
            let _ = ws.send(WsMessage::Close(Some(close(1000, "done")))).await;
            expect_close(&mut ws, 1000, stream).await
        }
        Kind::Abort => {
            let reason = format!("why {stream}");
            let _ = ws.send(WsMessage::Close(Some(close(4001, &reason)))).await;
            expect_close(&mut ws, 4001, stream).await
        }
        Kind::WriterDrops => {
            let _ = ws.flush().await;
            drop(ws);
            Ok(())
        }
        Kind::ReaderLeaves => {
            // Keep writing until the engine says the reader is gone.
            for _ in 0..10_000 {
                if ws
                    .send(WsMessage::Binary(vec![0u8; 16 * 1024].into()))
                    .await
                    .is_err()
                {
                    break;
                }
                if let Ok(Some(Ok(WsMessage::Close(frame)))) =
                    tokio::time::timeout(Duration::from_millis(1), ws.next()).await
                {
                    let code = frame.map(|f| u16::from(f.code));
                    return check(code == Some(4003), || {
                        format!("stream {stream}: writer closed with {code:?}, not 4003")
                    });
                }
            }
            expect_close(&mut ws, 4003, stream).await
        }
    }
}

/// Everything a socket receives until its close (or its end), and the close; an error naming
/// `what` when nothing comes for the wait.
async fn until_close(
    ws: &mut Ws,
    what: &str,
) -> Result<(Vec<WsMessage>, Option<(u16, String)>), String> {
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .map_err(|_| format!("{what}: nothing for {WAIT:?}"))?;
        match next {
            Some(Ok(WsMessage::Close(frame))) => {
                let closed = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                // Complete the close handshake, as a client does.
                while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
                return Ok((frames, closed));
            }
            Some(Ok(message @ (WsMessage::Binary(_) | WsMessage::Text(_)))) => frames.push(message),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Ok((frames, None)),
        }
    }
}

async fn expect_close(ws: &mut Ws, code: u16, stream: usize) -> Result<(), String> {
    let (_, closed) = until_close(ws, &format!("stream {stream} writer")).await?;
    let got = closed.map(|(code, _)| code);
    check(got == Some(code), || {
        format!("stream {stream}: writer got {got:?}, expected {code}")
    })
}

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

/// Reads a stream and checks every byte, text and the close against the plan.
async fn read(plan: Plan, url: String) -> Result<(), String> {
    let stream = plan.stream;
    let (bytes, texts) = expected(&plan);
    let mut ws = connect(&url).await;
    if plan.kind == Kind::ReaderLeaves {
        // Read what comes within a moment, then leave; what came must be a prefix.
        let mut got = Vec::new();
        if let Ok(Some(Ok(WsMessage::Binary(data)))) =
            tokio::time::timeout(Duration::from_millis(20), ws.next()).await
        {
            got.extend_from_slice(&data);
        }
        let _ = ws.close(None).await;
        // The planned bytes, then the zeros the writer keeps sending until it learns.
        let planned = got.len().min(bytes.len());
        let as_sent = got.get(..planned) == bytes.get(..planned)
            && got.iter().skip(planned).all(|byte| *byte == 0);
        return check(as_sent, || {
            format!("stream {stream}: a reader that left got bytes that were never sent")
        });
    }
    let (frames, closed) = until_close(
        &mut ws,
        &format!("stream {stream} reader ({:?})", plan.kind),
    )
    .await?;
    let got_bytes = binary_bytes(&frames);
    let got_texts: Vec<String> = frames
        .iter()
        .filter_map(|frame| match frame {
            WsMessage::Text(text) => Some(text.to_string()),
            _ => None,
        })
        .collect();
    check(got_bytes == bytes, || {
        format!(
            "stream {stream} ({:?}): {} bytes read, {} sent",
            plan.kind,
            got_bytes.len(),
            bytes.len()
        )
    })?;
    check(got_texts == texts, || {
        format!("stream {stream}: texts {got_texts:?}, sent {texts:?}")
    })?;
    let (code, reason) = closed.unwrap_or((0, String::new()));
    let expected_close = match plan.kind {
        Kind::Complete => (1000, None),
        Kind::Abort => (4001, Some(format!("aborted: why {stream}"))),
        Kind::WriterDrops => (4002, None),
        Kind::ReaderLeaves => unreachable!("handled above"),
    };
    check(code == expected_close.0, || {
        format!(
            "stream {stream} ({:?}): reader closed with {code} {reason:?}",
            plan.kind
        )
    })?;
    if let Some(expected_reason) = expected_close.1 {
        check(reason == expected_reason, || {
            format!("stream {stream}: abort reason {reason:?}")
        })?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_random_streams_lose_and_reorder_nothing() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let (mut engine, url) = spawn_engine(&[]);
    let mut rng = Rng(SEED);
    let plans: Vec<Plan> = (0..STREAMS).map(|stream| plan(stream, &mut rng)).collect();
    let mut creator = worker_at(&url).await;
    let mut tasks = Vec::new();
    for plan in plans {
        let (writer, reader) = creator.create_channel(json!(64)).await;
        let (writer_url, reader_url) = (end_url_at(&url, &writer), end_url_at(&url, &reader));
        let reader_first = plan.reader_first;
        let second_after = Duration::from_millis(plan.second_after_ms);
        let for_reader = plan.clone();
        tasks.push(tokio::spawn(async move {
            // Both ends run at once; which one connects first is the plan's.
            let (reading, writing) = if reader_first {
                let reading = tokio::spawn(read(for_reader, reader_url));
                tokio::time::sleep(second_after).await;
                (reading, tokio::spawn(write(plan, writer_url)))
            } else {
                let writing = tokio::spawn(write(plan, writer_url));
                tokio::time::sleep(second_after).await;
                (tokio::spawn(read(for_reader, reader_url)), writing)
            };
            let read = reading.await.map_err(|error| error.to_string())?;
            let written = writing.await.map_err(|error| error.to_string())?;
            read.and(written)
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(120), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(why))) => failures.push(why),
            Ok(Err(error)) => failures.push(format!("task failed: {error}")),
            Err(_) => failures.push("a stream did not finish in time".into()),
        }
    }
    let _ = engine.kill();
    let _ = engine.wait();
    assert!(
        failures.is_empty(),
        "{} of {STREAMS} streams failed; first: {:?}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
}
