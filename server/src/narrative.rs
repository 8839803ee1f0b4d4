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
pub fn load(dir: &Path) -> anyhow::Result<Arc<Content>> {
    match content::load_dir(dir) {
        Ok(c) => Ok(Arc::new(c)),
        Err(report) => Err(anyhow!(
            "the content in {} is invalid ({} problem{}):\n{report}",
            dir.display(),
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" }
        )),
    }
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
        .store(index.0.len() as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Adds the simulation, the reload bridge and the session gauge to the tick's app.
pub fn configure(
    app: &mut App,
    content: Arc<Content>,
    tick: Duration,
    reloads: mpsc::Receiver<Arc<Content>>,
    sessions: Arc<std::sync::atomic::AtomicU64>,
) {
    let config = sim::SimConfig {
        tick_ms: i64::try_from(tick.as_millis()).unwrap_or(50).max(1),
        ..Default::default()
    };
    app.add_plugins(sim::SimPlugin::new(content, config))
        .insert_resource(Reloads(Mutex::new(reloads)))
        .insert_resource(SessionGauge(sessions))
        .add_systems(PreUpdate, apply_reloads)
        .add_systems(bevy_app::PostUpdate, publish_session_count);
}

/// Polls `dir` every `interval` and sends valid new content to the tick.
pub fn spawn_watcher(
    dir: PathBuf,
    interval: Duration,
    tx: mpsc::Sender<Arc<Content>>,
    info: ContentInfo,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let watcher = Arc::new(Mutex::new(content::Watcher::new(dir.clone())));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
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
                    if tx.send(content).is_err() {
                        break;
                    }
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
