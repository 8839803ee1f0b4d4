//! Game sessions on the server: the bridge plugin on the tick thread, the persister
//! task (write-behind, one transaction per batch), the session sweeper and the
//! QUIC handler ([`crate::game_channel`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use store::PgPool;

use crate::config;

/// The game parts before the tick starts.
pub struct GameParts {
    pub handle: ::game::GameHandle,
    pub plugin: ::game::GamePlugin,
    pub persister: ::game::PersisterTask,
}

fn secs(name: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("game.{name} must be a positive number of seconds, not {value}"))
}

/// The game tunables of the `[game]` section, checked; the applier waits a third of
/// the tick period (`tick_period`) after each commit.
pub fn game_config(
    c: &config::GameConfig,
    tick_period: Duration,
) -> anyhow::Result<::game::GameConfig> {
    let positive = |name: &str, v: usize| {
        if v == 0 {
            anyhow::bail!("game.{name} must be at least 1");
        }
        Ok(v)
    };
    Ok(::game::GameConfig {
        resend_window: positive("resend_window", c.resend_window)?,
        per_session_queue: positive("per_session_queue", c.per_session_queue)?,
        max_inflight: positive("max_inflight", c.max_inflight)?,
        send_wait: secs("send_wait_secs", c.send_wait_secs)?,
        evict_ended_after: secs("evict_ended_after_secs", c.evict_ended_after_secs)?,
        evict_idle_after: secs("evict_idle_after_secs", c.evict_idle_after_secs)?,
        max_live_sessions_per_user: positive(
            "max_live_sessions_per_user",
            c.max_live_sessions_per_user,
        )?,
        apply_delay: tick_period / 3,
        // Commands that waited four fifths of a period go first, in a batch of their own.
        urgent_wait: Some(tick_period * 4 / 5),
        ..::game::GameConfig::default()
    })
}

/// Creates the handle (holding the content in a [`::game::ContentCell`] that reloads
/// update), the tick plugin, and starts the persister and the session sweeper.
pub fn start(
    pool: PgPool,
    content: Arc<domain::narrative::Content>,
    cfg: &config::GameConfig,
    tick_period: Duration,
) -> anyhow::Result<GameParts> {
    let g = ::game::GameHandle::new(
        pool,
        ::game::ContentCell::new(content),
        game_config(cfg, tick_period)?,
    );
    Ok(GameParts {
        handle: g.handle,
        plugin: g.plugin,
        persister: g.persister.spawn(),
    })
}

/// The game channel's connection handler, one per transport (QUIC, WebTransport,
/// WebSocket); each holds only clones of the game and auth handles.
pub fn channel_handler(
    handle: &::game::GameHandle,
    auth: &auth::AuthService,
) -> Arc<dyn channel::ConnectionHandler> {
    Arc::new(crate::game_channel::GameConnectionHandler::new(
        handle.clone(),
        auth.clone(),
    ))
}

/// `pixsim_game_sessions_loaded`, `pixsim_game_sessions_evicted_total` and the
/// durability figures ([`::game::GameHandle::durability_metrics`]) for `/metrics`.
pub fn metrics(handle: &::game::GameHandle) -> api::MetricsSource {
    let handle = handle.clone();
    Arc::new(move || {
        let mut text = format!(
            "# HELP pixsim_game_sessions_loaded Game sessions held in memory (live, or ended within their grace period).\n\
             # TYPE pixsim_game_sessions_loaded gauge\n\
             pixsim_game_sessions_loaded {}\n\
             # HELP pixsim_game_sessions_evicted_total Game sessions dropped from memory (ended, or idle and saved).\n\
             # TYPE pixsim_game_sessions_evicted_total counter\n\
             pixsim_game_sessions_evicted_total {}\n",
            handle.loaded_sessions(),
            handle.evictions()
        );
        text.push_str(&handle.durability_metrics());
        Box::pin(std::future::ready(text))
    })
}

/// Shutdown, first step: refuse new sessions and commands.
pub fn stop_accepting(handle: &::game::GameHandle) {
    handle.stop_accepting();
}

/// Shutdown, before the tick stops: commit everything handed over so far.
pub async fn final_flush(handle: &::game::GameHandle) {
    if !handle.flush(Duration::from_secs(5)).await {
        tracing::warn!("game state flush did not finish in 5 s");
    }
}
