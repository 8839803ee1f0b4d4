//! Scene media from the generation pipeline: the bridge between the game and the pipeline.
//!
//! When a session enters a media node whose media is a generation spec that the simulation
//! has no asset for yet, the game bridge reports it ([`game::MediaWanted`]). This task turns
//! the spec into a generation job owned by the content owner
//! ([`domain::user::CONTENT_OWNER`]) with `metadata = {scene, node}` and, once the job has
//! completed, hands the asset to the simulation ([`game::GameHandle::media_ready`]), which
//! pushes it to every session standing in such a node and shows it to later entrants.
//!
//! - One job per spec: requests are deduplicated here while a job is pending, and the
//!   pipeline's parameter hash reuses a completed asset instead of paying again (after a
//!   restart, the first entry gets the existing asset at once).
//! - A failed job is logged and forgotten after a back-off, so a later entry tries again.
//! - Content assets are readable by every signed-in user (their owner is the content owner).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::narrative::scene::GenerationSpec;
use domain::user::CONTENT_OWNER;
use game::{GameHandle, MediaWanted};
use generation::model::{Actor, JobStatus};
use generation::{GenerationEvent, GenerationService};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a failed spec is left alone before an entry may request it again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

type Key = (String, String, String);

enum State {
    /// A job is running.
    Pending,
    /// The asset was handed to the simulation.
    Ready(Uuid),
    /// The last job failed at this instant.
    Failed(Instant),
}

/// Content checks for scene media: every generation spec must pass the pipeline's own
/// rules for its provider (the default provider when it names none), so a bad spec is
/// refused at load with its file and node instead of failing when a player arrives.
pub fn content_checks(pipeline: &generation::PipelineConfig) -> anyhow::Result<content::Checks> {
    let providers = GenerationService::default_providers(pipeline)?;
    let default = pipeline.default_provider.clone();
    Ok(content::Checks {
        media: Some(std::sync::Arc::new(move |spec: &GenerationSpec| {
            generation::check_spec(&providers, &default, spec)
        })),
    })
}

/// Runs until `stop`; `wanted` comes from [`GameHandle::take_media_requests`].
pub async fn run(
    game: GameHandle,
    pipeline: GenerationService,
    mut wanted: mpsc::Receiver<MediaWanted>,
    stop: CancellationToken,
) {
    let mut events = pipeline.subscribe();
    let mut specs: HashMap<Key, State> = HashMap::new();
    let mut jobs: HashMap<Uuid, Key> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            w = wanted.recv() => {
                let Some(w) = w else { return };
                request(&game, &pipeline, &mut specs, &mut jobs, w).await;
            }
            ev = events.recv() => match ev {
                Ok(ev) => on_event(&game, &mut specs, &mut jobs, ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "scene media: pipeline events lagged; re-checking jobs");
                    recheck(&game, &pipeline, &mut specs, &mut jobs).await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

async fn request(
    game: &GameHandle,
    pipeline: &GenerationService,
    specs: &mut HashMap<Key, State>,
    jobs: &mut HashMap<Uuid, Key>,
    w: MediaWanted,
) {
    let key = (w.operation.clone(), w.prompt.clone(), w.params.clone());
    match specs.get(&key) {
        Some(State::Pending) => return,
        // The simulation asked again although it was told (e.g. it restarted): tell it again.
        Some(State::Ready(asset)) => {
            deliver(game, &key, *asset);
            return;
        }
        Some(State::Failed(at)) if at.elapsed() < RETRY_AFTER => return,
        _ => {}
    }
    let params = match serde_json::from_str(&w.params) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(scene = %w.scene, node = %w.node, error = %e, "scene media: bad spec parameters");
            specs.insert(key, State::Failed(Instant::now()));
            return;
        }
    };
    let spec = GenerationSpec {
        operation: w.operation.clone(),
        prompt: w.prompt.clone(),
        params,
    };
    let metadata = serde_json::json!({ "scene": w.scene, "node": w.node });
    match pipeline
        .create_from_spec(Actor::admin(CONTENT_OWNER), &spec, metadata)
        .await
    {
        Ok(job) => {
            tracing::info!(scene = %w.scene, node = %w.node, job = %job.id, status = ?job.status, "scene media requested");
            match (job.status, job.asset_id) {
                (JobStatus::Completed, Some(asset)) => {
                    specs.insert(key.clone(), State::Ready(asset));
                    deliver(game, &key, asset);
                }
                (JobStatus::Failed | JobStatus::Cancelled, _) => {
                    specs.insert(key, State::Failed(Instant::now()));
                }
                _ => {
                    specs.insert(key.clone(), State::Pending);
                    jobs.insert(job.id, key);
                }
            }
        }
        Err(e) => {
            tracing::error!(scene = %w.scene, node = %w.node, error = %e, "scene media: the pipeline refused the spec");
            specs.insert(key, State::Failed(Instant::now()));
        }
    }
}

fn on_event(
    game: &GameHandle,
    specs: &mut HashMap<Key, State>,
    jobs: &mut HashMap<Uuid, Key>,
    ev: GenerationEvent,
) {
    match ev {
        GenerationEvent::JobCompleted { generation, asset } => {
            if let Some(key) = jobs.remove(&generation.id) {
                specs.insert(key.clone(), State::Ready(asset.id));
                deliver(game, &key, asset.id);
            }
        }
        GenerationEvent::JobFailed { generation } => {
            if let Some(key) = jobs.remove(&generation.id) {
                tracing::warn!(job = %generation.id, code = ?generation.error_code, "scene media: generation failed");
                specs.insert(key, State::Failed(Instant::now()));
            }
        }
        GenerationEvent::JobUpdated { generation } if generation.status == JobStatus::Cancelled => {
            if let Some(key) = jobs.remove(&generation.id) {
                specs.insert(key, State::Failed(Instant::now()));
            }
        }
        _ => {}
    }
}

/// After missed events: looks up every pending job.
async fn recheck(
    game: &GameHandle,
    pipeline: &GenerationService,
    specs: &mut HashMap<Key, State>,
    jobs: &mut HashMap<Uuid, Key>,
) {
    let pending: Vec<Uuid> = jobs.keys().copied().collect();
    for id in pending {
        let Ok(job) = pipeline.get(Actor::admin(CONTENT_OWNER), id).await else {
            continue;
        };
        match (job.status, job.asset_id) {
            (JobStatus::Completed, Some(asset)) => {
                if let Some(key) = jobs.remove(&id) {
                    specs.insert(key.clone(), State::Ready(asset));
                    deliver(game, &key, asset);
                }
            }
            (JobStatus::Failed | JobStatus::Cancelled, _) => {
                if let Some(key) = jobs.remove(&id) {
                    specs.insert(key, State::Failed(Instant::now()));
                }
            }
            _ => {}
        }
    }
}

fn deliver(game: &GameHandle, key: &Key, asset: Uuid) {
    let ready = sim::MediaReady {
        operation: key.0.clone(),
        prompt: key.1.clone(),
        params: key.2.clone(),
        asset: asset.to_string(),
    };
    if let Err(e) = game.media_ready(ready) {
        tracing::warn!(error = %e, %asset, "scene media: could not hand the asset to the simulation");
    }
}
