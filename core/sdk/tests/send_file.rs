//! `HttpResponse::send_file` behind a real engine: a file from the directory with its type and
//! length, 400 for a name that is not one plain file name, 404 for no such file (a directory,
//! or a symbolic link out of the directory, counts as none), and no server path in any body.
//! The name comes from a query parameter here, which the engine does not check as it checks
//! path parameters, so these are the helper's own checks.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::http_client::{get, header, next_chunk};
use common::{engine, ready, within, worker};
use iii_sdk::{HttpRequest, HttpResponse, RegisterFunction, RegisterTrigger, http};

/// A directory served by `files::send`, and a secret next to it (outside).
struct Served {
    root: PathBuf,
    files: PathBuf,
}

fn layout() -> Served {
    let root = std::env::temp_dir().join(format!("iii-send-file-{}", std::process::id()));
    let files = root.join("files");
    std::fs::create_dir_all(files.join("subdir")).expect("dirs");
    std::fs::write(root.join("secret.txt"), b"not for download").expect("secret");
    std::fs::write(
        files.join("report.pdf"),
        common::data(3, 3 * 1024 * 1024 + 5),
    )
    .expect("file");
    std::os::unix::fs::symlink(root.join("secret.txt"), files.join("link.txt")).expect("symlink");
    Served { root, files }
}

/// GET `path`: status, content type and length headers, and the whole body.
async fn fetch(
    addr: std::net::SocketAddr,
    path: &str,
) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let mut response = within(20, get(addr, path)).await;
    let mut body = Vec::new();
    while let Some(chunk) = next_chunk(response.body_mut()).await.expect("body") {
        body.extend_from_slice(&chunk);
    }
    let status = response.status().as_u16();
    let kind = header(&response, "content-type");
    let length = header(&response, "content-length");
    (status, kind, length, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn send_file_serves_only_plain_names_inside_its_directory() {
    let served = layout();
    let engine = engine().await;
    let iii = worker(&engine);
    let files = Arc::new(served.files.clone());
    iii.register_function(RegisterFunction::new_async(
        "files::send",
        http(move |req: HttpRequest, res: HttpResponse| {
            let files = files.clone();
            async move {
                let name = req.query("name").unwrap_or_default().to_string();
                res.send_file(files.as_path(), &name).await
            }
        }),
    ));
    iii.register_trigger(RegisterTrigger::http("files::send", "/get", "GET"))
        .expect("trigger");
    ready(&iii).await;
    let addr = engine.http_addr().expect("http server");

    let expected = std::fs::read(served.files.join("report.pdf")).expect("file");
    let (status, kind, length, body) = fetch(addr, "/get?name=report.pdf").await;
    assert_eq!(status, 200);
    assert_eq!(kind.as_deref(), Some("application/pdf"));
    assert_eq!(length, Some(expected.len().to_string()));
    assert!(body == expected, "the file is byte-exact");

    let root = served.root.display().to_string();
    for (name, want) in [
        ("..%2Fsecret.txt", 400),
        ("..", 400),
        (".", 400),
        ("", 400),
        ("a%5Cb", 400),
        ("%2Fetc%2Fhostname", 400),
        ("subdir%2F..%2Freport.pdf", 400),
        ("missing.pdf", 404),
        ("subdir", 404),
        ("link.txt", 404),
    ] {
        let (status, _, _, body) = fetch(addr, &format!("/get?name={name}")).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, want, "{name}: {text}");
        assert!(
            !text.contains("not for download") && !text.contains(&root),
            "{name}: {text}"
        );
    }
    iii.shutdown();
    let _ = std::fs::remove_dir_all(&served.root);
}
