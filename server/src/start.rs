//! The steps of [`Server::start`](crate::Server::start), in order: the Redis health
//! probe, the simulation core (game parts, the tick thread, the content watcher), the
//! QUIC endpoint with the game channel, the generation pipeline with its workers, and
//! the API's state over all of them.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use store::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Config, VERSION, adapters, content_checks, game, generation_service, media, narrative,
    revocations, services,
};

/// With `redis.url` set, the probe `/health` and `/ready` use; an unreachable Redis is
/// logged and the server runs degraded.
pub(crate) async fn redis_health(cfg: &Config) -> anyhow::Result<Option<api::HealthProbe>> {
    let Some(url) = &cfg.redis.url else {
        return Ok(None);
    };
    let probe = adapters::redis_probe(url, Duration::from_secs(1))
        .with_context(|| format!("invalid REDIS_URL {url}"))?;
    if let Err(e) = probe.check().await {
        tracing::warn!(error = %e, "Redis is configured but unreachable: running degraded");
    }
    Ok(Some(probe))
}

/// The simulation side, running.
pub(crate) struct Core {
    pub(crate) tick: tick::TickLoop,
    pub(crate) game: ::game::GameHandle,
    pub(crate) persister: ::game::PersisterTask,
    pub(crate) inspector: inspector::Inspector,
    pub(crate) content: api::ContentInfo,
    /// Sessions loaded in the simulation (written by the tick thread).
    pub(crate) sessions: Arc<AtomicU64>,
    pub(crate) watcher: Option<JoinHandle<()>>,
}

