//! Reading a running engine from outside: `GET /status` and `/metrics` on its worker port,
//! and the readable tables `iii status` prints. The tables are built from the JSON alone, so
//! they show what any other `/status` client sees; text a worker chose (names, function ids)
//! is shown without control characters, so it cannot drive the terminal.

use std::fmt::Write as _;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The worker port when a URL names none.
const DEFAULT_PORT: u16 = 49134;

/// The `host:port` of an engine URL (`http://`, `ws://`; a path is ignored).
fn authority(url: &str) -> Result<String, String> {
    let rest = ["http://", "ws://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or_else(|| {
            format!("{url}: give the worker port as http://HOST:PORT (TLS listeners: use curl)")
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok(if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:{DEFAULT_PORT}")
    })
}

/// Reads `GET /status` from the engine at `url`.
pub async fn fetch(url: &str) -> Result<Value, String> {
    let (status, body) = get(url, "/status").await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|error| format!("{url} did not answer JSON ({status}): {error}"))?;
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or("refused");
        return Err(format!("{url} answered {status}: {message}"));
    }
    Ok(value)
}

/// `GET path` on the engine's worker port at `url` (plain HTTP): its status and body.
pub async fn get(url: &str, path: &str) -> Result<(hyper::StatusCode, Bytes), String> {
    let authority = authority(url)?;
    let reading = async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|error| format!("cannot reach {authority}: {error}"))?;
        // Named by the address it reached, which every listener accepts as this engine's
        // (a DNS name would need --allow-host on a non-loopback listener).
        let host = (stream.peer_addr()).map_or_else(|_| authority.clone(), |peer| peer.to_string());
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| error.to_string())?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|error| error.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .map_err(|_| format!("{authority} did not answer within 10 s"))?
}

/// `bytes` as B, KiB, MiB or GiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"B"))
    }
}

/// `secs` as 42s, 3m05s or 2h07m.
fn span(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// Lays `rows` out in columns under `headers`.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
    out
}

/// A JSON field as text (`-` when absent), without control characters.
fn text(value: &Value) -> String {
    let shown = match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    shown.chars().filter(|c| !is_hidden(*c)).collect()
}

/// A character that would move the cursor or reorder what is shown: control characters,
/// and the invisible format characters (bidirectional overrides, zero-width marks).
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The tables of one `/status` answer.
pub fn render(status: &Value) -> String {
    let workers = status["workers"].as_array().cloned().unwrap_or_default();
    let channels = status["channels"].as_array().cloned().unwrap_or_default();
    let now_ms = status["now_ms"].as_u64().unwrap_or(0);
    let total = status["channels_total"]
        .as_u64()
        .unwrap_or(channels.len() as u64);
    let shown = if total > channels.len() as u64 {
        format!(" (the {} oldest shown)", channels.len())
    } else {
        String::new()
    };
    let mut out = format!(
        "iii engine {} · up {} · {} workers · {total} open channels{shown} · {} buffered\n\n",
        text(&status["version"]),
        span(status["uptime_secs"].as_f64().unwrap_or(0.0)),
        workers.len(),
        size(status["totals"]["buffered_bytes"].as_u64().unwrap_or(0)),
    );
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|worker| {
            let since = now_ms.saturating_sub(worker["connected_at_ms"].as_u64().unwrap_or(now_ms));
            let mut functions: Vec<String> = (worker["functions"].as_array().into_iter().flatten())
                .map(text)
                .collect();
            let held = worker["functions_total"].as_u64().unwrap_or(0);
            if held > functions.len() as u64 {
                functions.push(format!("… ({held} in all)"));
            }
            vec![
                text(&worker["id"]).chars().take(8).collect(),
                text(&worker["name"]),
                text(&worker["runtime"]),
                text(&worker["address"]),
                span(since as f64 / 1000.0),
                text(&worker["in_flight"]),
                size(worker["queued_bytes"].as_u64().unwrap_or(0)),
                functions.join(", "),
            ]
        })
        .collect();
    let headers = [
        "WORKER",
        "NAME",
        "RUNTIME",
        "ADDRESS",
        "CONNECTED",
        "IN FLIGHT",
        "QUEUED",
        "FUNCTIONS",
    ];
    out.push_str(&table(&headers, &rows));
    out.push('\n');
    let rows: Vec<Vec<String>> = channels
        .iter()
        .map(|channel| {
            let buffered = channel["buffered_bytes"].as_u64().unwrap_or(0);
            let capacity = channel["buffer_capacity_bytes"].as_u64().unwrap_or(0);
            vec![
                text(&channel["id"]).chars().take(8).collect(),
                span(channel["age_secs"].as_f64().unwrap_or(0.0)),
                text(&channel["writer"]),
                text(&channel["reader"]),
                size(channel["bytes_in"].as_u64().unwrap_or(0)),
                size(channel["bytes_out"].as_u64().unwrap_or(0)),
                format!("{} / {}", size(buffered), size(capacity)),
                format!("{:.1}s", channel["blocked_secs"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    let headers = [
        "CHANNEL", "AGE", "WRITER", "READER", "IN", "OUT", "BUFFERED", "BLOCKED",
    ];
    out.push_str(&table(&headers, &rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_show_workers_and_channels() {
        let status = json!({
            "version": "1.0", "now_ms": 100_000, "uptime_secs": 3700,
            "workers": [{"id": "0123456789", "name": "sender", "runtime": "python",
                "address": "127.0.0.1:5000", "connected_at_ms": 40_000, "in_flight": 2,
                "queued_bytes": 0, "functions": ["a::b", "c::d"]}],
            "channels": [{"id": "abcdef0123", "age_secs": 65.0, "writer": "connected",
                "reader": "connected", "bytes_in": 3_145_728, "bytes_out": 1024,
                "buffered_bytes": 65536, "buffer_capacity_bytes": 4_194_304,
                "blocked_secs": 1.25}],
            "totals": {"buffered_bytes": 65536},
        });
        let shown = render(&status);
        assert!(shown.contains("up 1h01m · 1 workers · 1 open channels · 64.0 KiB buffered"));
        assert!(shown.contains("01234567  sender  python   127.0.0.1:5000  1m00s"));
        assert!(shown.contains("a::b, c::d"));
        assert!(shown.contains("abcdef01  1m05s  connected  connected  3.0 MiB  1.0 KiB"));
        assert!(shown.contains("64.0 KiB / 4.0 MiB  1.2s"));
        let sly = json!({"workers": [{"name": "a\u{1b}[2Jb\u{202E}c", "functions": []}]});
        let shown = render(&sly);
        assert!(shown.contains("a[2Jbc"), "no escape reaches the terminal");
    }

    #[test]
    fn urls_name_the_worker_port() {
        assert_eq!(
            authority("ws://127.0.0.1:49134").ok(),
            Some("127.0.0.1:49134".into())
        );
        assert_eq!(authority("http://h:1/status").ok(), Some("h:1".into()));
        assert_eq!(authority("http://h").ok(), Some("h:49134".into()));
        assert!(authority("wss://h:1").is_err());
    }
}
