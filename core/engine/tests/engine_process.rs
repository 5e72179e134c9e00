//! The `iii` binary as operators and scripts see it: the "listening on" lines alone on stdout,
//! logs on stderr (plain when not a terminal, each line once), one line per worker connect and
//! disconnect, registration and failed invocation at the default level, and a bind error that
//! names the address that is busy.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The engine binary with stdout and stderr piped (so neither is a terminal) and the default
/// log level (no `RUST_LOG`).
fn engine_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iii"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A running engine process: its worker URL and first stdout lines, read once both URLs came.
struct EngineProcess {
    child: Child,
    url: String,
    stdout_lines: Vec<String>,
}

fn start_engine() -> EngineProcess {
    start_engine_with(&[])
}

fn start_engine_with(extra: &[&str]) -> EngineProcess {
    let mut args = vec!["--port", "0", "--http-port", "0"];
    args.extend_from_slice(extra);
    let mut child = engine_command(&args)
        .spawn()
        .expect("the engine binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut stdout_lines = Vec::new();
    while stdout_lines.len() < 2 {
        let line = lines.next().expect("a line").expect("utf-8");
        stdout_lines.push(line);
    }
    let url = stdout_lines[0]
        .strip_prefix("iii engine listening on ")
        .expect("the first line names the worker URL")
        .to_string();
    // Whatever else reaches stdout is read at the end.
    std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    EngineProcess {
        child,
        url,
        stdout_lines,
    }
}

/// Stops the process with SIGTERM and returns its stderr.
fn stop(mut engine: EngineProcess) -> String {
    let pid = engine.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.child.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "the engine did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = engine.child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    stderr
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_go_to_stderr_plain_once_and_say_what_workers_do() {
    let engine = start_engine();
    assert!(
        engine.stdout_lines[1].starts_with("iii http triggers on http://"),
        "{:?}",
        engine.stdout_lines
    );
    let mut ws = connect(&engine.url).await;
    let hello = recv_json(&mut ws).await;
    let worker_id = hello["worker_id"].as_str().expect("worker id").to_string();
    let mut worker = Worker { ws, worker_id };
    worker.register("logs::echo").await;
    worker
        .send(
            json!({"type": "registertrigger", "id": "t-1", "trigger_type": "http",
                     "function_id": "logs::echo", "config": {"api_path": "/echo"}}),
        )
        .await;
    worker.sync().await;
    worker.call("logs::missing", json!({})).await;
    let answer = worker.recv().await;
    assert_eq!(answer["error"]["code"], "function_not_found", "{answer}");
    drop(worker);
    // The disconnect is logged once the engine noticed it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stderr = stop(engine);

    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a redirected log:\n{stderr}"
    );
    assert!(
        !stderr.contains("listening on"),
        "start-up lines logged twice:\n{stderr}"
    );
    assert_eq!(count(&stderr, "worker connected"), 1, "{stderr}");
    assert_eq!(count(&stderr, "function registered"), 1, "{stderr}");
    assert!(stderr.contains("function_id=logs::echo"), "{stderr}");
    assert_eq!(count(&stderr, "trigger registered"), 1, "{stderr}");
    assert!(stderr.contains("trigger_type=http"), "{stderr}");
    assert_eq!(count(&stderr, "invocation failed"), 1, "{stderr}");
    assert!(stderr.contains("code=\"function_not_found\""), "{stderr}");
    assert!(
        stderr.contains("error=") && stderr.contains("logs::missing"),
        "{stderr}"
    );
    assert_eq!(count(&stderr, "worker disconnected"), 1, "{stderr}");
    for line in stderr.lines() {
        assert!(
            line.contains(" INFO ") || line.contains(" WARN ") || line.contains(" ERROR "),
            "not a log line of the default level: {line:?}"
        );
    }
}

/// Runs the binary on ports `args` and returns (exit success, stdout, stderr).
fn run_to_exit(args: &[&str]) -> (bool, String, String) {
    let output = engine_command(args)
        .output()
        .expect("the engine binary runs");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn a_busy_port_is_named_in_the_bind_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to occupy");
    let port = busy.local_addr().expect("address").port().to_string();
    for args in [
        ["--port", port.as_str(), "--http-port", "0"],
        ["--port", "0", "--http-port", port.as_str()],
    ] {
        let (succeeded, stdout, stderr) = run_to_exit(&args);
        assert!(!succeeded, "started on a busy port: {args:?}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{port}")),
            "{args:?}: the error does not name the busy address:\n{stderr}"
        );
        assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
    }
}

/// Sends `signal` (e.g. `-TERM`) to the engine process.
fn signal(engine: &EngineProcess, signal: &str) {
    let pid = engine.child.id().to_string();
    let _ = Command::new("kill").args([signal, &pid]).status();
}

