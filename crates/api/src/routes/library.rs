//! The asset library: version families, clips and keyframes cut by the local encoder,
//! variants made on demand and cached, and branch points in a video (issue #23).
//!
//! Reads follow the asset's visibility (another user's asset answers 404); changes need
//! the asset to be the caller's (a content asset: admins only, else 403).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use generation::model::Asset;
use generation::service::library::{
    AssetVersions, Branch, Clip, NewBranch, NewClipRequest, NewKeyframe, NewVersion, Variant,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::assets::{actor, serve};
use crate::error::{ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::extract::Auth;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(versions, add_version))
        .routes(routes!(clips, create_clip))
        .routes(routes!(create_keyframe))
        .routes(routes!(variants))
        .routes(routes!(variant_file))
        .routes(routes!(branches, create_branch))
        .routes(routes!(delete_branch))
}

/// The asset's version family, by version number (just the asset when it has no other
/// versions).
#[utoipa::path(get, path = "/api/v1/assets/{id}/versions", operation_id = "list_asset_versions", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AssetVersions),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn versions(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<AssetVersions>> {
    Ok(ApiJson(s.generation.versions(actor(&p), id).await?))
}

/// Makes another of the caller's assets (of the same media type, in no family yet) the
/// next version of this one: it gets the family's next number, this asset as its parent
/// and a `version` lineage edge. The family starts with this asset as version 1.
#[utoipa::path(post, path = "/api/v1/assets/{id}/versions", operation_id = "add_asset_version", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    request_body = NewVersion,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the new version", body = Asset),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not the caller's asset", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the asset is already a version", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "itself, another media type or owner", body = ErrorBody)))]
async fn add_version(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewVersion>,
) -> ApiResult<(StatusCode, ApiJson<Asset>)> {
    let v = s.generation.add_version(actor(&p), id, &req).await?;
    Ok((StatusCode::CREATED, ApiJson(v)))
}

/// The clips cut from this video, by start time.
#[utoipa::path(get, path = "/api/v1/assets/{id}/clips", operation_id = "list_asset_clips", tag = "assets",
    params(("id" = Uuid, Path, description = "the source video's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Clip>),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn clips(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Vec<Clip>>> {
    Ok(ApiJson(s.generation.clips(actor(&p), id).await?))
}

/// Cuts `[start_ms, end_ms)` of the video into its own playable asset (H.264 MP4,
/// re-encoded by the local encoder so it starts on the requested frame). The clip's
/// asset has the video as parent and a `clip` lineage edge with the time and frame
/// range; scenes name it with `clip = "<id>"`.
#[utoipa::path(post, path = "/api/v1/assets/{id}/clips", operation_id = "create_asset_clip", tag = "assets",
    params(("id" = Uuid, Path, description = "the source video's id")),
    request_body = NewClipRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Clip),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not the caller's asset", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the file is still at the provider", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "not a video, or the range is outside it", body = ErrorBody)))]
async fn create_clip(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewClipRequest>,
) -> ApiResult<(StatusCode, ApiJson<Clip>)> {
    let clip = s.generation.create_clip(actor(&p), id, &req).await?;
    Ok((StatusCode::CREATED, ApiJson(clip)))
}

/// Takes the frame at `at_ms` of the video as a new image asset (a full-size PNG), joined
/// to the video by a `keyframe` lineage edge with its time and frame number.
#[utoipa::path(post, path = "/api/v1/assets/{id}/keyframes", operation_id = "create_asset_keyframe", tag = "assets",
    params(("id" = Uuid, Path, description = "the source video's id")),
    request_body = NewKeyframe,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the still", body = Asset),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not the caller's asset", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the file is still at the provider", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "not a video, or the time is outside it", body = ErrorBody)))]
async fn create_keyframe(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewKeyframe>,
) -> ApiResult<(StatusCode, ApiJson<Asset>)> {
    let still = s.generation.create_keyframe(actor(&p), id, &req).await?;
    Ok((StatusCode::CREATED, ApiJson(still)))
}

/// The renditions this asset can have (`360p`, `720p`, `poster`; none for audio), and
/// which are made already. A rendition is made on its first `GET` and cached.
#[utoipa::path(get, path = "/api/v1/assets/{id}/variants", operation_id = "list_asset_variants", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Variant>),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn variants(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Vec<Variant>>> {
    Ok(ApiJson(s.generation.variants(actor(&p), id).await?))
}

/// A rendition's bytes (Range and conditional requests as for the file): `360p` and
/// `720p` scale down to at most that many lines (H.264 MP4 for a video, PNG for an
/// image; never enlarged), `poster` is a full-size PNG frame. Made on the first request
/// (one encoder run however many ask at once) and cached.
#[utoipa::path(get, path = "/api/v1/assets/{id}/variants/{name}", operation_id = "get_asset_variant", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id"),
        ("name" = String, Path, description = "`360p`, `720p` or `poster`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the rendition", content((String = "video/mp4"), (String = "image/png"))),
        (status = 206, description = "the requested range", content((String = "video/mp4"), (String = "image/png"))),
        (status = 304, description = "not modified"),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such asset, or no such variant for its media type", body = ErrorBody),
        (status = 409, description = "the file is still at the provider", body = ErrorBody),
        (status = 412, description = "modified since `If-Unmodified-Since`", body = ErrorBody),
        (status = 416, description = "unsatisfiable range", body = ErrorBody),
        (status = 422, description = "the encoder could not read the asset", body = ErrorBody)))]
async fn variant_file(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath((id, name)): ApiPath<(Uuid, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let f = s.generation.variant_file(actor(&p), id, &name).await?;
    serve(f, &headers).await
}

/// The branch points of this video, by time.
#[utoipa::path(get, path = "/api/v1/assets/{id}/branches", operation_id = "list_asset_branches", tag = "assets",
    params(("id" = Uuid, Path, description = "the video's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Branch>),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn branches(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Vec<Branch>>> {
    Ok(ApiJson(s.generation.branches(actor(&p), id).await?))
}

/// Records a branch point: a time in the video where the story can fork, with 1 to 16
/// variants, each with a key, a weight, an optional condition (scene expression
/// language, checked here) and the video it goes on with. A scene's media node names it
/// with `branch = "<id>"`.
#[utoipa::path(post, path = "/api/v1/assets/{id}/branches", operation_id = "create_asset_branch", tag = "assets",
    params(("id" = Uuid, Path, description = "the video's id")),
    request_body = NewBranch,
    security(("bearer" = [])),
    responses(
        (status = 201, body = Branch),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not the caller's asset", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "a time outside the video, a bad key, weight, condition or asset", body = ErrorBody)))]
async fn create_branch(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewBranch>,
) -> ApiResult<(StatusCode, ApiJson<Branch>)> {
    let b = s.generation.create_branch(actor(&p), id, &req).await?;
    Ok((StatusCode::CREATED, ApiJson(b)))
}

/// Deletes a branch point of this video.
#[utoipa::path(delete, path = "/api/v1/assets/{id}/branches/{branch_id}", operation_id = "delete_asset_branch", tag = "assets",
    params(("id" = Uuid, Path, description = "the video's id"),
        ("branch_id" = Uuid, Path, description = "branch point id")),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 400, description = "malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not the caller's asset", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_branch(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath((id, branch_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    s.generation.delete_branch(actor(&p), id, branch_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
