//! TLS against plain, in one run: relay throughput (writer process → engine → reader
//! process, as `throughput`) and serial channel setups (as `setups`), on a plain engine and
//! a `wss://` one (a certificate from scripts/make-test-certs.sh), alternating round by round
//! so both see the same machine. The clients trust the test CA through `III_CA_FILE`: the
//! benchmark re-runs itself with it set, so every child process inherits it.

use std::path::PathBuf;

use crate::procs::EngineProc;
use crate::{MIB, Row, median, setups};

const ROUNDS: usize = 3;

/// Where the certificates of this run are, once the benchmark runs with them.
const DIR_ENV: &str = "III_BENCH_TLS_DIR";

/// Runs the comparison; its rows for the summary table.
pub async fn report(bytes: u64, count: usize) -> Result<Vec<Row>, String> {
    let Some(dir) = std::env::var_os(DIR_ENV).map(PathBuf::from) else {
        return rerun_with_certificates().await;
    };
    let tls_args = ["--tls-dir".to_string(), dir.display().to_string()];
    let (mut relays, mut setup_rates) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 1..=ROUNDS {
        for (kind, extra) in [("plain", &[][..]), ("tls", &tls_args[..])] {
            let at = usize::from(kind == "tls");
            let engine = EngineProc::start_with(60, extra).await?;
            let (relay, rate) = setups::relay_and_setups(&engine, kind, bytes, count).await?;
            println!(
                "round {round} {kind:>5} ({}): relay {relay:.0} MB/s ({:.0} MiB), setups {rate:.0}/s serial",
                engine.url,
                bytes as f64 / MIB
            );
            relays[at].push(relay);
            setup_rates[at].push(rate);
        }
    }
    let [plain_relay, tls_relay] = relays.map(median);
    let [plain_setups, tls_setups] = setup_rates.map(median);
    println!(
        "medians: relay {plain_relay:.0} MB/s plain, {tls_relay:.0} MB/s TLS ({:.2} ×); \
         setups {plain_setups:.0}/s plain, {tls_setups:.0}/s TLS ({:.2} ×)",
        tls_relay / plain_relay,
        tls_setups / plain_setups
    );
    Ok(vec![
        (
            "relay over TLS (wss://), against plain".into(),
            format!(
                "{tls_relay:.0} vs {plain_relay:.0} MB/s ({:.2} ×)",
                tls_relay / plain_relay
            ),
            "—".into(),
        ),
        (
            "channel setups over TLS, serial, against plain".into(),
            format!(
                "{tls_setups:.0} vs {plain_setups:.0}/s ({:.2} ×)",
                tls_setups / plain_setups
            ),
            "—".into(),
        ),
    ])
}

/// Makes a test CA and certificate, then runs this benchmark again with `III_CA_FILE` and
/// the directory set, its output passed through.
async fn rerun_with_certificates() -> Result<Vec<Row>, String> {
    let dir = std::env::temp_dir().join(format!("iii-bench-tls-{}", std::process::id()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-certs.sh");
    let made = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .status()
        .await
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !made.success() {
        return Err("scripts/make-test-certs.sh failed (it needs openssl)".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = tokio::process::Command::new(exe)
        .args(std::env::args().skip(1))
        .env("III_CA_FILE", dir.join("ca.pem"))
        .env(DIR_ENV, &dir)
        .status()
        .await
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if status.success() {
        Ok(Vec::new())
    } else {
        Err(format!("the TLS benchmark failed ({status})"))
    }
}
