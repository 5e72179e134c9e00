//! The channel guide's (docs/ARCHITECTURE.md, Examples) file-download example in Rust: `files::download` answers
//! `GET /files/:filename` by streaming the file from a directory to the HTTP client in 64 KiB
//! pieces, never holding the whole file in memory.
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
use tokio::io::AsyncReadExt;

/// How much of the file is read and sent at a time (one channel frame).
const PIECE_BYTES: usize = 64 * 1024;

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
    let filename = req.path_param("filename").unwrap_or_default();
    // One plain file name: nothing that could leave the directory.
    let is_plain = Path::new(filename)
        .file_name()
        .and_then(|name| name.to_str())
        == Some(filename)
        && filename != "..";
    if !is_plain {
        return plain_text(&res, 400, "bad file name\n").await;
    }
    let mut file = match tokio::fs::File::open(files_dir.join(filename)).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return plain_text(&res, 404, "file not found\n").await;
        }
        Err(error) => {
            return Err(IIIError::Handler(format!(
                "cannot open {filename}: {error}"
            )));
        }
    };

    res.status(200).await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        filename.replace('\\', "\\\\").replace('"', "\\\"")
    );
    res.headers([
        ("content-type", "application/octet-stream"),
        ("content-disposition", disposition.as_str()),
    ])
    .await?;

    let mut piece = vec![0; PIECE_BYTES];
    loop {
        let read = file
            .read(&mut piece)
            .await
            .map_err(|error| IIIError::Handler(format!("cannot read {filename}: {error}")))?;
        if read == 0 {
            break;
        }
        res.write(&piece[..read]).await?;
    }
    res.close().await
}

async fn plain_text(res: &HttpResponse, status: u16, text: &str) -> Result<(), IIIError> {
    res.status(status).await?;
    res.headers([("content-type", "text/plain; charset=utf-8")])
        .await?;
    res.write(text.as_bytes()).await?;
    res.close().await
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
