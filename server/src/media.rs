//! Scene media from the generation pipeline: the bridge between the game and the pipeline.
//!
//! When a session enters a media node whose media is a generation spec that the simulation
//! has no asset for yet, the game bridge reports it ([`game::MediaWanted`]). This task turns
//! the spec into a generation job owned by the content owner
//! ([`domain::user::CONTENT_OWNER`]) with `metadata = {scene, node, world}` (the world's
//! credit budget counts it) and, once the job has
//! completed, hands the asset to the simulation ([`game::GameHandle::media_ready`]), which
//! pushes it to every session standing in such a node and shows it to later entrants.
//!
//! - One job per spec: requests are deduplicated here while a job is pending, and the
//!   pipeline's parameter hash reuses a completed asset instead of paying again (after a
//!   restart, the first entry gets the existing asset at once).
//! - A refused or failed job is logged with its reason; a spec with `fallback` media then
//!   gets its fallback (players see it instead of waiting), one without is forgotten
//!   after a back-off, so a later entry tries again.
//! - Content assets are readable by every signed-in user (their owner is the content owner).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::narrative::scene::GenerationSpec;
use domain::user::CONTENT_OWNER;
use game::{GameHandle, MediaWanted};
use generation::model::{Actor, Generation, JobStatus};
use generation::{GenerationEvent, GenerationService};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a failed spec is left alone before an entry may request it again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Progress is passed on when it moved by at least this many points …
const PROGRESS_STEP: u8 = 10;
/// … and at most this often (a change of queue place goes at once).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

type Key = (String, String, String);

