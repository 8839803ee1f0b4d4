//! Assets: list, metadata, file and thumbnail (with HTTP Range), upload, lineage, and
//! the assets most similar to one (pgvector).
//!
//! Users see only their own assets (another user's answer 404, as if absent); admins
//! see all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use auth::Principal;
use axum::body::Body;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use generation::AssetFile;
use generation::model::{Actor, Asset, AssetFilter, AssetLineage, AssetOrigin, MediaType, Page};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody, ErrorDetail};
use crate::extract::Auth;
use crate::state::AppState;

/// Room for the multipart framing (boundaries, part headers, small extra fields) on top
/// of the largest accepted file.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    // The upload enforces its own limit (the pipeline's `max_upload_bytes`) instead of
    // the global 1 MiB JSON limit.
    let upload = OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(search_by_image))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_asset, patch_asset))
        .routes(routes!(file))
        .routes(routes!(thumbnail))
        .routes(routes!(lineage))
        .routes(routes!(similar))
        .routes(routes!(search))
        .merge(upload)
        .merge(super::library::router())
}

/// The pipeline's view of the caller.
pub(crate) fn actor(p: &Principal) -> Actor {
    if p.is_admin() {
        Actor::admin(p.user.id)
    } else {
        Actor::user(p.user.id)
    }
}

/// Asset list filters and pagination.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    /// Admins only: the assets of this user (ignored for users, who see their own).
    pub owner_id: Option<Uuid>,
    pub media_type: Option<MediaType>,
    pub origin: Option<AssetOrigin>,
    pub provider: Option<String>,
    /// Assets made by this generation.
    pub source_generation_id: Option<Uuid>,
    /// sha256 hex of the content.
    pub content_hash: Option<String>,
    /// Comma-separated tags: assets carrying every one.
    pub tags: Option<String>,
    /// `true`: only archived assets; `false` (default): none of them.
    pub archived: Option<bool>,
    /// The versions, clips and keyframes made from this asset.
    pub parent_asset_id: Option<Uuid>,
    /// Where the file is: `remote` (at the provider; an asynchronous provider's job has
    /// its asset from the moment the provider accepts it), `downloading`, `downloaded`
    /// or `error`.
    pub sync_status: Option<generation::model::SyncStatus>,
    /// Items to skip (default 0).
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: u32,
    /// Default 50, at most 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl From<AssetQuery> for AssetFilter {
    fn from(q: AssetQuery) -> Self {
        AssetFilter {
            owner_id: q.owner_id,
            media_type: q.media_type,
            origin: q.origin,
            provider: q.provider,
            source_generation_id: q.source_generation_id,
            content_hash: q.content_hash,
            tags: split_tags(q.tags.as_deref()),
            archived: q.archived,
            parent_asset_id: q.parent_asset_id,
            sync_status: q.sync_status,
            offset: q.offset,
            limit: q.limit,
        }
    }
}

/// Comma-separated tags as a list, lowercased (empty entries left out).
pub(crate) fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or_default()
        .split(',')
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The caller's assets (all for admins), newest first. Archived assets are left out
/// unless `archived=true`.
#[utoipa::path(get, path = "/api/v1/assets", operation_id = "list_assets", tag = "assets",
    params(AssetQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<Asset>),
        (status = 400, description = "malformed query", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AssetQuery>,
) -> ApiResult<ApiJson<Page<Asset>>> {
    let page = s.generation.list_assets(actor(&p), &q.into()).await?;
    Ok(ApiJson(page))
}

