//! The README's example: a function that counts the bytes of a channel, and a caller that
//! streams into it. Run it against a running engine:
//!
//! ```text
//! cargo run -p iii-sdk --example quickstart        # III_URL, default ws://127.0.0.1:49134
//! ```

use iii_sdk::{
    ChannelReader, IIIError, RegisterFunction, TriggerRequest, extract_channel_refs,
    register_worker,
};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), IIIError> {
    let iii = register_worker(
        &std::env::var("III_URL").unwrap_or_else(|_| "ws://127.0.0.1:49134".into()),
    );

    let worker = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "files::process",
        move |input: Value| {
            let worker = worker.clone();
            async move {
                let (_, reader_ref) = extract_channel_refs(&input)
                    .into_iter()
                    .find(|(key, _)| key == "reader")
                    .ok_or_else(|| IIIError::Handler("missing reader".into()))?;
                let reader = ChannelReader::new(worker.address(), &reader_ref);
                let mut bytes = 0;
                while let Some(chunk) = reader.next_binary().await? {
                    bytes += chunk.len();
                }
                Ok(json!({ "bytes": bytes }))
            }
        },
    ));

    let channel = iii.create_channel(None).await?;
    let call = iii.trigger(TriggerRequest::new(
        "files::process",
        json!({ "reader": channel.reader_ref }),
    ));
    let write = async {
        channel.writer.write(b"file contents").await?;
        channel.writer.close().await
    };
    let (result, written) = tokio::join!(call, write);
    written?;
    println!("{}", result?); // {"bytes":13}
    Ok(())
}
