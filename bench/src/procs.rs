//! Child processes of the benchmark: the engine, the plain-WebSocket sink and the SDK
//! workers each run as a separate process (this same binary, re-executed with a hidden
//! subcommand), so every figure includes real sockets between real processes and the
//! engine's RSS can be read on its own.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A running child process and the lines it prints.
pub struct ChildProc {
    /// The child itself (killed on drop).
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildProc {
    /// Starts this executable with `args`.
    pub fn spawn(args: &[String]) -> Result<Self, String> {
        Self::spawn_with_stdin(args, Stdio::null())
    }

    /// Starts this executable with `args` and `stdin`.
    pub fn spawn_with_stdin(args: &[String], stdin: Stdio) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .stdin(stdin)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {args:?}: {e}"))?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line the child prints, waiting at most `limit`.
    pub async fn line(&mut self, limit: Duration) -> Result<String, String> {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => Err("child exited before printing".into()),
            Ok(Err(e)) => Err(format!("reading child output: {e}")),
            Err(_) => Err("child printed nothing in time".into()),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// One field of `/proc/<pid>/status` given in kB, in bytes: `VmRSS` (all resident memory) or
/// `RssAnon` (resident heap and stacks, without the executable's own pages).
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The engine in its own process.
pub struct EngineProc {
    proc: ChildProc,
    /// The engine's WebSocket URL.
    pub url: String,
    /// The address of its HTTP trigger server.
    pub http_addr: String,
}

impl EngineProc {
    /// Starts an engine on a free port, with finished channels forgotten after
    /// `tombstone_secs`.
    pub async fn start(tombstone_secs: u64) -> Result<Self, String> {
        Self::start_with(tombstone_secs, &[]).await
    }

    /// [`start`](Self::start) with more `engine-proc` arguments (e.g. `--tls-dir`).
    pub async fn start_with(tombstone_secs: u64, extra: &[String]) -> Result<Self, String> {
        let mut args = vec![
            "engine-proc".into(),
            "--tombstone-ttl-secs".into(),
            tombstone_secs.to_string(),
        ];
        args.extend_from_slice(extra);
        let mut proc = ChildProc::spawn(&args)?;
        let line = proc.line(Duration::from_secs(30)).await?;
        let mut fields = line
            .strip_prefix("READY ")
            .ok_or_else(|| format!("unexpected engine output: {line}"))?
            .split_whitespace()
            .map(str::to_string);
        let url = fields.next().ok_or("engine printed no URL")?;
        let http_addr = fields.next().unwrap_or_default();
        Ok(Self {
            proc,
            url,
            http_addr,
        })
    }

    /// The engine's resident memory in bytes.
    pub fn rss(&self) -> Rss {
        let read = |field| {
            self.proc
                .pid()
                .and_then(|pid| status_bytes(pid, field))
                .unwrap_or(0)
        };
        Rss {
            total: read("VmRSS"),
            anon: read("RssAnon"),
        }
    }
}

impl EngineProc {
    /// Runs `work` to its end, sampling the engine's RSS every `every`; its output and the
    /// highest RSS seen (from `from` on).
    pub async fn peak_during<T>(
        &self,
        from: Rss,
        every: Duration,
        work: impl std::future::Future<Output = T>,
    ) -> (T, Rss) {
        tokio::pin!(work);
        let mut peak = from;
        loop {
            tokio::select! {
                done = &mut work => return (done, peak),
                _ = tokio::time::sleep(every) => peak = peak.max(self.rss()),
            }
        }
    }

    /// The engine process's id.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// CPU seconds (user + system) the engine has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.proc
            .pid()
            .map_or(0.0, |pid| cpu_seconds(&pid.to_string()))
    }
}

/// CPU seconds (user + system) process `pid` (or `self`) has used, from `/proc/<pid>/stat`
/// (clock ticks of 1/100 s, Linux's fixed `USER_HZ`).
pub fn cpu_seconds(pid: &str) -> f64 {
    let ticks = (|| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let user: u64 = fields.get(11)?.parse().ok()?;
        let system: u64 = fields.get(12)?.parse().ok()?;
        Some(user + system)
    })();
    ticks.unwrap_or(0) as f64 / 100.0
}

/// CPU seconds this process has used.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds("self")
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    /// All resident pages (`VmRSS`), including the executable's code as it is paged in.
    pub total: u64,
    /// Anonymous resident pages (`RssAnon`): heap, stacks — what the process holds.
    pub anon: u64,
}

impl Rss {
    /// The larger of each field.
    pub fn max(self, other: Rss) -> Rss {
        Rss {
            total: self.total.max(other.total),
            anon: self.anon.max(other.anon),
        }
    }
}
