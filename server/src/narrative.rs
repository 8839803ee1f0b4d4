//! The narrative content on the server side: load `scenes/` at startup (refusing
//! invalid content), hand it to the simulation, and reload it when files change,
//! keeping the old content when the new one is invalid.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::anyhow;
use api::ContentInfo;
use bevy_app::{App, PreUpdate};
use bevy_ecs::prelude::*;
use domain::narrative::Content;
use tokio_util::sync::CancellationToken;

/// Loads and validates the content directory; the error lists every problem with
/// file and node.
pub fn load(dir: &Path, checks: &content::Checks) -> anyhow::Result<Arc<Content>> {
    match content::load_dir_with(dir, checks) {
        Ok(c) => Ok(Arc::new(c)),
        Err(report) => Err(anyhow!(
            "the content in {} is invalid ({} problem{}):\n{report}",
            dir.display(),
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        )),
    }
}

/// What the asset library holds for scenes: the clips, branch points and assets of the
/// scene content's owner (published to every player), as the content check takes them.
pub async fn library(pool: &store::PgPool) -> anyhow::Result<content::library::Library> {
    use content::library::{Library, LibraryBranch, LibraryClip, LibraryVariant};
    let lib = store::generation::library::owner_library(pool, domain::user::CONTENT_OWNER.0)
        .await
        .map_err(|e| anyhow!("reading the asset library: {e}"))?;
    let mut out = Library::default();
    for c in lib.clips {
        out.clips.insert(
            c.asset_id.to_string(),
            LibraryClip {
                source: c.source_asset_id.to_string(),
                start_ms: c.start_ms,
                end_ms: c.end_ms,
            },
        );
    }
    for b in lib.branches {
        let variants: Vec<generation::service::library::BranchVariant> =
            serde_json::from_value(b.variants)
                .map_err(|e| anyhow!("branch point {}: stored variants: {e}", b.id))?;
        out.branches.insert(
            b.id.to_string(),
            LibraryBranch {
                asset: b.asset_id.to_string(),
                at_ms: b.at_ms,
                variants: variants
                    .into_iter()
                    .map(|v| LibraryVariant {
                        key: v.key,
                        // Thousandths: the simulation draws by whole weights.
                        weight: (v.weight * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32,
                        condition: v.condition,
                        asset: v.asset_id.map(|a| a.to_string()),
                    })
                    .collect(),
            },
        );
    }
    for (id, media_type) in lib.assets {
        out.assets
            .insert(id.to_string(), media_type.as_str().to_owned());
    }
    Ok(out)
}

/// New content on its way to the tick thread.
#[derive(Resource)]
struct Reloads(Mutex<mpsc::Receiver<Arc<Content>>>);

/// Hands content that arrived since the last tick to the simulation.
fn apply_reloads(reloads: Res<Reloads>, mut inbox: ResMut<sim::Inbox>) {
    let rx = reloads.0.lock().unwrap_or_else(|p| p.into_inner());
    while let Ok(content) = rx.try_recv() {
        inbox.reload = Some(content);
    }
}

/// Where the tick thread publishes the number of loaded sessions.
#[derive(Resource)]
struct SessionGauge(Arc<std::sync::atomic::AtomicU64>);

fn publish_session_count(gauge: Res<SessionGauge>, index: Res<sim::SessionIndex>) {
    gauge
        .0
        .store(index.len() as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Adds the simulation, the reload bridge and the session gauge to the tick's app.
pub fn configure(
    app: &mut App,
    content: Arc<Content>,
    tick: Duration,
    start_ms: i64,
    reloads: mpsc::Receiver<Arc<Content>>,
    sessions: Arc<std::sync::atomic::AtomicU64>,
) {
    let config = sim::SimConfig {
        tick_ms: i64::try_from(tick.as_millis()).unwrap_or(50).max(1),
        start_ms,
        ..Default::default()
    };
    app.add_plugins(sim::SimPlugin::new(content, config))
        .insert_resource(Reloads(Mutex::new(reloads)))
        .insert_resource(SessionGauge(sessions))
        // After the game bridge: a session start it let through in this tick was
        // validated against content whose reload was sent before it, so that reload
        // reaches the simulation in the same tick at the latest.
        .add_systems(PreUpdate, apply_reloads.after(::game::GameSystems::In))
        .add_systems(bevy_app::PostUpdate, publish_session_count)
        // Between ticks, the tick loop's command steps run the simulation's commands.
        .add_systems(tick::CommandMain, |world: &mut World| {
            world.run_schedule(sim::CommandUpdate);
        });
    register_inspection(app);
}

/// The inspector, as the simulation registers its component types with it.
struct Registrar<'a>(&'a mut App);

impl sim::inspect::Inspect for Registrar<'_> {
    fn component<T: Component + serde::Serialize>(&mut self) {
        use inspector::InspectAppExt;
        self.0.inspect_component::<T>();
    }
}

/// Makes the simulation's state visible to the tick inspector.
fn register_inspection(app: &mut App) {
    use inspector::InspectAppExt;
    sim::inspect::register(&mut Registrar(app));
    app.inspect_method("session.list", session_list)
        .inspect_method("session.inspect", session_inspect)
        .inspect_method("world.inspect", world_inspect);
    crate::worlds::register(app);
}

/// The inspector's error for the simulation's.
fn rpc_err(e: sim::inspect::InspectError) -> inspector::RpcError {
    use sim::inspect::InspectError;
    let code = match e {
        InspectError::NotLoaded(_) | InspectError::EntityGone => inspector::codes::ENTITY_NOT_FOUND,
        InspectError::Json(_) => inspector::codes::INTERNAL_ERROR,
    };
    inspector::RpcError::new(code, e.to_string())
}

/// `session.list {limit?}`: loaded sessions with their scene, node and phase.
fn session_list(
    world: &mut World,
    params: serde_json::Value,
) -> Result<serde_json::Value, inspector::RpcError> {
    let limit = params
        .get("limit")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(500) as usize;
    Ok(sim::inspect::session_list(world, limit))
}

/// `session.inspect {session}`: one session's narrative state.
fn session_inspect(
    world: &mut World,
    params: serde_json::Value,
) -> Result<serde_json::Value, inspector::RpcError> {
    let id: sim::SessionId = params
        .get("session")
        .cloned()
        .ok_or_else(|| inspector::RpcError::invalid_params("expected {\"session\": \"<uuid>\"}"))
        .and_then(|v| serde_json::from_value(v).map_err(inspector::RpcError::invalid_params))?;
    sim::inspect::session(world, id).map_err(rpc_err)
}

/// `world.inspect`: the world clock, content and session count.
fn world_inspect(
    world: &mut World,
    _: serde_json::Value,
) -> Result<serde_json::Value, inspector::RpcError> {
    sim::inspect::world(world).map_err(rpc_err)
}

/// Where reloaded content goes.
pub struct ContentSinks {
    /// The tick thread.
    pub tick: mpsc::Sender<Arc<Content>>,
    /// What `/health` says of the content.
    pub info: ContentInfo,
    /// What scene lists and new sessions see.
    pub cell: ::game::ContentCell,
}

/// Polls `dir` every `interval` and, when its files changed, reloads it, checked
/// against the asset library read from `pool` at that moment; sends valid new content
/// to the tick, then makes it the content of the cell (what scene lists and new
/// sessions see).
pub fn spawn_watcher(
    dir: PathBuf,
    interval: Duration,
    checks: anyhow::Result<content::Checks>,
    pool: store::PgPool,
    sinks: ContentSinks,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let ContentSinks {
        tick: tx,
        info,
        cell,
    } = sinks;
    tokio::spawn(async move {
        // The checks were built once at startup already, so this cannot fail here.
        let checks = checks.unwrap_or_default();
        let watcher = Arc::new(Mutex::new(
            content::Watcher::new(dir.clone()).with_checks(checks),
        ));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
            let w = watcher.clone();
            let changed = tokio::task::spawn_blocking(move || {
                w.lock().unwrap_or_else(|p| p.into_inner()).changed()
            })
            .await
            .unwrap_or(false);
            if !changed {
                continue;
            }
            // The scenes are checked against the library as it is now.
            match library(&pool).await {
                Ok(lib) => watcher
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .set_library(Some(Arc::new(lib))),
                Err(e) => tracing::warn!(
                    "content reload: {e:#}; scenes naming clips or branch points are refused"
                ),
            }
            let w = watcher.clone();
            let polled = tokio::task::spawn_blocking(move || {
                w.lock().unwrap_or_else(|p| p.into_inner()).poll()
            })
            .await;
            match polled {
                Ok(None) => {}
                Ok(Some(Ok(content))) => {
                    let content = Arc::new(content);
                    tracing::info!(dir = %dir.display(), version = %content.version, scenes = content.scenes.len(), "content reloaded");
                    info.set_loaded(&content.version, content.scenes.len());
                    // The tick first: anything validated against the cell from now on
                    // reaches the tick after this reload.
                    if tx.send(Arc::clone(&content)).is_err() {
                        break;
                    }
                    cell.set(content);
                }
                Ok(Some(Err(report))) => {
                    tracing::warn!(dir = %dir.display(), problems = report.problems.len(), "content change refused, keeping the old content:\n{report}");
                    info.set_error(report.to_string());
                }
                Err(e) => tracing::error!(error = %e, "content watcher failed"),
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_inspector_sees_sessions_and_the_world() {
        let content = load(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenes")),
            &content::Checks::default(),
        )
        .unwrap();
        let (_tx, rx) = mpsc::channel();
        let period = Duration::from_millis(50);
        let mut app = App::new();
        app.add_plugins(tick::TickPlugin { period });
        let gauge = Arc::new(std::sync::atomic::AtomicU64::new(0));
        configure(&mut app, content, period, 0, rx, gauge.clone());
        let id = sim::SessionId::from_u128(7);
        app.world_mut()
            .resource_mut::<sim::Inbox>()
            .commands
            .push(sim::SimCommand {
                session: id,
                command: sim::Command::Start {
                    scene: None,
                    seed: 1,
                },
            });
        tick::run_tick(&mut app, 1);
        assert_eq!(gauge.load(std::sync::atomic::Ordering::Relaxed), 1);

        let call = |app: &mut App, method: &str, params: serde_json::Value| {
            app.world_mut()
                .resource_scope(|w, reg: Mut<inspector::InspectRegistry>| {
                    inspector::dispatch(w, &reg, method, params)
                })
        };
        let list = call(&mut app, "session.list", json!({})).unwrap();
        assert_eq!(list["total"], 1);
        assert_eq!(list["sessions"][0]["scene"], "gallery");
        let s = call(&mut app, "session.inspect", json!({"session": id})).unwrap();
        assert_eq!(s["position"]["scene"], "gallery");
        assert!(s["position"]["node"].is_string());
        assert!(s["call_stack"].is_array(), "{s}");
        let missing = call(
            &mut app,
            "session.inspect",
            json!({"session": sim::SessionId::from_u128(8)}),
        );
        assert_eq!(
            missing.unwrap_err().code,
            inspector::codes::ENTITY_NOT_FOUND
        );
        let w = call(&mut app, "world.inspect", json!({})).unwrap();
        assert_eq!(w["sessions"], 1);
        assert!(w["clock"]["now_ms"].as_i64().unwrap() > 0);
        // BRP query over a sim component by its short name.
        let rows = call(
            &mut app,
            "world.query",
            json!({"data": {"components": ["Position"], "has": ["ActiveMiniGame"]}}),
        )
        .unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 1);
        assert_eq!(rows[0]["has"]["sim::components::ActiveMiniGame"], true);
    }
}
