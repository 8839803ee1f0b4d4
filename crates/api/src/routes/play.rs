//! The web scene player at `/play` (public): the page, its scripts and styles, and the
//! vendored build of `@pixsim/client` (`clients/player/`, embedded in the binary, so the
//! server needs no Node and no network to serve it). Every answer carries the player's
//! own strict Content Security Policy: no inline script or style, everything from this
//! origin, `blob:` for media fetched with the player's token (the asset API), and
//! `connect-src` this origin (REST, WebSocket) plus the published WebTransport origin.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::routes::game_webtransport::{request_host, url_host};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(file))
        .routes(routes!(vendor_file))
        .routes(routes!(vendor_nested_file))
}

/// One embedded file of the player.
macro_rules! player_file {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../clients/player/",
                $path
            )) as &[u8],
        )
    };
}

/// The page.
const INDEX: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../clients/player/index.html"
));

/// Every other file of `clients/player/`, by its path under it (a unit test checks the
/// list against the directory).
const FILES: &[(&str, &[u8])] = &[
    player_file!("player.js"),
    player_file!("player.css"),
    player_file!("account.js"),
    player_file!("stage.js"),
    player_file!("choices.js"),
    player_file!("reflex.js"),
    player_file!("panel.js"),
    player_file!("dom.js"),
    player_file!("vendor/index.js"),
    player_file!("vendor/protocol.js"),
    player_file!("vendor/schema.js"),
    player_file!("vendor/types.js"),
    player_file!("vendor/client/connection.js"),
    player_file!("vendor/client/rest.js"),
    player_file!("vendor/client/session.js"),
    player_file!("vendor/client/state.js"),
    player_file!("vendor/client/transport.js"),
    player_file!("vendor/codec/binary.js"),
    player_file!("vendor/codec/framing.js"),
    player_file!("vendor/codec/json.js"),
    player_file!("vendor/codec/postcard.js"),
    player_file!("vendor/codec/schema.js"),
];

/// The content type of a player file by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The player's Content Security Policy; `webtransport` is the origin of the published
/// WebTransport endpoint, when there is one.
pub fn player_csp(webtransport: Option<&str>) -> String {
    let connect = match webtransport {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
         media-src 'self' blob:; connect-src {connect}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// The WebTransport origin `GET /api/v1/game/webtransport` publishes to this request.
fn webtransport_origin(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let dir = s.webtransport.as_ref()?;
    let host = match &dir.public_host {
        Some(h) => h.clone(),
        None => request_host(headers),
    };
    Some(format!("https://{}:{}", url_host(&host), dir.port))
}

/// A player file with its content type and the player's policy.
fn serve(s: &AppState, headers: &HeaderMap, path: &str, body: &'static [u8]) -> Response {
    let csp = player_csp(webtransport_origin(s, headers).as_deref());
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    match HeaderValue::from_str(&csp) {
        Ok(v) => {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        // A host that cannot go in a header (it came in one, so this does not happen):
        // the strictest policy rather than none.
        Err(_) => {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            );
        }
    }
    res
}

fn lookup(s: &AppState, headers: &HeaderMap, path: &str) -> Response {
    match FILES.iter().find(|(p, _)| *p == path) {
        Some((p, body)) => serve(s, headers, p, body),
        None => ApiError::NotFound(format!("the player has no file '{path}'")).into_response(),
    }
}

/// The web scene player: sign in, pick a story or resume a session, watch and play it.
#[utoipa::path(get, path = "/play", tag = "play",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    serve(&s, &headers, "index.html", INDEX)
}

/// A script or stylesheet of the player (`/play/player.js`).
#[utoipa::path(get, path = "/play/{file}", tag = "play",
    params(("file" = String, Path, description = "the file, e.g. `player.js`")),
    responses(
        (status = 200, description = "the file", content((String = "text/javascript"), (String = "text/css"))),
        (status = 404, description = "no such file", body = ErrorBody)))]
async fn file(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(file): ApiPath<String>,
) -> Response {
    lookup(&s, &headers, &file)
}

/// A module of the vendored `@pixsim/client` build (`/play/vendor/index.js`).
#[utoipa::path(get, path = "/play/vendor/{file}", tag = "play",
    params(("file" = String, Path, description = "the module, e.g. `index.js`")),
    responses(
        (status = 200, description = "the module", content_type = "text/javascript"),
        (status = 404, description = "no such file", body = ErrorBody)))]
async fn vendor_file(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath(file): ApiPath<String>,
) -> Response {
    lookup(&s, &headers, &format!("vendor/{file}"))
}

/// A module in a folder of the vendored `@pixsim/client` build
/// (`/play/vendor/client/session.js`).
#[utoipa::path(get, path = "/play/vendor/{dir}/{file}", tag = "play",
    params(("dir" = String, Path, description = "the folder, e.g. `client`"),
        ("file" = String, Path, description = "the module, e.g. `session.js`")),
    responses(
        (status = 200, description = "the module", content_type = "text/javascript"),
        (status = 404, description = "no such file", body = ErrorBody)))]
async fn vendor_nested_file(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiPath((dir, file)): ApiPath<(String, String)>,
) -> Response {
    lookup(&s, &headers, &format!("vendor/{dir}/{file}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            let path = format!("{prefix}{name}");
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{path}/"), out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_file_of_the_player_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/player");
        let mut on_disk = Vec::new();
        walk(&dir, "", &mut on_disk);
        on_disk.retain(|p| p != "index.html");
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
        for (p, _) in FILES {
            assert_ne!(content_type(p), "application/octet-stream", "{p}");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(INDEX).unwrap();
        assert!(!html.contains("<style"), "an inline style element");
        assert!(!html.contains(" style="), "an inline style attribute");
        let mut rest = html;
        while let Some(at) = rest.find("<script") {
            let tag = &rest[at..at + rest[at..].find('>').unwrap()];
            assert!(tag.contains(" src=\"/play/"), "an inline script: {tag}");
            rest = &rest[at + tag.len()..];
        }
        for handler in [" onclick=", " onload=", " onkeydown=", " onsubmit="] {
            assert!(!html.contains(handler), "{handler}");
        }
    }

    #[test]
    fn the_policy_is_strict() {
        let csp = player_csp(Some("https://127.0.0.1:4434"));
        assert!(csp.starts_with("default-src 'none';"));
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("style-src 'self';"));
        assert!(csp.contains("connect-src 'self' https://127.0.0.1:4434;"));
        assert!(!csp.contains("unsafe"));
        assert!(player_csp(None).contains("connect-src 'self';"));
    }
}
