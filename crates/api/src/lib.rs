//! The REST API: axum routers per resource, authentication extractors, the error
//! envelope and the OpenAPI 3.1 document.
//!
//! **API Boundary**: the JSON shapes here are public. Every route is registered
//! through `utoipa_axum::routes!`, so a route cannot exist without its entry in the
//! OpenAPI document served at `/api/openapi.json` (the docs page is `/api/docs`).

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderName;
use axum::response::{Html, IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::{router::OpenApiRouter, routes};

pub mod error;
pub mod extract;
pub mod headers;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod spec;
pub mod state;

pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
pub use state::{
    AppState, BoxFuture, ChannelFigures, ChannelStats, ContentInfo, ContentStatus, Gauges,
    HealthProbe, MetricsSource, ScrapeToken, ServerInfo, TickHandle, WebTransportCerts,
    WebTransportDirectory,
};

/// Largest accepted request body (JSON), in bytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The header carrying the request id, set when the client sends none.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "PixSim", description = "Game simulation and generation server."),
    modifiers(&Security),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::game::router())
        .merge(routes::game_webtransport::router())
        .merge(routes::game_ws::router())
        .merge(routes::users::router())
        .merge(routes::admin::router())
        .merge(routes::admin_users::router())
        .merge(routes::admin_budgets::router())
        .merge(routes::rpc::router())
        .merge(routes::worlds::router())
        .merge(routes::generations::router())
        .merge(routes::accounts::router())
        .merge(routes::webhooks::router())
        .merge(routes::providers::router())
        .merge(routes::assets::router())
        .merge(routes::ws::router())
        .merge(routes::scene_files::router())
        .merge(routes::play::router())
        .merge(metrics::router())
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
        .routes(routes!(admin_page))
}

static OPENAPI: LazyLock<OpenApi> = LazyLock::new(|| {
    let mut doc = api_routes().into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    spec::complete(&mut doc);
    doc
});

/// The OpenAPI document of every route.
pub fn openapi() -> &'static OpenApi {
    &OPENAPI
}

/// The OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "docs",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
async fn openapi_json(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    // `info.version` is the server's version (the binary's crate), not this crate's.
    let mut doc = openapi().clone();
    if !s.info.version.is_empty() {
        doc.info.version.clone_from(&s.info.version);
    }
    axum::Json(doc).into_response()
}

/// A self-contained page that renders the OpenAPI document (works offline).
#[utoipa::path(get, path = "/api/docs", tag = "docs",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn docs() -> Html<&'static str> {
    Html(headers::DOCS_PAGE)
}

/// The operators' page: live tick figures, entities, sessions, queue (logs in as an admin).
#[utoipa::path(get, path = "/admin", tag = "admin",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn admin_page() -> Html<&'static str> {
    Html(headers::ADMIN_PAGE)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::internal("handler panicked").into_response()
}

/// The whole HTTP application with its middleware. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so rate limits see client IPs.
pub fn router(state: AppState) -> Router {
    let (router, _) = api_routes().split_for_parts();
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-")
                .to_owned();
            tracing::info_span!("http", method = %req.method(), path, request_id, user_id = tracing::field::Empty)
        })
        .on_response(|res: &Response, latency: Duration, _: &tracing::Span| {
            let status = res.status();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "response");
            } else {
                tracing::info!(status = status.as_u16(), latency_ms = latency.as_secs_f64() * 1e3, "response");
            }
        })
        .on_failure(());
    let http_metrics = metrics::HttpMetrics::default();
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(spec::refuse_unknown_query))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::Extension(http_metrics))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}