/// Waits for the process to exit; its exit status.
fn exit_status(engine: &mut EngineProcess, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = engine.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "the engine did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_for_the_grace_period_and_a_second_signal_stops_at_once() {
    // A stream left open holds the drain; after --shutdown-grace-secs both ends get 1001.
    let mut engine = start_engine_with(&["--shutdown-grace-secs", "1"]);
    let mut ws = connect(&engine.url).await;
    let hello = recv_json(&mut ws).await;
    let worker_id = hello["worker_id"].as_str().expect("worker id").to_string();
    let mut worker = Worker { ws, worker_id };
    let (writer, reader) = worker.create_channel(json!(4)).await;
    let mut writer_ws = connect(&end_for(&engine.url, &writer)).await;
    let mut reader_ws = connect(&end_for(&engine.url, &reader)).await;
    futures_util::SinkExt::send(
        &mut writer_ws,
        tokio_tungstenite::tungstenite::Message::Binary(vec![1; 10].into()),
    )
    .await
    .expect("send");
    let started = Instant::now();
    signal(&engine, "-TERM");
    let (frames, closed) = read_to_close(&mut reader_ws).await;
    assert_eq!(binary_bytes(&frames), vec![1; 10]);
    assert_eq!(closed.map(|(code, _)| code), Some(1001));
    assert_eq!(
        close_of(&mut writer_ws).await.map(|(code, _)| code),
        Some(1001)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "drained first"
    );
    assert!(exit_status(&mut engine, Duration::from_secs(10)).success());

    // With a long grace period, a second signal stops the engine at once.
    let mut engine = start_engine_with(&["--shutdown-grace-secs", "600"]);
    let mut ws = connect(&engine.url).await;
    recv_json(&mut ws).await;
    let mut worker = Worker {
        ws,
        worker_id: String::new(),
    };
    let (writer, _) = worker.create_channel(json!(4)).await;
    let mut writer_ws = connect(&end_for(&engine.url, &writer)).await;
    // One stop delivered twice at once (as `timeout` does) is still one stop: it drains.
    // Sent from this process, so that nothing slow (starting `kill`) widens the 30 ms gap
    // past the engine's 100 ms window.
    let pid = libc::pid_t::try_from(engine.child.id()).expect("pid");
    // SAFETY: kill(2) takes no pointers; the pid is the engine child's, still running.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(30));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(
        silent_for(&mut writer_ws, Duration::from_millis(300)).await,
        "still draining: the stream was not cut"
    );
    assert!(
        engine.child.try_wait().expect("try_wait").is_none(),
        "still draining"
    );
    signal(&engine, "-INT");
    assert_eq!(
        close_of(&mut writer_ws).await.map(|(code, _)| code),
        Some(1001)
    );
    assert!(exit_status(&mut engine, Duration::from_secs(10)).success());
}

fn end_for(url: &str, channel_ref: &serde_json::Value) -> String {
    format!(
        "{url}/ws/channels/{}?key={}&dir={}",
        channel_ref["channel_id"].as_str().expect("id"),
        channel_ref["access_key"].as_str().expect("key"),
        channel_ref["direction"].as_str().expect("direction"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_in_the_published_shape_opens_its_listeners_under_the_flags() {
    let dir = std::env::temp_dir().join(format!("iii-config-{}", uuid()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("config.yaml");
    let yaml = "workers:\n  - name: iii-worker-manager\n    config:\n      port: 1\n  - name: iii-stream\n    config: { port: 3112 }\n  - name: iii-worker-manager\n    config:\n      port: ${EXTRA_PORT:0}\n      rbac:\n        expose_functions:\n          - match(\"api::*\")\n";
    std::fs::write(&file, yaml).expect("config written");
    let path = file.to_string_lossy().into_owned();
    // `--port 0` (given by start_engine_with) overrides the file's port 1.
    let engine = start_engine_with(&["--config", &path]);
    let extra = engine.stdout_lines[1]
        .strip_prefix("iii engine also listening on ")
        .expect("the second listener's line")
        .to_string();
    let mut open = worker_at(&engine.url).await;
    let mut guarded = worker_at(&extra).await;
    for (worker, code) in [(&mut open, None), (&mut guarded, Some("FORBIDDEN"))] {
        let id = worker.call("engine::functions::list", json!({})).await;
        let answer = worker.recv().await;
        assert_eq!(answer["invocation_id"], id.as_str());
        assert_eq!(answer["error"]["code"].as_str(), code, "{answer}");
    }
    drop((open, guarded));
    let stderr = stop(engine);
    assert!(
        stderr.contains("entry `iii-stream` is not served"),
        "{stderr}"
    );

    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "workers:\n  - name: iii-worker-manager\n    config:\n      rbac: { auth: x }\n",
    )
    .expect("config written");
    let (started, _, stderr) = run_to_exit(&["--config", &broken.to_string_lossy()]);
    assert!(!started);
    assert!(
        stderr.contains("line 2: entry `iii-worker-manager`") && stderr.contains("auth"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