enum State {
    /// A job is running.
    Pending,
    /// The asset (a generated asset's id, or the spec's fallback file) was handed to the
    /// simulation.
    Ready(String),
    /// The last job failed at this instant (and the spec has no fallback).
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
        assets_dir: None,
        // The simulation runs the built-in mini-games (`sim::MiniGames::builtin`).
        minigames: Some(sim::MiniGames::builtin().rules()),
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
    let mut media = Tracker {
        game,
        specs: HashMap::new(),
        jobs: HashMap::new(),
        fallbacks: HashMap::new(),
        progress: HashMap::new(),
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            w = wanted.recv() => {
                let Some(w) = w else { return };
                media.request(&pipeline, w).await;
            }
            ev = events.recv() => match ev {
                Ok(ev) => media.on_event(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "scene media: pipeline events lagged; re-checking jobs");
                    media.recheck(&pipeline).await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Where each spec stands, and which spec each running job is for.
struct Tracker {
    game: GameHandle,
    specs: HashMap<Key, State>,
    jobs: HashMap<Uuid, Key>,
    /// The fallback media of the specs that name one.
    fallbacks: HashMap<Key, String>,
    /// The last progress passed on per running job: (percent, queue place, when).
    progress: HashMap<Uuid, (u8, Option<u32>, Instant)>,
}

impl Tracker {
    async fn request(&mut self, pipeline: &GenerationService, w: MediaWanted) {
        let key = (w.operation.clone(), w.prompt.clone(), w.params.clone());
        match self.specs.get(&key) {
            Some(State::Pending) => return,
            // The simulation asked again although it was told (e.g. it restarted): tell
            // it again.
            Some(State::Ready(asset)) => {
                deliver(&self.game, &key, asset);
                return;
            }
            Some(State::Failed(at)) if at.elapsed() < RETRY_AFTER => return,
            _ => {}
        }
        let content = self.game.content();
        let scene = content.scenes.get(&w.scene);
        // The spec's fallback media, as the scene file has it.
        if let Some(fallback) = scene
            .and_then(|s| s.nodes.iter().find(|n| n.id == w.node))
            .and_then(|n| {
                n.kind.generations().into_iter().find(|g| {
                    g.operation == w.operation
                        && g.prompt == w.prompt
                        && sim::protocol::spec_params(g) == w.params
                })
            })
            .and_then(|g| g.fallback.clone())
        {
            self.fallbacks.insert(key.clone(), fallback);
        }
        let params = match serde_json::from_str(&w.params) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(scene = %w.scene, node = %w.node, error = %e, "scene media: bad spec parameters");
                self.fail(key, None, "bad_parameters", &e.to_string());
                return;
            }
        };
        let spec = GenerationSpec {
            operation: w.operation.clone(),
            prompt: w.prompt.clone(),
            params,
            fallback: None,
        };
        // The world the scene belongs to: its credit budget counts this job.
        let world = scene.map(|s| domain::narrative::world::scene_world(s).to_owned());
        let metadata = serde_json::json!({ "scene": w.scene, "node": w.node, "world": world });
        match pipeline
            .create_from_spec(Actor::admin(CONTENT_OWNER), &spec, metadata)
            .await
        {
            Ok(job) => {
                tracing::info!(scene = %w.scene, node = %w.node, job = %job.id, status = ?job.status, "scene media requested");
                self.settle(
                    key,
                    job.id,
                    job.status,
                    job.asset_id,
                    job.error_code.as_deref(),
                );
            }
            Err(e) => {
                tracing::error!(scene = %w.scene, node = %w.node, code = e.code(), error = %e, "scene media: the pipeline refused the spec");
                self.fail(key, None, e.code(), &e.to_string());
            }
        }
    }

    /// The spec's generation was refused or failed: its fallback goes to the
    /// simulation when it has one (and stays, as a generated asset would), else an
    /// entry may ask again after [`RETRY_AFTER`]. Either way the log says why.
    fn fail(&mut self, key: Key, job: Option<Uuid>, code: &str, why: &str) {
        match self.fallbacks.get(&key).cloned() {
            Some(fallback) => {
                tracing::warn!(job = ?job, code, reason = why, %fallback, prompt = %key.1, "scene media: generation did not succeed; players get the fallback");
                deliver(&self.game, &key, &fallback);
                self.specs.insert(key, State::Ready(fallback));
            }
            None => {
                tracing::warn!(job = ?job, code, reason = why, prompt = %key.1, "scene media: generation did not succeed and the spec has no fallback");
                self.specs.insert(key, State::Failed(Instant::now()));
            }
        }
    }

    /// Records where the job for `key` stands; a completed one's asset goes to the
    /// simulation, a running one is followed.
    fn settle(
        &mut self,
        key: Key,
        job: Uuid,
        status: JobStatus,
        asset: Option<Uuid>,
        error_code: Option<&str>,
    ) {
        match (status, asset) {
            (JobStatus::Completed, Some(asset)) => {
                let asset = asset.to_string();
                deliver(&self.game, &key, &asset);
                self.specs.insert(key, State::Ready(asset));
            }
            (JobStatus::Failed | JobStatus::Cancelled, _) => {
                let code = error_code.unwrap_or(status.as_str()).to_owned();
                self.fail(
                    key,
                    Some(job),
                    &code,
                    &format!("the job ended {}", status.as_str()),
                );
            }
            _ => {
                self.specs.insert(key.clone(), State::Pending);
                self.jobs.insert(job, key);
            }
        }
    }

    /// Passes a followed job's progress (or its place in the queue) to the sessions
    /// waiting in its nodes: the first report, then on a change of place, or of at least
    /// [`PROGRESS_STEP`] points at most once per [`PROGRESS_EVERY`] (each is a durable
    /// event of every such session).
    fn report_progress(&mut self, job: &Generation) {
        let Some(key) = self.jobs.get(&job.id) else {
            return;
        };
        let percent = job.progress.unwrap_or(0.0).clamp(0.0, 100.0) as u8;
        let place = job
            .queue_position
            .and_then(|p| u32::try_from(p).ok())
            .filter(|_| job.status == JobStatus::Pending);
        let send = match self.progress.get(&job.id) {
            None => true,
            Some((last, last_place, at)) => {
                *last_place != place
                    || (percent >= last.saturating_add(PROGRESS_STEP)
                        && at.elapsed() >= PROGRESS_EVERY)
            }
        };
        if !send {
            return;
        }
        self.progress
            .insert(job.id, (percent, place, Instant::now()));
        let report = sim::MediaProgress {
            operation: key.0.clone(),
            prompt: key.1.clone(),
            params: key.2.clone(),
            progress: percent,
            queue_position: place,
            estimated_start_unix_ms: job
                .estimated_start_at
                .filter(|_| place.is_some())
                .map(|t| t.timestamp_millis()),
        };
        if let Err(e) = self.game.media_progress(report) {
            tracing::debug!(error = %e, "scene media: could not pass on progress");
        }
    }

    /// Completion and failure of followed jobs (a cancel is a `job:failed` too), and
    /// their progress.
    fn on_event(&mut self, ev: GenerationEvent) {
        if let GenerationEvent::JobUpdated { generation } = &ev {
            self.report_progress(generation);
            return;
        }
        let (id, status, asset, code) = match ev {
            GenerationEvent::JobCompleted { generation, asset } => {
                (generation.id, JobStatus::Completed, Some(asset.id), None)
            }
            GenerationEvent::JobFailed { generation } => (
                generation.id,
                generation.status,
                None,
                generation.error_code,
            ),
            _ => return,
        };
        self.progress.remove(&id);
        if let Some(key) = self.jobs.remove(&id) {
            self.settle(key, id, status, asset, code.as_deref());
        }
    }

    /// After missed events: looks up every followed job.
    async fn recheck(&mut self, pipeline: &GenerationService) {
        let followed: Vec<Uuid> = self.jobs.keys().copied().collect();
        for id in followed {
            let Ok(job) = pipeline.get(Actor::admin(CONTENT_OWNER), id).await else {
                continue;
            };
            if let Some(key) = self.jobs.remove(&id) {
                self.settle(key, id, job.status, job.asset_id, job.error_code.as_deref());
            }
        }
    }
}

fn deliver(game: &GameHandle, key: &Key, asset: &str) {
    let ready = sim::MediaReady {
        operation: key.0.clone(),
        prompt: key.1.clone(),
        params: key.2.clone(),
        asset: asset.to_owned(),
    };
    if let Err(e) = game.media_ready(ready) {
        tracing::warn!(error = %e, %asset, "scene media: could not hand the asset to the simulation");
    }
}
