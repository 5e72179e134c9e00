//! Serving a file from a directory as an HTTP response, safely: the one thing a download
//! handler usually gets wrong is the file name, which comes from the request. Here it must be
//! one plain name, the file must resolve inside the directory, and what the client is told
//! never includes a server path.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::HttpResponse;
use crate::IIIError;

/// Bytes read from the file per step (written on in frames of at most 64 KiB).
const READ_BYTES: usize = 1024 * 1024;

/// Why a file is not served.
enum Refusal {
    /// 400: the name is not one plain file name.
    BadName,
    /// 404: no such file in the directory (or it is no regular file, or lies outside).
    NotFound,
}

impl HttpResponse {
    /// Sends the file `name` from `directory` as the whole response and ends it: 200 with the
    /// file's bytes (`content-type` from the name's extension, `application/octet-stream` when
    /// unknown, and `content-length`). `name` must be one plain file name — not empty, `.`
    /// or `..`, without `/`, `\` or NUL — else the client gets 400; a name with no regular
    /// file behind it inside `directory` (a symbolic link that leads out of it counts as
    /// none) gets 404. Hidden files (names starting with `.`) are served like any other: keep
    /// secrets out of `directory`. Error bodies are short plain texts that name no server path; an I/O
    /// failure part-way aborts the response and is returned.
    pub async fn send_file(&self, directory: impl AsRef<Path>, name: &str) -> Result<(), IIIError> {
        let directory = directory.as_ref().to_path_buf();
        let opened = {
            let name = name.to_string();
            blocking(move || open_inside(&directory, &name)).await??
        };
        let (file, length) = match opened {
            Ok(found) => found,
            Err(Refusal::BadName) => return self.plain(400, "bad file name\n").await,
            Err(Refusal::NotFound) => return self.plain(404, "not found\n").await,
        };
        self.status(200).await?;
        let length_text = length.to_string();
        self.headers([
            ("content-type", content_type(name)),
            ("content-length", &length_text),
        ])
        .await?;
        // Exactly the announced length: a file that grows meanwhile is not followed.
        let mut file = Some(file.take(length));
        loop {
            let Some(mut open) = file.take() else { break };
            let (open, piece) = blocking(move || {
                let mut piece = Vec::with_capacity(READ_BYTES);
                let read = (&mut open).take(READ_BYTES as u64).read_to_end(&mut piece);
                (open, read.map(|_| piece))
            })
            .await?;
            let piece = match piece {
                Ok(piece) => piece,
                Err(error) => {
                    let error =
                        IIIError::Handler(format!("reading a file to send failed: {error}"));
                    let _ = self.abort(&error.to_string()).await;
                    return Err(error);
                }
            };
            if piece.is_empty() {
                break;
            }
            self.write_bytes(Bytes::from(piece)).await?;
            file = Some(open);
        }
        self.close().await
    }

    /// A short plain-text response with `status`.
    async fn plain(&self, status: u16, text: &str) -> Result<(), IIIError> {
        self.status(status).await?;
        self.headers([("content-type", "text/plain; charset=utf-8")])
            .await?;
        self.write(text.as_bytes()).await?;
        self.close().await
    }
}

/// Runs file-system work on the SDK runtime's blocking threads (so `send_file` works from any
/// executor, and never blocks one).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IIIError> {
    crate::runtime::home()
        .spawn_blocking(work)
        .await
        .map_err(|error| IIIError::Handler(format!("file task failed: {error}")))
}

/// The file `name` in `directory`, opened, with its length.
fn open_inside(
    directory: &Path,
    name: &str,
) -> Result<Result<(std::fs::File, u64), Refusal>, IIIError> {
    if !iii_protocol::http::is_plain_segment(name) {
        return Ok(Err(Refusal::BadName));
    }
    let Ok(root) = directory.canonicalize() else {
        tracing::warn!(directory = %directory.display(), "send_file: the directory cannot be read");
        return Ok(Err(Refusal::NotFound));
    };
    let Ok(path) = root.join(name).canonicalize() else {
        return Ok(Err(Refusal::NotFound));
    };
    if !path.starts_with(&root) {
        return Ok(Err(Refusal::NotFound));
    }
    // Only a regular file is opened (opening a FIFO would block); the opened file is checked
    // again below, in case the entry changed in between.
    if !std::fs::metadata(&path).is_ok_and(|metadata| metadata.is_file()) {
        return Ok(Err(Refusal::NotFound));
    }
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(Refusal::NotFound));
        }
        Err(error) => {
            return Err(IIIError::Handler(format!(
                "cannot open a file to send: {error}"
            )));
        }
    };
    match file.metadata() {
        Ok(metadata) if metadata.is_file() => Ok(Ok((file, metadata.len()))),
        Ok(_) => Ok(Err(Refusal::NotFound)),
        Err(error) => Err(IIIError::Handler(format!(
            "cannot read a file to send: {error}"
        ))),
    }
}

/// The `content-type` of a file, from its extension.
fn content_type(name: &str) -> &'static str {
    let extension = PathBuf::from(name)
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("pdf") => "application/pdf",
        Some("json") => "application/json",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}
