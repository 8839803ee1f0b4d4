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
//!
//! **Ahead of the players.** The tick also reports where sessions move
//! ([`game::Whereabouts`]). When a session comes within `pregenerate_steps` steps of a
//! generation node ([`reach`]) whose media is not there, the spec's job is created at
//! `pregenerate_priority` (below ordinary jobs); the first entry into the node raises it
//! to the spec's own priority; when no loaded session can reach the node anymore and the
//! job has not started, it is cancelled (`not_needed`, nothing charged). One job per spec
//! however many sessions approach. Figures: [`metrics::MediaMetrics`].

pub(crate) mod metrics;
pub(crate) mod reach;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use domain::narrative::scene::GenerationSpec;
use domain::user::CONTENT_OWNER;
use game::{GameHandle, MediaWanted, Whereabouts};
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

use metrics::{Found, MediaMetrics};
use reach::{Key, Near, Reach};

/// Pre-generation settings (`[generation]`).
#[derive(Clone, Copy, Debug)]
pub struct Ahead {
    /// Steps ahead of a player a spec is generated (0: off; only entries ask).
    pub steps: u32,
    /// The queue priority of a job made ahead (0–10; ordinary jobs have 5).
    pub priority: i16,
}

/// Who first asked for a spec's media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Pre-generation, before any entry.
    Ahead,
    /// A player's entry.
    Entry,
    /// Nobody: it existed (an earlier job's asset, reused).
    Existing,
}

/// A job made ahead, until its node's first entry.
struct AheadJob {
    job: Uuid,
    /// The spec's own priority, which an entry raises it to.
    priority: i16,
    raised: bool,
}

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
        // Read from the database where there is one (`narrative::library`).
        library: None,
    })
}