/// One asset's metadata.
#[utoipa::path(get, path = "/api/v1/assets/{id}", operation_id = "get_asset", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Asset),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such asset (or not the caller's)", body = ErrorBody)))]
async fn get_asset(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<Asset>> {
    Ok(ApiJson(s.generation.get_asset(actor(&p), id).await?))
}

/// Changes an asset's tags, archives or restores it (the owner's or an admin's), or
/// publishes it to the scene content (admins).
#[utoipa::path(patch, path = "/api/v1/assets/{id}", operation_id = "patch_asset", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    request_body = generation::service::library::AssetPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Asset),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "a content asset, or a publish, by a non-admin", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "a malformed tag, or too many", body = ErrorBody)))]
async fn patch_asset(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<generation::service::library::AssetPatch>,
) -> ApiResult<ApiJson<Asset>> {
    Ok(ApiJson(
        s.generation.patch_asset(actor(&p), id, &patch).await?,
    ))
}

/// The asset's bytes, with its content type. Supports `Range: bytes=…` (one range),
/// `If-Range`, `If-Modified-Since`, `If-Unmodified-Since` and `If-None-Match` (the
/// ETag is the content hash).
#[utoipa::path(get, path = "/api/v1/assets/{id}/file", operation_id = "get_asset_file", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the whole file, with the asset's content type", content((String = "image/png"), (String = "image/jpeg"), (String = "image/gif"), (String = "image/webp"), (String = "video/mp4"), (String = "video/quicktime"), (String = "video/webm"), (String = "audio/wav"), (String = "audio/mp4"), (String = "audio/ogg"), (String = "audio/flac"), (String = "audio/mpeg"), (String = "application/octet-stream"))),
        (status = 206, description = "the requested range, with Content-Range", content((String = "image/png"), (String = "image/jpeg"), (String = "image/gif"), (String = "image/webp"), (String = "video/mp4"), (String = "video/quicktime"), (String = "video/webm"), (String = "audio/wav"), (String = "audio/mp4"), (String = "audio/ogg"), (String = "audio/flac"), (String = "audio/mpeg"), (String = "application/octet-stream"))),
        (status = 304, description = "not modified"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the file is still at the provider (`sync_status` not `downloaded`)", body = ErrorBody),
        (status = 412, description = "modified since `If-Unmodified-Since`", body = ErrorBody),
        (status = 416, description = "unsatisfiable range; Content-Range says the size", body = ErrorBody)))]
async fn file(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let f = s.generation.asset_file(actor(&p), id).await?;
    serve(f, &headers).await
}

/// The asset's thumbnail (Range supported as for the file): a poster frame of a video or
/// the image scaled down, as a PNG at most 320 pixels on a side; a generated video's is
/// the provider's poster (the local provider's: the clip's middle frame, PNG). Every
/// video and image asset has one unless it could not be decoded; audio has none.
#[utoipa::path(get, path = "/api/v1/assets/{id}/thumbnail", operation_id = "get_asset_thumbnail", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "PNG image (a provider's own poster keeps its type)", content_type = "image/png"),
        (status = 206, description = "the requested range", content_type = "image/png"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such asset, or it has no thumbnail", body = ErrorBody),
        (status = 409, description = "the file is still at the provider (`sync_status` not `downloaded`)", body = ErrorBody),
        (status = 304, description = "not modified"),
        (status = 412, description = "modified since `If-Unmodified-Since`", body = ErrorBody),
        (status = 416, description = "unsatisfiable range; Content-Range says the size", body = ErrorBody)))]
async fn thumbnail(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let f = s.generation.asset_thumbnail(actor(&p), id).await?;
    serve(f, &headers).await
}

/// The direct parents and children of an asset (edges to assets the caller cannot see
/// are left out).
#[utoipa::path(get, path = "/api/v1/assets/{id}/lineage", operation_id = "get_asset_lineage", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AssetLineage),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn lineage(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<AssetLineage>> {
    Ok(ApiJson(s.generation.asset_lineage(actor(&p), id).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    /// Results (1–100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The most similar assets, nearest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SimilarPage {
    /// The embedder whose vectors were compared (`visual/1`: the built-in visual one).
    pub embedder: String,
    pub items: Vec<generation::service::SimilarAsset>,
}

/// The assets nearest to this one by its embedding (cosine distance, 0 = the same
/// direction), among those the caller may read, itself left out. Every image and video
/// is embedded in the background moments after it is stored; until then (and for
/// audio, which has none) the answer is 409.
#[utoipa::path(get, path = "/api/v1/assets/{id}/similar", operation_id = "similar_assets", tag = "assets",
    params(("id" = Uuid, Path, description = "asset id"), SimilarQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SimilarPage),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the asset has no embedding (yet)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn similar(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<SimilarQuery>,
) -> ApiResult<ApiJson<SimilarPage>> {
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(
            generation::GenerationError::invalid("limit", "out_of_range", "1 to 100").into(),
        );
    }
    let items = s.generation.similar_assets(actor(&p), id, limit).await?;
    Ok(ApiJson(SimilarPage {
        embedder: s.generation.embedder_id().unwrap_or_default(),
        items,
    }))
}

