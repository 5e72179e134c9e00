//! The channel guide's (docs/ARCHITECTURE.md, Examples) file-download example in Rust: `files::download` answers
//! `GET /files/:filename` by streaming the file from a directory to the HTTP client
//! ([`HttpResponse::send_file`]: a piece at a time, never the whole file in memory).
//!
//! Run it against a running engine (default `ws://localhost:49134`; set `III_URL` otherwise),
//! serving the files of `III_FILES_DIR` (default `/data/reports`):
//!
//! ```sh
//! cargo run -p iii-engine --bin iii &
//! III_FILES_DIR=/tmp/reports cargo run -p iii-sdk --example download
//! curl -O http://localhost:3111/files/quarterly-report.pdf
//! ```
//!
//! It prints `download worker ready: …` once the engine has its route, and serves until
//! Ctrl-C. A missing file is answered with 404; a read error part-way aborts the response, so
//! the client sees a truncated download rather than a short file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use iii_sdk::{
    HttpRequest, HttpResponse, III, IIIError, RegisterFunction, RegisterTrigger, http,
    register_worker,
};
/// Registers `files::download` and its route, serving the files of `files_dir`.
pub fn register_download(iii: &III, files_dir: PathBuf) -> Result<(), IIIError> {
    let files_dir = Arc::new(files_dir);
    iii.register_function(RegisterFunction::new_async(
        "files::download",
        http(move |req: HttpRequest, res: HttpResponse| {
            let files_dir = files_dir.clone();
            async move { download(&files_dir, req, res).await }
        }),
    ));
    iii.register_trigger(RegisterTrigger::http(
        "files::download",
        "/files/:filename",
        "GET",
    ))?;
    Ok(())
}

async fn download(files_dir: &Path, req: HttpRequest, res: HttpResponse) -> Result<(), IIIError> {
    // `send_file` takes one plain file name from this directory (else 400), answers 404 when
    // there is no such file, and streams it with its content type and length.
    let filename = req.path_param("filename").unwrap_or_default();
    res.send_file(files_dir, filename).await
}

#[cfg_attr(test, allow(dead_code))] // the tests may include this file as a module
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("III_URL").unwrap_or_else(|_| "ws://localhost:49134".into());
    let files_dir = std::env::var("III_FILES_DIR").unwrap_or_else(|_| "/data/reports".into());
    let iii = register_worker(&url);
    register_download(&iii, PathBuf::from(files_dir))?;
    iii.ready().await?;
    println!("download worker ready: GET http://localhost:3111/files/:filename");
    tokio::signal::ctrl_c().await?;
    iii.shutdown();
    Ok(())
}