/// Starts the game parts and the tick thread running them, on a world clock that
/// resumes where the stored events left it, and the content watcher.
pub(crate) async fn core(
    cfg: &Config,
    pool: &PgPool,
    period: Duration,
    content: Arc<domain::narrative::Content>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Core> {
    let content_info = api::ContentInfo::new(
        &cfg.content.scenes_dir,
        &content.version,
        content.scenes.len(),
    );
    let game::GameParts {
        handle,
        plugin,
        persister,
    } = game::start(pool.clone(), content.clone(), &cfg.game, period)?;
    let (reload_tx, reload_rx) = std::sync::mpsc::channel();
    let (inspector, inspector_plugin) = inspector::channel(64);
    let sessions_gauge = Arc::new(AtomicU64::new(0));
    let sessions = sessions_gauge.clone();
    let start_ms = world_start_ms(pool).await?;
    let gap = Duration::try_from_secs_f64(cfg.tick.command_gap_ms / 1000.0).map_err(|_| {
        anyhow::anyhow!(
            "tick.command_gap_ms must be a number of milliseconds ≥ 0, not {}",
            cfg.tick.command_gap_ms
        )
    })?;
    let commands = cfg.tick.command_phase.then(|| tick::CommandPhase {
        bell: handle.bell().clone(),
        gap: gap.min(period / 2),
    });
    let tick = tick::TickLoop::spawn_with(cfg.tick.rate_hz, commands, move || {
        let mut app = bevy_app::App::new();
        narrative::configure(&mut app, content, period, start_ms, reload_rx, sessions);
        app.add_plugins(inspector_plugin);
        app.add_plugins(plugin);
        app
    })?;
    let watcher = (cfg.content.reload_interval_ms > 0).then(|| {
        narrative::spawn_watcher(
            cfg.content.scenes_dir.clone(),
            Duration::from_millis(cfg.content.reload_interval_ms),
            content_checks(cfg),
            pool.clone(),
            narrative::ContentSinks {
                tick: reload_tx,
                info: content_info.clone(),
                cell: handle.content_cell().clone(),
            },
            shutdown.clone(),
        )
    });
    Ok(Core {
        tick,
        game: handle,
        persister,
        inspector,
        content: content_info,
        sessions: sessions_gauge,
        watcher,
    })
}

/// Applies the game batches logged but not applied before the last stop (before
/// anything reads the tables), then the world time to start the clock at: the latest
/// stored event's, so it never goes backwards.
async fn world_start_ms(pool: &PgPool) -> anyhow::Result<i64> {
    let replayed = store::game::replay(pool)
        .await
        .context("applying the game batches logged before the last stop")?;
    if replayed > 0 {
        tracing::info!(
            batches = replayed,
            "applied game batches logged before the last stop"
        );
    }
    store::game::latest_world_time(pool)
        .await
        .context("reading the latest world time")
}

/// Binds the QUIC endpoint (`[quic]`) with the game channel as its handler.
pub(crate) fn bind_quic(
    cfg: &Config,
    game_handle: &::game::GameHandle,
    auth: &auth::AuthService,
) -> anyhow::Result<quic::QuicServer> {
    let mut qcfg = quic::QuicConfig::new(
        cfg.quic.addr,
        cfg.state_dir.clone(),
        format!("pixsim-server {VERSION}"),
    );
    qcfg.cert_path = cfg.quic.cert.clone();
    qcfg.key_path = cfg.quic.key.clone();
    qcfg.idle_timeout = Duration::from_secs(cfg.quic.idle_timeout_secs.max(1));
    qcfg.max_connections = cfg.quic.max_connections;
    qcfg.outbox_capacity = cfg.quic.outbox_capacity;
    Ok(quic::QuicServer::bind(qcfg)
        .with_context(|| format!("starting QUIC on udp://{}", cfg.quic.addr))?
        .with_handler(game::channel_handler(game_handle, auth)))
}

/// The game channel over WebSocket (`/api/v1/game/ws`, served by the API): the same
/// game handler as QUIC under the `[quic]` limits (idle timeout, max connections,
/// outbox capacity), counted apart from QUIC's connections. Its connections are
/// closed with `ServerShutdown` when `shutdown` is cancelled.
pub(crate) fn game_ws(
    cfg: &Config,
    game_handle: &::game::GameHandle,
    auth: &auth::AuthService,
    shutdown: &CancellationToken,
) -> anyhow::Result<channel::Channel> {
    let mut ccfg = channel::ChannelConfig::new(format!("pixsim-server {VERSION}"));
    ccfg.idle_timeout = Duration::from_secs(cfg.quic.idle_timeout_secs.max(1));
    ccfg.max_connections = cfg.quic.max_connections;
    ccfg.outbox_capacity = cfg.quic.outbox_capacity;
    let ws = channel::Channel::new(
        ccfg,
        game::channel_handler(game_handle, auth),
        channel::ConnectionStats::default(),
    )
    .context("the WebSocket game channel")?;
    let (stop, on) = (ws.clone(), shutdown.clone());
    tokio::spawn(async move {
        on.cancelled().await;
        stop.stop();
    });
    Ok(ws)
}

/// The generation pipeline: keys sealed, joined to the other nodes (and the
/// revocation relay) over Redis when configured, its workers and the scene media task
/// running until `shutdown`.
pub(crate) async fn generation(
    cfg: &Config,
    pool: &PgPool,
    auth: &auth::AuthService,
    game_handle: &::game::GameHandle,
    shutdown: &CancellationToken,
) -> anyhow::Result<(
    generation::GenerationService,
    Vec<JoinHandle<()>>,
    api::MetricsSource,
)> {
    let generation = generation_service(cfg, pool.clone())?;
    let sealed = generation
        .seal_stored_keys()
        .await
        .context("sealing provider API keys stored in plaintext")?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed provider API keys stored in plaintext");
    }
    services::connect_generation_nodes(cfg, &generation, shutdown.clone().cancelled_owned())?;
    if let Some(url) = &cfg.redis.url {
        // Ended sessions reach the live connections of every node.
        revocations::connect(url, auth.revocations(), shutdown.clone().cancelled_owned())
            .with_context(|| format!("invalid REDIS_URL {url}"))?;
    }
    let mut workers: Vec<JoinHandle<()>> = (0..cfg.generation.workers)
        .map(|i| {
            let worker = generation.worker_named(format!("server-{i}"));
            let stop = shutdown.clone().cancelled_owned();
            tokio::spawn(worker.run(stop))
        })
        .collect();
    // Webhooks: events of users with endpoints go to the outbox, due messages out.
    workers.push(tokio::spawn(
        generation.run_webhooks(shutdown.clone().cancelled_owned()),
    ));
    // Embeddings of assets, for similarity search.
    match cfg.generation.embedder.as_str() {
        "visual" => generation.set_embedder(Arc::new(generation::embed::VisualEmbedder::new())),
        "openai" => {
            let g = &cfg.generation;
            let (Some(url), false) = (&g.embeddings_url, g.embeddings_model.is_empty()) else {
                anyhow::bail!(
                    "generation.embedder = \"openai\" needs generation.embeddings_url and generation.embeddings_model"
                );
            };
            let e = generation::embed::OpenAiEmbedder::new(
                generation::embed::OpenAiEmbedderConfig {
                    base_url: url.clone(),
                    api_key: g.embeddings_api_key.clone(),
                    model: g.embeddings_model.clone(),
                    images: g.embeddings_images,
                    timeout: Duration::from_secs(60),
                },
                &generation::guard::Guard::new(generation.config().guard.clone()),
            )
            .context("the embeddings client")?;
            generation.set_embedder(Arc::new(e));
        }
        "none" => {}
        other => anyhow::bail!(
            "generation.embedder = {other:?}: expected \"visual\", \"openai\" or \"none\""
        ),
    }
    workers.push(tokio::spawn(
        generation.run_embeddings(shutdown.clone().cancelled_owned()),
    ));
    // Queue places: announced as they change (WebSocket streams, players waiting).
    workers.push(tokio::spawn(generation.run_queue_places(
        Duration::from_secs(1),
        shutdown.clone().cancelled_owned(),
    )));
    // Scene media: generation specs of nodes players enter become jobs, and their
    // assets are pushed into the simulation.
    let metrics = Arc::new(media::metrics::MediaMetrics::default());
    if let (Some(wanted), Some(moves)) = (
        game_handle.take_media_requests(),
        game_handle.take_whereabouts(),
    ) {
        workers.push(tokio::spawn(media::run(
            game_handle.clone(),
            generation.clone(),
            wanted,
            moves,
            media::Ahead {
                steps: cfg.generation.pregenerate_steps,
                priority: cfg.generation.pregenerate_priority,
            },
            Arc::clone(&metrics),
            shutdown.clone(),
        )));
    }
    Ok((generation, workers, metrics.source()))
}

