//! A tiny HTTP/1.1 site for the browser tests of the TypeScript client: it serves the
//! files of a directory (GET, `Connection: close`) and forwards every `/api/` request,
//! WebSocket upgrades included, byte for byte to the game server, so that a page loaded
//! from it talks to the server on its own origin (the server sends no CORS headers, as
//! a same-origin deployment behind a reverse proxy needs none).

use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The site, on 127.0.0.1 at a free port; stops when dropped.
pub(crate) struct StaticSite {
    pub(crate) origin: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StaticSite {
    /// Serves `root`, forwarding `/api/` to `upstream` (`host:port`).
    pub(crate) async fn start(root: PathBuf, upstream: String) -> StaticSite {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (root, upstream) = (root.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &root, &upstream).await;
                });
            }
        });
        StaticSite { origin, task }
    }
}

async fn serve(mut conn: TcpStream, root: &Path, upstream: &str) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut parts = text.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if target.starts_with("/api/") {
        // The request as it came (and whatever followed it), then both ways.
        let mut up = TcpStream::connect(upstream).await?;
        up.write_all(&head).await?;
        tokio::io::copy_bidirectional(&mut conn, &mut up).await?;
        return Ok(());
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    let file = (method == "GET" && rel.components().all(|c| matches!(c, Component::Normal(_))))
        .then(|| root.join(rel))
        .filter(|p| p.is_file());
    let (status, kind, body) = match file {
        Some(p) => (
            "200 OK",
            content_type(&p),
            tokio::fs::read(&p).await.unwrap_or_default(),
        ),
        None => ("404 Not Found", "text/plain", b"not found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(&body).await?;
    conn.shutdown().await
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "css" => "text/css",
        _ => "application/octet-stream",
    }
}