/// A similarity search: by an asset (its vector) or by a text (where the embedder has
/// a text side), with filters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Search by this asset's vector (it is left out of the answer).
    pub asset_id: Option<Uuid>,
    /// Search by this text (needs an embedder with a text side).
    pub text: Option<String>,
    #[serde(flatten)]
    pub filters: SearchFilters,
}

/// Filters of a similarity search (also the query of `POST …/search/image`).
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchFilters {
    pub media_type: Option<MediaType>,
    /// Created at or after (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Comma-separated tags: assets carrying every one.
    pub tags: Option<String>,
    /// Archived assets too (default false).
    pub include_archived: Option<bool>,
    /// Results (1–100, default 10).
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl SearchFilters {
    fn into_search(
        self,
        by: generation::service::SearchBy,
    ) -> ApiResult<generation::service::AssetSearch> {
        let limit = self.limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(
                generation::GenerationError::invalid("limit", "out_of_range", "1 to 100").into(),
            );
        }
        Ok(generation::service::AssetSearch {
            by,
            media_type: self.media_type,
            created_after: self.created_after,
            created_before: self.created_before,
            tags: split_tags(self.tags.as_deref()),
            include_archived: self.include_archived.unwrap_or(false),
            limit,
        })
    }
}

/// The assets nearest to an asset or a text, among those the caller may read, nearest
/// first (cosine distance). Exactly one of `asset_id` and `text`.
#[utoipa::path(post, path = "/api/v1/assets/search", operation_id = "search_assets", tag = "assets",
    request_body = SearchRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = SimilarPage),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the asset has no embedding (yet)", body = ErrorBody),
        (status = 422, description = "not exactly one of `asset_id` and `text`, a bad filter, or no text embedder", body = ErrorBody)))]
async fn search(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<SearchRequest>,
) -> ApiResult<ApiJson<SimilarPage>> {
    let by = match (req.asset_id, req.text) {
        (Some(id), None) => generation::service::SearchBy::Asset(id),
        (None, Some(t)) if !t.trim().is_empty() && t.len() <= 2048 => {
            generation::service::SearchBy::Text(t)
        }
        _ => {
            return Err(ApiError::validation(
                "give exactly one of `asset_id` and `text` (at most 2048 bytes)",
            ));
        }
    };
    let search = req.filters.into_search(by)?;
    let items = s.generation.search_assets(actor(&p), &search).await?;
    Ok(ApiJson(SimilarPage {
        embedder: s.generation.embedder_id().unwrap_or_default(),
        items,
    }))
}

/// The assets nearest to an uploaded picture or video (multipart, the file in a field
/// named `file`; embedded for this search only, not stored), among those the caller may
/// read, nearest first. Filters in the query.
#[utoipa::path(post, path = "/api/v1/assets/search/image", operation_id = "search_assets_by_image", tag = "assets",
    params(SearchFilters),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SimilarPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, description = "not a multipart/form-data body", body = ErrorBody),
        (status = 422, description = "not an image or video, or a bad filter", body = ErrorBody)))]