/// The parts at the edge the API's state holds besides the core.
pub(crate) struct Edges<'a> {
    pub(crate) auth: auth::AuthService,
    pub(crate) redis: Option<api::HealthProbe>,
    pub(crate) quic: &'a quic::QuicServer,
    pub(crate) webtransport: Option<crate::webtransport_channel::ApiParts>,
    pub(crate) generation: generation::GenerationService,
    pub(crate) game_ws: channel::Channel,
    /// Scene media's figures (pre-generation, waits).
    pub(crate) media_metrics: api::MetricsSource,
}

/// What every HTTP handler may reach.
pub(crate) fn app_state(
    cfg: &Config,
    pool: &PgPool,
    core: &Core,
    edges: Edges<'_>,
) -> api::AppState {
    api::AppState {
        db: pool.clone(),
        auth: edges.auth,
        tick: api::TickHandle {
            stats: core.tick.stats().clone(),
            control: core.tick.control().clone(),
        },
        redis: edges.redis,
        info: Arc::new(api::ServerInfo {
            version: VERSION.to_owned(),
            quic_addr: Some(edges.quic.local_addr().to_string()),
            quic_fingerprint: Some(edges.quic.fingerprint().to_owned()),
        }),
        content: core.content.clone(),
        inspector: core.inspector.clone(),
        game: core.game.clone(),
        generation: edges.generation.clone(),
        gauges: api::Gauges {
            sessions: core.sessions.clone(),
            quic: Some(adapters::quic_figures(edges.quic.stats())),
            extra: vec![
                adapters::log_metrics(),
                adapters::generation_metrics(pool.clone()),
                adapters::webhook_metrics(edges.generation.clone()),
                edges.media_metrics.clone(),
                game::metrics(&core.game),
                adapters::ws_metrics(edges.game_ws.stats()),
            ]
            .into_iter()
            .chain(edges.webtransport.as_ref().map(|w| w.metrics.clone()))
            .collect(),
        },
        metrics_token: cfg
            .http
            .metrics_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(api::ScrapeToken::new),
        streams: api::limits::UserSlots::new("open event streams", cfg.http.max_streams_per_user),
        webtransport: edges.webtransport.map(|w| w.directory),
        assets_dir: Arc::new(cfg.content.assets_dir()),
        game_ws: Some(edges.game_ws),
        health_probes: Default::default(),
    }
}
