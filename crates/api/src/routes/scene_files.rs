//! The content's own media files (`GET /assets/{path}`): what a scene names as
//! `asset = "assets/door.mp4"` reaches a client as the URL `/assets/door.mp4`
//! (`game::events::media_into_wire`). Public like the scene list's content, served from
//! the content's assets directory (`content.assets_dir`) with Range support and a
//! content type by extension; nothing outside that directory is reachable.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    // The documented route takes one segment; the undocumented twin takes the deeper
    // paths (`/assets/doors/red.mp4`) with the same handler.
    OpenApiRouter::new()
        .routes(routes!(scene_file))
        .route("/assets/{dir}/{*rest}", get(nested_scene_file))
}

/// A media file of the content (a scene's `asset`), by its path under the content's
/// assets directory; the path may have several segments (`/assets/doors/red.mp4`).
#[utoipa::path(get, path = "/assets/{path}", tag = "game",
    params(("path" = String, Path, description = "the file's path under the assets directory, e.g. `vault_door.mp4`")),
    responses(
        (status = 200, description = "the file, its content type by extension", content((String = "video/mp4"), (String = "image/png"), (String = "image/jpeg"), (String = "audio/mpeg"), (String = "application/octet-stream"))),
        (status = 206, description = "the requested range"),
        (status = 404, description = "no such file", body = ErrorBody)))]
async fn scene_file(
    State(s): State<AppState>,
    ApiPath(path): ApiPath<String>,
    req: Request,
) -> Response {
    serve(&s.assets_dir, &path, req).await
}

async fn nested_scene_file(
    State(s): State<AppState>,
    axum::extract::Path((dir, rest)): axum::extract::Path<(String, String)>,
    req: Request,
) -> Response {
    serve(&s.assets_dir, &format!("{dir}/{rest}"), req).await
}

async fn serve(dir: &Path, path: &str, req: Request) -> Response {
    let not_found = || ApiError::NotFound(format!("no asset file '{path}'")).into_response();
    let Some(file) = resolve(dir, path).await else {
        return not_found();
    };
    // Only the conditional and range headers matter to the file service.
    let (parts, _) = req.into_parts();
    let req = Request::from_parts(parts, Body::empty());
    let res = match ServeFile::new(&file).oneshot(req).await {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    };
    if res.status() == StatusCode::NOT_FOUND {
        return not_found();
    }
    res
}

/// The file `path` names under `dir`: plain segments only (no `..`, `.`, empty or
/// hidden ones, no backslash), and, symbolic links resolved, still inside `dir`.
async fn resolve(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for seg in path.split('/') {
        if seg.is_empty() || seg.starts_with('.') || seg.contains(['\\', '\0']) {
            return None;
        }
        rel.push(seg);
    }
    let root = tokio::fs::canonicalize(dir).await.ok()?;
    let file = tokio::fs::canonicalize(root.join(rel)).await.ok()?;
    let meta = tokio::fs::metadata(&file).await.ok()?;
    (file.starts_with(&root) && meta.is_file()).then_some(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn only_plain_paths_inside_the_directory_resolve() {
        let dir = std::env::temp_dir().join(format!("pixsim-scene-files-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a.png"), b"x").unwrap();
        std::fs::write(dir.join(".hidden"), b"x").unwrap();
        assert!(resolve(&dir, "sub/a.png").await.is_some());
        for bad in [
            "../a.png",
            "sub/../sub/a.png",
            "./sub/a.png",
            ".hidden",
            "sub//a.png",
            "sub\\a.png",
            "sub",
            "nope.png",
            "",
        ] {
            assert!(resolve(&dir, bad).await.is_none(), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
