//! Stopping gracefully (docs/PROTOCOL.md §2.4): a draining engine refuses new workers and HTTP
//! requests, lets the calls and streams in flight finish, and closes what is left after the
//! grace period with 1001 going-away — on both ends of a stream, never a code that blames a
//! peer and never 1000 on a cut stream.

use std::time::{Duration, Instant};

use crate::common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_engine_finishes_what_is_in_flight_and_cuts_the_rest_with_1001() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    owner.register("slow::work").await;
    let mut caller = worker(&engine).await;
    let (_, _, mut finishing_writer, mut finishing_reader) =
        caller.connected_channel(&engine, json!(8)).await;
    let (_, _, mut open_writer, mut open_reader) =
        caller.connected_channel(&engine, json!(8)).await;
    let id = caller.call("slow::work", json!({"n": 1})).await;
    let call = owner.recv().await;
    assert_eq!(call["type"], "invokefunction");

    let grace = Duration::from_secs(2);
    let started = Instant::now();
    let in_flight = async {
        // New workers are refused while the engine drains; health says so.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(refused_status(&engine.ws_url()).await, 503);
        // The call in flight is answered.
        owner
            .send(json!({"type": "invocationresult",
                         "invocation_id": call["invocation_id"], "result": 7}))
            .await;
        let answer = caller.recv().await;
        assert_eq!(answer["invocation_id"], id.as_str());
        assert_eq!(answer["result"], 7);
        // A stream in flight finishes cleanly.
        finishing_writer
            .send(WsMessage::Binary(vec![5; 1000].into()))
            .await
            .expect("send");
        finishing_writer
            .close(Some(close(1000, "stream_complete")))
            .await
            .expect("close");
        let (frames, end) = read_to_close(&mut finishing_reader).await;
        assert_eq!(binary_bytes(&frames), vec![5; 1000]);
        assert_eq!(end.map(|(code, _)| code), Some(1000));
        // Another keeps writing; it will not finish within the grace period.
        open_writer
            .send(WsMessage::Binary(vec![6; 500].into()))
            .await
            .expect("send");
    };
    tokio::join!(engine.drain(grace), in_flight);
    assert!(
        started.elapsed() >= grace - Duration::from_millis(100),
        "an open stream holds the drain until the grace period ends"
    );
    engine.shutdown().await;
    let (frames, end) = read_to_close(&mut open_reader).await;
    assert_eq!(binary_bytes(&frames), vec![6; 500], "buffered bytes first");
    assert_eq!(end, Some((1001, "engine_shutdown".into())));
    assert_eq!(
        close_of(&mut open_writer).await,
        Some((1001, "engine_shutdown".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_engine_drains_at_once() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine().await;
    let mut w = worker(&engine).await;
    w.register("idle::work").await;
    // A channel nobody connected to is not in flight.
    w.create_channel(json!(4)).await;
    let started = Instant::now();
    engine.drain(Duration::from_secs(30)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    engine.shutdown().await;
    assert_eq!(close_of(&mut w.ws).await.map(|(code, _)| code), Some(1001));
}