async fn search_by_image(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiQuery(filters): ApiQuery<SearchFilters>,
    req: Request,
) -> ApiResult<ApiJson<SimilarPage>> {
    let max = s.generation.config().max_upload_bytes;
    let (mut form, exceeded) = open_form(req, max.saturating_add(MULTIPART_OVERHEAD)).await?;
    let (up, _) = read_file_field(&s, &mut form, &exceeded, max).await?;
    let items = s
        .generation
        .search_by_upload(actor(&p), up, |by| filters.into_search(by))
        .await?;
    Ok(ApiJson(SimilarPage {
        embedder: s.generation.embedder_id().unwrap_or_default(),
        items,
    }))
}

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The media file: an image, video or audio format recognised by its content.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Uploads a media file as an asset of the caller: at most `[generation]
/// max_upload_bytes` (default 100 MiB). The format is recognised from the content
/// (magic bytes); a declared part content type must be of the same kind.
#[utoipa::path(post, path = "/api/v1/assets/upload", operation_id = "upload_asset", tag = "assets",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 201, body = Asset, headers(("Location" = String, description = "the asset's URL"))),
        (status = 400, description = "malformed multipart body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 413, description = "the file exceeds the upload limit (`[generation] max_upload_bytes`)", body = ErrorBody),
        (status = 415, description = "not multipart/form-data", body = ErrorBody),
        (status = 422, description = "no `file` field, or not a known media format", body = ErrorBody)))]
async fn upload(State(s): State<AppState>, Auth(p): Auth, req: Request) -> ApiResult<Response> {
    let max = s.generation.config().max_upload_bytes;
    let (mut form, exceeded) = open_form(req, max.saturating_add(MULTIPART_OVERHEAD)).await?;
    let (up, declared) = read_file_field(&s, &mut form, &exceeded, max).await?;
    let asset = s
        .generation
        .upload_incoming(actor(&p), up, declared.as_deref())
        .await?;
    let location = format!("/api/v1/assets/{}", asset.id);
    let mut res = (StatusCode::CREATED, ApiJson(asset)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// The multipart form of an upload request, its body counted as it streams in and cut
/// off past `body_limit`: the flag returned is set when that happened.
async fn open_form(req: Request, body_limit: u64) -> ApiResult<(Multipart, Arc<AtomicBool>)> {
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > body_limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    // Count the body as it streams in: a chunked body has no Content-Length.
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = exceeded.clone();
    let mut seen = 0u64;
    let (parts, body) = req.into_parts();
    let counted = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > body_limit {
            flag.store(true, Ordering::Relaxed);
            return Err(axum::Error::new(
                "the request body exceeds the upload limit",
            ));
        }
        Ok(chunk)
    });
    let req = Request::from_parts(parts, Body::from_stream(counted));
    let form = Multipart::from_request(req, &()).await.map_err(|e| {
        ApiError::UnsupportedMediaType(format!(
            "expected a multipart/form-data body: {}",
            e.body_text()
        ))
    })?;
    Ok((form, exceeded))
}

/// A multipart error as the API's: too large when the body limit was passed.
fn multipart_error(exceeded: &AtomicBool, e: MultipartError) -> ApiError {
    if exceeded.load(Ordering::Relaxed) || e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest {
            code: "invalid_multipart",
            message: e.body_text(),
        }
    }
}

/// Reads the form's one `file` field to an incoming file (with its declared content
/// type), at most `max` bytes; other fields are read past.
async fn read_file_field(
    s: &AppState,
    form: &mut Multipart,
    exceeded: &AtomicBool,
    max: u64,
) -> ApiResult<(generation::incoming::Incoming, Option<String>)> {
    let multipart_error = |e: MultipartError| multipart_error(exceeded, e);
    // The file streams to disk as it arrives (hashed on the way): an upload never
    // sits in memory, whatever its size. A failed upload's file is removed on drop.
    let mut file: Option<(generation::incoming::Incoming, Option<String>)> = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            // Other fields are read past (bounded by the body limit).
            while field.chunk().await.map_err(multipart_error)?.is_some() {}
            continue;
        }
        if file.is_some() {
            return Err(ApiError::validation("only one `file` field is allowed"));
        }
        let declared = field.content_type().map(str::to_owned);
        let mut up = s
            .generation
            .media()
            .incoming()
            .await
            .map_err(|e| ApiError::internal(format!("starting an upload: {e}")))?;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if up.size() + chunk.len() as u64 > max {
                return Err(ApiError::PayloadTooLarge);
            }
            up.write(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("writing an upload: {e}")))?;
        }
        file = Some((up, declared));
    }
    file.ok_or_else(|| ApiError::validation("a multipart field named `file` is required"))
}

