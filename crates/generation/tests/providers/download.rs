//! The guarded downloader: private destinations, redirects, size caps, content.

use std::sync::Arc;

use generation::download::{DownloadConfig, DownloadError, Downloader};
use generation::guard::{Guard, GuardConfig};

use super::open_guard;

async fn guard_server() -> (generation::fakes::FakeServer, u16) {
    use axum::response::IntoResponse;
    let control = Arc::new(generation::fakes::Control::default());
    let gif = generation::fakes::sample_gif(3);
    let router = axum::Router::new()
        .route(
            "/media",
            axum::routing::get({
                let gif = gif.clone();
                move || async move { gif.clone() }
            }),
        )
        .route(
            "/big",
            axum::routing::get(|| async { vec![0x47u8; 200_000] }),
        )
        .route("/html", axum::routing::get(|| async { "<html></html>" }))
        .route(
            "/redirect",
            axum::routing::get(
                |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    let to = q.unwrap_or_default().trim_start_matches("to=").to_owned();
                    (axum::http::StatusCode::FOUND, [("location", to)]).into_response()
                },
            ),
        );
    let s = generation::fakes::serve(router, control).await.unwrap();
    let port = s.addr.port();
    (s, port)
}

#[tokio::test]
async fn download_guard() {
    let (_server, port) = guard_server().await;
    let strict = Downloader::new(
        DownloadConfig::default(),
        &Guard::new(GuardConfig::default()),
    )
    .unwrap();
    let err = strict
        .fetch(&format!("http://127.0.0.1:{port}/media"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Blocked(_)), "{err:?}");
    assert!(matches!(
        strict.fetch("file:///etc/passwd").await,
        Err(DownloadError::Scheme(_))
    ));
    // One named host allowed (an on-prem CDN); a redirect from it to loopback is refused.
    let named = Downloader::new(
        DownloadConfig {
            max_bytes: 100_000,
            ..Default::default()
        },
        &Guard::new(GuardConfig {
            allow_hosts: vec!["localhost".into()],
            ..Default::default()
        }),
    )
    .unwrap();
    let ok = named
        .fetch(&format!("http://localhost:{port}/media"))
        .await
        .unwrap();
    assert!(ok.bytes.starts_with(b"GIF8"));
    let err = named
        .fetch(&format!(
            "http://localhost:{port}/redirect?to=http://127.0.0.1:{port}/media"
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Blocked(_)), "{err:?}");
    let err = named
        .fetch(&format!("http://localhost:{port}/big"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(_)), "{err:?}");
    let err = named
        .fetch(&format!("http://localhost:{port}/html"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::BadContent), "{err:?}");
    // Allowed when configured.
    let open = Downloader::new(DownloadConfig::default(), &open_guard()).unwrap();
    let ok = open
        .fetch(&format!("http://127.0.0.1:{port}/redirect?to=/media"))
        .await
        .unwrap();
    assert_eq!(ok.kind.mime, "image/gif");
}