/// Runs until `stop`; `wanted` comes from [`GameHandle::take_media_requests`], `moves`
/// from [`GameHandle::take_whereabouts`].
pub(crate) async fn run(
    game: GameHandle,
    pipeline: GenerationService,
    mut wanted: mpsc::Receiver<MediaWanted>,
    mut moves: mpsc::Receiver<Whereabouts>,
    ahead: Ahead,
    metrics: Arc<MediaMetrics>,
    stop: CancellationToken,
) {
    let mut events = pipeline.subscribe();
    let mut media = Tracker {
        game,
        specs: HashMap::new(),
        jobs: HashMap::new(),
        fallbacks: HashMap::new(),
        progress: HashMap::new(),
        ahead: Ahead {
            steps: ahead.steps,
            priority: ahead.priority.clamp(0, 10),
        },
        reach: Reach::new(ahead.steps),
        near: HashMap::new(),
        watchers: HashMap::new(),
        origin: HashMap::new(),
        ahead_jobs: HashMap::new(),
        entered: HashSet::new(),
        unused_credits: HashMap::new(),
        waiting: HashMap::new(),
        metrics,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            w = wanted.recv() => {
                let Some(w) = w else { return };
                media.request(&pipeline, w).await;
            }
            m = moves.recv() => {
                let Some(m) = m else { return };
                media.moved(&pipeline, m).await;
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
    ahead: Ahead,
    reach: Reach,
    /// What each loaded session has within reach (where it stands decides it).
    near: HashMap<Uuid, Arc<[Near]>>,
    /// Per spec, how many loaded sessions have it within reach.
    watchers: HashMap<Key, u32>,
    /// Who first asked for each spec's media (see [`Origin`]).
    origin: HashMap<Key, Origin>,
    /// Jobs made ahead whose node nobody has entered yet.
    ahead_jobs: HashMap<Key, AheadJob>,
    /// Specs whose node was entered (their first entry is counted).
    entered: HashSet<Key>,
    /// Credits charged for media made ahead that nobody has entered yet.
    unused_credits: HashMap<Key, i64>,
    /// Entries waiting for a spec's media: since when, where.
    waiting: HashMap<Key, Vec<(Instant, String, String)>>,
    metrics: Arc<MediaMetrics>,
}

impl Tracker {
    /// A session entered a node whose spec the simulation has no asset for.
    async fn request(&mut self, pipeline: &GenerationService, w: MediaWanted) {
        let key = (w.operation, w.prompt, w.params);
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
        self.start(pipeline, &w.scene, &w.node, key, false).await;
    }

    /// Whether a spec's media may be asked for now (not there, not being made, and not
    /// failed just now).
    fn wanted(&self, key: &Key) -> bool {
        match self.specs.get(key) {
            None => true,
            Some(State::Failed(at)) => at.elapsed() >= RETRY_AFTER,
            Some(State::Pending | State::Ready(_)) => false,
        }
    }

    /// Creates the spec's job (`ahead`: at the pre-generation priority, before any
    /// entry) and follows it.
    async fn start(
        &mut self,
        pipeline: &GenerationService,
        scene_id: &str,
        node: &str,
        key: Key,
        ahead: bool,
    ) {
        let content = self.game.content();
        let scene = content.scenes.get(scene_id);
        // The spec as the scene file has it (its fallback, its own priority).
        let written = scene
            .and_then(|s| s.nodes.iter().find(|n| n.id == node))
            .and_then(|n| {
                n.kind.generations().into_iter().find(|g| {
                    g.operation == key.0
                        && g.prompt == key.1
                        && sim::protocol::spec_params(g) == key.2
                })
            });
        if let Some(fallback) = written.and_then(|g| g.fallback.clone()) {
            self.fallbacks.insert(key.clone(), fallback);
        }
        let params = match serde_json::from_str(&key.2) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(scene = %scene_id, node = %node, error = %e, "scene media: bad spec parameters");
                self.fail(key, None, "bad_parameters", &e.to_string());
                return;
            }
        };
        let spec = GenerationSpec {
            operation: key.0.clone(),
            prompt: key.1.clone(),
            params,
            fallback: None,
        };
        let own_priority = generation::spec_request(&spec)
            .ok()
            .and_then(|r| r.priority)
            .unwrap_or(generation::DEFAULT_PRIORITY);
        // The world the scene belongs to: its credit budget counts this job.
        let world = scene.map(|s| domain::narrative::world::scene_world(s).to_owned());
        let metadata = serde_json::json!({
            "scene": scene_id,
            "node": node,
            "world": world,
            "pregenerated": ahead,
        });
        let priority = ahead.then_some(self.ahead.priority.min(own_priority));
        match pipeline
            .create_from_spec(Actor::admin(CONTENT_OWNER), &spec, metadata, priority)
            .await
        {
            Ok(job) => {
                tracing::info!(scene = %scene_id, node = %node, job = %job.id, status = ?job.status, ahead, "scene media requested");
                let origin = if job.reused_from.is_some() {
                    Origin::Existing
                } else if ahead {
                    MediaMetrics::add(&self.metrics.pregen_jobs);
                    if job.status == JobStatus::Pending {
                        self.ahead_jobs.insert(
                            key.clone(),
                            AheadJob {
                                job: job.id,
                                priority: own_priority,
                                raised: false,
                            },
                        );
                    }
                    Origin::Ahead
                } else {
                    Origin::Entry
                };
                self.origin.entry(key.clone()).or_insert(origin);
                self.settle(
                    key,
                    job.id,
                    job.status,
                    job.asset_id,
                    job.error_code.as_deref(),
                );
            }
            Err(e) => {
                tracing::error!(scene = %scene_id, node = %node, code = e.code(), error = %e, ahead, "scene media: the pipeline refused the spec");
                self.fail(key, None, e.code(), &e.to_string());
            }
        }
    }

    /// Sessions moved (or are gone): what they have within reach changes. Specs that
    /// came within reach are made ahead; jobs made ahead that nobody can reach anymore
    /// are cancelled if they have not started; entries are counted and timed.
    async fn moved(&mut self, pipeline: &GenerationService, moves: Whereabouts) {
        let content = self.game.content();
        let mut left: Vec<Key> = Vec::new();
        let mut approached: Vec<Near> = Vec::new();
        let mut entries: Vec<Near> = Vec::new();
        for (session, at) in moves {
            if let Some(old) = self.near.remove(&session) {
                for n in old.iter() {
                    if let Some(w) = self.watchers.get_mut(&n.key) {
                        *w -= 1;
                        if *w == 0 {
                            self.watchers.remove(&n.key);
                            left.push(n.key.clone());
                        }
                    }
                }
            }
            let Some((scene, node)) = at else { continue };
            let near = self.reach.near(&content, &scene, &node);
            for n in near.iter() {
                *self.watchers.entry(n.key.clone()).or_insert(0) += 1;
                if n.steps == 0 {
                    entries.push(n.clone());
                } else {
                    approached.push(n.clone());
                }
            }
            if !near.is_empty() {
                self.near.insert(session, near);
            }
        }
        for n in entries {
            self.entered(pipeline, n).await;
        }
        for key in left {
            if !self.watchers.contains_key(&key) {
                self.unreachable(pipeline, key).await;
            }
        }
        for n in approached {
            if self.wanted(&n.key) {
                self.start(pipeline, &n.scene, &n.node, n.key, true).await;
            }
        }
    }

    /// A session entered a node with this spec: its first entry is counted by what it
    /// found, the wait is timed, and a job made ahead is raised to the spec's priority.
    async fn entered(&mut self, pipeline: &GenerationService, at: Near) {
        let Near {
            key, scene, node, ..
        } = at;
        let origin = self.origin.get(&key).copied();
        let ready = matches!(self.specs.get(&key), Some(State::Ready(_)));
        let pending = matches!(self.specs.get(&key), Some(State::Pending));
        if self.entered.insert(key.clone()) {
            let found = match (origin, ready, pending) {
                (Some(Origin::Ahead), true, _) => Found::Pregenerated,
                (Some(Origin::Ahead), _, true) => Found::Pregenerating,
                (Some(Origin::Existing), true, _) => Found::Existing,
                _ => Found::Nothing,
            };
            self.metrics.first_entry(found);
            if let Some(c) = self.unused_credits.remove(&key) {
                self.metrics
                    .pregen_unused_credits
                    .fetch_sub(c, Ordering::Relaxed);
            }
        }
        if ready {
            self.observe_wait(&key, &scene, &node, Duration::ZERO);
        } else if !matches!(self.specs.get(&key), Some(State::Failed(_))) {
            self.waiting
                .entry(key.clone())
                .or_default()
                .push((Instant::now(), scene, node));
        }
        if let Some(a) = self.ahead_jobs.get_mut(&key)
            && !a.raised
            && pending
        {
            a.raised = true;
            let (job, priority) = (a.job, a.priority);
            match pipeline
                .raise_priority(Actor::admin(CONTENT_OWNER), job, priority)
                .await
            {
                Ok(Some(_)) => {
                    MediaMetrics::add(&self.metrics.pregen_raised);
                    tracing::debug!(%job, priority, "scene media: a player arrived; the job made ahead is raised");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%job, error = %e, "scene media: could not raise a job made ahead")
                }
            }
        }
    }

    /// No loaded session can reach the spec's node anymore: a job made ahead that no
    /// entry raised and that has not started is cancelled.
    async fn unreachable(&mut self, pipeline: &GenerationService, key: Key) {
        let Some(a) = self.ahead_jobs.get(&key) else {
            return;
        };
        if a.raised || !matches!(self.specs.get(&key), Some(State::Pending)) {
            return;
        }
        let job = a.job;
        match pipeline
            .cancel_unstarted(
                Actor::admin(CONTENT_OWNER),
                job,
                "not_needed",
                "made ahead of the players, and no player can reach its scene node anymore",
            )
            .await
        {
            Ok(Some(_)) => {
                MediaMetrics::add(&self.metrics.pregen_cancelled);
                tracing::info!(%job, prompt = %key.1, "scene media: no player can reach the node anymore; the job made ahead is cancelled");
                self.ahead_jobs.remove(&key);
                self.jobs.remove(&job);
                self.progress.remove(&job);
                self.specs.remove(&key);
                self.origin.remove(&key);
                self.waiting.remove(&key);
            }
            // It started meanwhile: it finishes.
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%job, error = %e, "scene media: could not cancel a job made ahead")
            }
        }
    }

    fn observe_wait(&self, key: &Key, scene: &str, node: &str, wait: Duration) {
        self.metrics.node_wait(scene, node, wait);
        match self.origin.get(key) {
            Some(Origin::Ahead) => self.metrics.wait_ahead.observe(wait),
            Some(Origin::Entry) => self.metrics.wait_on_entry.observe(wait),
            Some(Origin::Existing) | None => {}
        }
    }

    /// The spec's media went to the simulation: the entries waiting for it are timed.
    fn handed_over(&mut self, key: &Key) {
        if let Some(waits) = self.waiting.remove(key) {
            for (since, scene, node) in waits {
                self.observe_wait(key, &scene, &node, since.elapsed());
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
                self.handed_over(&key);
                self.specs.insert(key, State::Ready(fallback));
            }
            None => {
                tracing::warn!(job = ?job, code, reason = why, prompt = %key.1, "scene media: generation did not succeed and the spec has no fallback");
                self.waiting.remove(&key);
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
                self.handed_over(&key);
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
                self.charged(&generation);
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

    /// A followed job made ahead completed: its credits count as unused until its node
    /// is entered.
    fn charged(&mut self, job: &Generation) {
        let Some(key) = self.jobs.get(&job.id) else {
            return;
        };
        if self.origin.get(key) != Some(&Origin::Ahead) {
            return;
        }
        self.ahead_jobs.remove(key);
        // As budgets count it: what the provider charged, else (a provider without
        // accounts, such as `local`) the estimate.
        let c = if job.credits_charged > 0 {
            job.credits_charged
        } else {
            job.estimated_credits
        };
        self.metrics.pregen_credits.fetch_add(c, Ordering::Relaxed);
        if !self.entered.contains(key) && c > 0 {
            self.metrics
                .pregen_unused_credits
                .fetch_add(c, Ordering::Relaxed);
            *self.unused_credits.entry(key.clone()).or_insert(0) += c;
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