/// Request headers that [`ServeFile`] honours.
const CONDITIONAL: [header::HeaderName; 4] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// Serves a stored file with Range support, the asset's content type, and the content
/// hash as ETag. Errors use the envelope.
pub(crate) async fn serve(f: AssetFile, headers: &HeaderMap) -> ApiResult<Response> {
    let etag = format!("\"{}\"", f.asset.content_hash);
    if matches_etag(headers, &etag) {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            res.headers_mut().insert(header::ETAG, v);
        }
        return Ok(res);
    }
    let res = match ServeFile::new(&f.path)
        .oneshot(conditional_request(headers))
        .await
    {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    };
    match res.status() {
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED => {
            Ok(with_asset_headers(res, &f.mime, &etag))
        }
        StatusCode::RANGE_NOT_SATISFIABLE => Ok(range_not_satisfiable(f.size)),
        StatusCode::PRECONDITION_FAILED => Ok(envelope(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "the file was modified since the given time".into(),
        )),
        StatusCode::NOT_FOUND => Err(ApiError::NotFound("the asset's file is missing".into())),
        other => Err(ApiError::internal(format!(
            "serving {} answered {other}",
            f.path.display()
        ))),
    }
}

/// Whether `If-None-Match` names the ETag (weak or strong) or is `*`.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The request [`ServeFile`] answers: the conditional headers of the caller's, without
/// a Range it cannot take.
fn conditional_request(headers: &HeaderMap) -> Request {
    let mut req = Request::new(Body::empty());
    // A Range this server cannot take (another unit, several ranges, not a range at
    // all) is ignored, and the whole file sent, as RFC 9110 §14.2 says.
    let range_ok = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(one_byte_range);
    for name in CONDITIONAL {
        if !range_ok && (name == header::RANGE || name == header::IF_RANGE) {
            continue;
        }
        if let Some(v) = headers.get(&name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    req
}

/// A served file's answer with the asset's content type, ETag and caching headers.
fn with_asset_headers(res: Response, mime: &str, etag: &str) -> Response {
    let (mut parts, body) = res.into_parts();
    let h = &mut parts.headers;
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    // The content at a path never changes (content-addressed), but it is private.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Response::from_parts(parts, body)
}

/// The 416 envelope, with the file's size in Content-Range.
fn range_not_satisfiable(size: u64) -> Response {
    let mut out = envelope(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        format!(
            "the requested range is not satisfiable for a file of {size} bytes \
             (one range of `bytes=start-end` is supported)"
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        out.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    out
}

/// Whether a Range header is one range of bytes: `bytes=first-last`, `bytes=first-`
/// or `bytes=-suffix`, with `first <= last`.
fn one_byte_range(v: &str) -> bool {
    let Some((unit, spec)) = v.trim().split_once('=') else {
        return false;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return false;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok();
    match (first.trim(), last.trim()) {
        (f, "") => digits(f),
        ("", l) => digits(l),
        (f, l) => {
            digits(f)
                && digits(l)
                && matches!((f.parse::<u64>(), l.parse::<u64>()), (Ok(a), Ok(b)) if a <= b)
        }
    }
}

/// An error envelope with a status [`ApiError`] has no variant for.
fn envelope(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            details: None,
        },
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::one_byte_range;

    #[test]
    fn only_one_byte_range_is_taken() {
        for ok in [
            "bytes=0-3",
            "bytes=5-",
            "bytes=-4",
            "Bytes = 1-1",
            "bytes=1000-2000",
        ] {
            assert!(one_byte_range(ok), "{ok}");
        }
        for ignored in [
            "items=0-3",
            "bytes=0-1,4-5",
            "bytes=3-1",
            "bytes=-",
            "bytes=a-b",
            "bytes",
            "",
            "bytes=99999999999999999999999-",
        ] {
            assert!(!one_byte_range(ignored), "{ignored}");
        }
    }
}
