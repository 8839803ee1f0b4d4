//! Game sessions on the server: the bridge plugin on the tick thread, the persister
//! task (write-behind, one transaction per tick batch) and the QUIC handler.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

/// The game parts before the tick starts.
pub struct GameParts {
    pub handle: ::game::GameHandle,
    pub plugin: ::game::GamePlugin,
    pub persister: ::game::PersisterTask,
}

/// Creates the handle, the tick plugin, and starts the persister.
pub fn start(pool: PgPool, content: Arc<domain::narrative::Content>) -> GameParts {
    let g = ::game::GameHandle::new(pool, content, ::game::GameConfig::default());
    GameParts {
        handle: g.handle,
        plugin: g.plugin,
        persister: g.persister.spawn(),
    }
}

/// The QUIC connection handler of the game channel.
pub fn quic_handler(
    handle: &::game::GameHandle,
    auth: &auth::AuthService,
) -> Arc<dyn quic::ConnectionHandler> {
    Arc::new(::game::GameConnectionHandler::new(
        handle.clone(),
        auth.clone(),
    ))
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
