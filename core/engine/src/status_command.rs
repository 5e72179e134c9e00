//! `iii status`: a running engine's workers and open channels as tables (or its JSON), once
//! or refreshed until interrupted (`--watch`). What it reads and how it lays it out is in
//! [`iii_engine::inspect`]; this is the command around it.

use std::process::ExitCode;
use std::time::Duration;

/// The options of `iii status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The engine's worker port (`http://`, or the `ws://` URL workers use).
    #[arg(long, env = "III_URL", default_value = "http://127.0.0.1:49134")]
    url: String,
    /// Refresh every SECONDS (2 when no number is given) until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2",
          value_parser = seconds)]
    watch: Option<f64>,
    /// Print the engine's JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// A refresh period: a number of seconds from 0.1 to an hour.
fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text} is not a number"))?;
    if value.is_finite() && (0.1..=3600.0).contains(&value) {
        Ok(value)
    } else {
        Err("give a number of seconds from 0.1 to 3600".into())
    }
}

/// Runs `iii status`.
pub fn run(args: &StatusArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("iii status: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            let shown = tokio::select! {
                shown = show(args) => shown,
                // Interrupted while it asks: nothing was shown (a watch ends as usual).
                _ = &mut interrupted => return match args.watch {
                    Some(_) => ExitCode::SUCCESS,
                    None => ExitCode::from(130),
                },
            };
            let Some(every) = args.watch else {
                return match shown {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("iii status: {error}");
                        ExitCode::FAILURE
                    }
                };
            };
            // Clear the screen, then print the fresh tables (or why there are none).
            print!("\x1b[2J\x1b[H");
            match shown {
                Ok(text) => print!("{text}"),
                Err(error) => println!("iii status: {error} (retrying)"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(every)) => {}
                _ = &mut interrupted => return ExitCode::SUCCESS,
            }
        }
    })
}

/// What one look at the engine prints.
async fn show(args: &StatusArgs) -> Result<String, String> {
    let status = iii_engine::inspect::fetch(&args.url).await?;
    Ok(if args.json {
        format!("{status:#}\n")
    } else {
        iii_engine::inspect::render(&status)
    })
}
