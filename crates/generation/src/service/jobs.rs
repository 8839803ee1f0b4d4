//! Generation jobs: validate, create (also from a scene spec), get, list, submissions,
//! cancel, pause, resume, retry, delete.

use store::StoreError;
use store::generation::accounts;
use store::generation::assets;
use store::generation::jobs::{self, InsertOutcome, JobFilter, JobRow, NewJob, Transition};
use store::generation::submissions;
use uuid::Uuid;

use super::spec::spec_request;
use super::{GenerationService, page_limit};
use crate::error::{BudgetRefusal, GenerationError};
use crate::events::GenerationEvent;
use crate::model::{
    Actor, Asset, CreateGeneration, Generation, GenerationFilter, GenerationParams, InputRef,
    JobStatus, Operation, Page, ReuseCandidate, ReuseMode, Submission, ValidationReport,
};
use crate::outbox::Message;
use crate::params::{InputInfo, Issues, check_inputs, params_hash};
use crate::shared::Place;

/// A request that passed validation.
struct Checked {
    provider: String,
    operation: Operation,
    params: GenerationParams,
    inputs: Vec<InputRef>,
    hash: String,
    estimated_credits: i64,
    owner: Uuid,
    /// Existing assets alike what the job would make (asked for by validate and by a
    /// create with `reuse: "similar"`), most similar first.
    similar: Vec<ReuseCandidate>,
}

impl GenerationService {
    /// Validates a request. `report_reuse`: look up the asset a create would reuse (for
    /// validate; create's insert does that lookup itself, in the same statement).
    async fn check(
        &self,
        actor: Actor,
        req: &CreateGeneration,
        report_reuse: bool,
    ) -> Result<(ValidationReport, Option<Checked>), GenerationError> {
        let mut issues = Issues::default();
        let provider_id = req
            .provider
            .clone()
            .unwrap_or_else(|| self.shared.cfg.default_provider.clone());
        let provider = self.shared.providers.get(&provider_id);
        match &provider {
            None => issues.push(
                "provider",
                "unknown_provider",
                format!(
                    "unknown provider {provider_id:?}; known: {}",
                    self.shared.providers.ids().join(", ")
                ),
            ),
            Some(p) => retired_check(&mut issues, p.as_ref()),
        }
        request_rules(&mut issues, req);
        // The owner of the job: the actor (inputs must be theirs, or any for admins).
        let owner = actor.user_id.0;
        self.check_references(actor, req, &provider_id, &mut issues)
            .await?;
        let info = self.input_info(actor, req).await?;
        let mut report = ValidationReport {
            valid: false,
            provider: provider_id,
            operation: req.operation,
            canonical_params: None,
            params_hash: None,
            issues: Vec::new(),
            reusable_asset_id: None,
            similar_assets: Vec::new(),
        };
        let mut checked = None;
        if let (Some(p), Some(op)) = (provider, req.operation) {
            let inputs = check_inputs(&mut issues, op, &req.inputs, &info, p.max_inputs(op));
            let params = p.validate(op, &req.params, &inputs, &mut issues);
            let provider_id = &report.provider;
            if p.requires_account()
                && !accounts::any_could_qualify(&self.shared.pool, provider_id, owner).await?
            {
                issues.push(
                    "provider",
                    "no_account_available",
                    format!("no {provider_id} account can run jobs for this user"),
                );
            }
            if issues.is_empty() {
                let hash = params_hash(provider_id, op, &params, &inputs, &info);
                if report_reuse && !req.force_new {
                    report.reusable_asset_id = jobs::find_reusable(&self.shared.pool, owner, &hash)
                        .await?
                        .and_then(|j| j.asset_id);
                }
                if report_reuse || reuse_mode(req) == ReuseMode::Similar {
                    let min = req
                        .reuse_min_similarity
                        .unwrap_or(self.shared.cfg.reuse_min_similarity);
                    report.similar_assets = self
                        .reuse_candidates(actor, op, &params, &inputs, min)
                        .await?;
                }
                report.canonical_params = serde_json::to_value(&params).ok();
                report.params_hash = Some(hash.clone());
                checked = Some(Checked {
                    provider: provider_id.clone(),
                    operation: op,
                    estimated_credits: p.estimated_credits(op, &params),
                    params,
                    inputs,
                    hash,
                    owner,
                    similar: report.similar_assets.clone(),
                });
            }
        }
        report.valid = issues.is_empty();
        report.issues = issues.0;
        Ok((report, checked))
    }

    /// The parent generation and the preferred account must exist and be the actor's
    /// to use (the account also of the job's provider).
    async fn check_references(
        &self,
        actor: Actor,
        req: &CreateGeneration,
        provider_id: &str,
        issues: &mut Issues,
    ) -> Result<(), GenerationError> {
        let owner = actor.user_id.0;
        if let Some(pid) = req.parent_generation_id {
            match jobs::get(&self.shared.pool, pid).await {
                Ok(j) if actor.may_see(j.user_id) => {}
                Ok(_) | Err(StoreError::NotFound(_)) => {
                    issues.push("parent_generation_id", "not_found", "no such generation")
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(aid) = req.preferred_account_id {
            match accounts::get(&self.shared.pool, aid).await {
                Ok(a)
                    if a.provider == provider_id
                        && (actor.is_admin || a.owner_id.is_none_or(|o| o == owner)) => {}
                Ok(_) | Err(StoreError::NotFound(_)) => issues.push(
                    "preferred_account_id",
                    "not_found",
                    format!("no {provider_id} account with this id"),
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// What validation knows of each input asset (`None`: missing, or not the actor's
    /// to read).
    async fn input_info(
        &self,
        actor: Actor,
        req: &CreateGeneration,
    ) -> Result<Vec<Option<InputInfo>>, GenerationError> {
        let ids: Vec<Uuid> = req.inputs.iter().map(|i| i.asset_id).collect();
        let found: Vec<_> = if ids.is_empty() {
            Vec::new()
        } else {
            // An asset whose file is still at the provider cannot be an input yet.
            assets::get_many(&self.shared.pool, &ids)
                .await?
                .into_iter()
                .filter(|r| r.library.sync_status == crate::model::SyncStatus::Downloaded)
                .map(|r| r.fields)
                .collect()
        };
        Ok(req
            .inputs
            .iter()
            .map(|i| {
                found
                    .iter()
                    .find(|a| a.id == i.asset_id && actor.may_read_asset(a.owner_id))
                    .map(|a| InputInfo {
                        asset_id: a.id,
                        media_type: a.media_type,
                        content_hash: a.content_hash.clone(),
                    })
            })
            .collect())
    }

    /// Validates a request exactly as [`Self::create`] would, without creating.
    pub async fn validate(
        &self,
        actor: Actor,
        req: &CreateGeneration,
    ) -> Result<ValidationReport, GenerationError> {
        Ok(self.check(actor, req, true).await?.0)
    }

    /// Creates a job (or returns the job already holding the idempotency key). With the
    /// same parameter hash as a completed job of the user and not `force_new`, the new
    /// job is created completed with that asset (`reused_from` set), paying nothing.
    /// The key lookup, the reuse lookup and the insert are one statement (one round
    /// trip; with a per-user limit, inside a transaction holding the user's lock).
    ///
    /// Errors: `invalid_parameters`, `no_account_available`, `limit_exceeded`,
    /// `conflict` (idempotency key reused with other parameters).
    pub async fn create(
        &self,
        actor: Actor,
        req: CreateGeneration,
    ) -> Result<Generation, GenerationError> {
        let (report, checked) = self.check(actor, &req, false).await?;
        let Some(c) = checked else {
            if report
                .issues
                .iter()
                .any(|i| i.code == "no_account_available")
                && report.issues.len() == 1
            {
                return Err(GenerationError::NoAccountAvailable(report.provider));
            }
            return Err(GenerationError::InvalidParameters(report.issues));
        };
        let similar = c.similar.clone();
        let mut new = self.new_job(&req, c)?;
        if reuse_mode(&req) == ReuseMode::Similar {
            new.reuse_asset_id = similar.first().map(|s| s.asset.id);
        }
        let hash = new.params_hash.clone();
        let limit = if actor.is_admin {
            None
        } else {
            self.shared.cfg.user_active_limit
        };
        let budgets = self.budgets_of(&new).await?;
        let estimate = new.estimated_credits;
        let (inserted, place) = if !budgets.is_empty() {
            let out = jobs::insert_within(&self.shared.pool, &new, limit, &budgets).await?;
            (out, Place::Unknown)
        } else if new.idempotency_key.is_some() || new.reuse_asset_id.is_some() {
            (
                jobs::insert(&self.shared.pool, &new, limit).await?,
                Place::Unknown,
            )
        } else {
            self.shared.insert_job(new, limit).await?
        };
        match inserted {
            InsertOutcome::Created(row) => {
                let mut g = self.created(row, place).await?;
                g.similar_assets = similar;
                Ok(g)
            }
            InsertOutcome::Existing(row) => {
                if row.params_hash != hash {
                    return Err(GenerationError::Conflict(
                        "the idempotency key was used with other parameters".into(),
                    ));
                }
                Ok(row.try_into()?)
            }
            InsertOutcome::LimitExceeded { active } => Err(GenerationError::LimitExceeded {
                active,
                limit: limit.unwrap_or(0),
            }),
            InsertOutcome::OverBudget(o) => {
                tracing::info!(scope = %o.scope, scope_id = %o.scope_id, period = o.period, limit = o.limit, spent = o.spent, estimate, "job refused: budget exceeded");
                Err(GenerationError::BudgetExceeded(BudgetRefusal {
                    scope: o.scope,
                    scope_id: o.scope_id,
                    period: o.period,
                    limit: o.limit,
                    spent: o.spent,
                    estimate,
                }))
            }
        }
    }

    /// The row a checked request becomes.
    fn new_job(&self, req: &CreateGeneration, c: Checked) -> Result<NewJob, GenerationError> {
        Ok(NewJob {
            id: Uuid::now_v7(),
            user_id: c.owner,
            provider: c.provider,
            operation: c.operation,
            params: serde_json::to_value(&c.params)
                .map_err(|e| GenerationError::Conflict(e.to_string()))?,
            inputs: serde_json::to_value(&c.inputs)
                .map_err(|e| GenerationError::Conflict(e.to_string()))?,
            params_hash: c.hash.clone(),
            priority: req.priority.unwrap_or(crate::DEFAULT_PRIORITY),
            scheduled_at: req.scheduled_at,
            idempotency_key: req.idempotency_key.clone(),
            force_new: reuse_mode(req) == ReuseMode::Never,
            preferred_account_id: req.preferred_account_id,
            parent_generation_id: req.parent_generation_id,
            max_retries: req
                .max_retries
                .map(|m| m as i32)
                .unwrap_or(self.shared.cfg.max_retries as i32),
            metadata: req
                .metadata
                .clone()
                .unwrap_or_else(|| serde_json::json!({})),
            estimated_credits: c.estimated_credits,
            deadline_at: req.deadline_at,
            reuse_asset_id: None,
        })
    }

    /// Announces a created job: completed at once when it reused an asset, else due
    /// (the workers are woken).
    async fn created(&self, row: JobRow, place: Place) -> Result<Generation, GenerationError> {
        let mut g: Generation = row.try_into()?;
        match place {
            Place::Known(Some(p)) => {
                g.queue_position = Some(p.position);
                g.estimated_start_at = p.estimated_start_at;
            }
            Place::Known(None) => {}
            Place::Unknown => self.place(std::slice::from_mut(&mut g)).await?,
        }
        tracing::info!(
            job_id = %g.id,
            user_id = %g.user_id.0,
            provider = %g.provider,
            operation = g.operation.as_str(),
            status = g.status.as_str(),
            "job created"
        );
        self.shared.emit(GenerationEvent::JobCreated {
            generation: Box::new(g.clone()),
        });
        if g.status == JobStatus::Completed {
            if let Some(aid) = g.asset_id {
                let asset: Asset = assets::get(&self.shared.pool, aid).await?.into();
                self.shared.emit(GenerationEvent::JobCompleted {
                    generation: Box::new(g.clone()),
                    asset: Box::new(asset),
                });
            }
        } else {
            // Only once `job:created` is out: a worker's `job:updated` comes after it.
            self.shared.signal_work();
        }
        Ok(g)
    }

    /// Creates a job from a scene node's generation spec (`operation`, `prompt`, free-form
    /// `params`, which may also name `provider`, `priority`, `idempotency_key` and
    /// `inputs`; see [`spec_request`]). `metadata` travels with the job and its events
    /// (e.g. scene and node ids).
    /// `priority` replaces the spec's own (e.g. lower, for media made ahead of need).
    pub async fn create_from_spec(
        &self,
        actor: Actor,
        spec: &domain::narrative::scene::GenerationSpec,
        metadata: serde_json::Value,
        priority: Option<i16>,
    ) -> Result<Generation, GenerationError> {
        let mut req = spec_request(spec)?;
        req.metadata = Some(metadata);
        if priority.is_some() {
            req.priority = priority;
        }
        self.create(actor, req).await
    }

    async fn visible_job(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        let row = jobs::get(&self.shared.pool, id).await?;
        if !actor.may_see(row.user_id) {
            return Err(GenerationError::NotFound("generation"));
        }
        Ok(row.try_into()?)
    }

    /// The job, with its place in the queue while pending.
    pub async fn get(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        let mut g = self.visible_job(actor, id).await?;
        self.place(std::slice::from_mut(&mut g)).await?;
        Ok(g)
    }

    /// Fills in `queue_position` and `estimated_start_at` of the pending jobs among
    /// `gens` (one query; see [`jobs::queue_places`]).
    pub(super) async fn place(&self, gens: &mut [Generation]) -> Result<(), GenerationError> {
        let ids: Vec<Uuid> = gens
            .iter()
            .filter(|g| g.status == JobStatus::Pending)
            .map(|g| g.id)
            .collect();
        for p in jobs::queue_places(&self.shared.pool, &ids).await? {
            if let Some(g) = gens.iter_mut().find(|g| g.id == p.id) {
                g.queue_position = Some(p.position);
                g.estimated_start_at = p.estimated_start_at;
            }
        }
        Ok(())
    }

    /// Newest first. Users see their own jobs; admins all (or `filter.user_id`'s).
    pub async fn list(
        &self,
        actor: Actor,
        filter: &GenerationFilter,
    ) -> Result<Page<Generation>, GenerationError> {
        let limit = page_limit(filter.limit);
        let user_id = if actor.is_admin {
            filter.user_id
        } else {
            Some(actor.user_id.0)
        };
        let f = JobFilter {
            user_id,
            statuses: filter.status.clone(),
            provider: filter.provider.clone(),
            operation: filter.operation,
            created_after: filter.created_after,
            created_before: filter.created_before,
            before: None,
            offset: filter.offset as i64,
            limit: limit as i64,
        };
        let (rows, total) = jobs::list(&self.shared.pool, &f).await?;
        let mut items = rows
            .into_iter()
            .map(Generation::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        self.place(&mut items).await?;
        Ok(Page {
            items,
            total,
            offset: filter.offset,
            limit,
        })
    }

    /// The provider submissions of a job (one per attempt at most).
    pub async fn submissions(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<Vec<Submission>, GenerationError> {
        self.visible_job(actor, id).await?;
        Ok(submissions::list_for_job(&self.shared.pool, id)
            .await?
            .into_iter()
            .map(Submission::from)
            .collect())
    }

    async fn transition(
        &self,
        actor: Actor,
        id: Uuid,
        t: Transition,
    ) -> Result<Generation, GenerationError> {
        self.visible_job(actor, id).await?;
        let mut g: Generation = jobs::transition(&self.shared.pool, id, t)
            .await?
            .try_into()?;
        self.place(std::slice::from_mut(&mut g)).await?;
        if t == Transition::Cancel {
            // The attempt running it (here or, through Redis, on another node) stops now
            // instead of at its next heartbeat.
            self.shared.stop_running(id);
            self.shared.publish(Message::Cancel { job_id: id });
            self.shared.emit(GenerationEvent::JobFailed {
                generation: Box::new(g.clone()),
            });
        } else {
            self.shared.emit(GenerationEvent::JobUpdated {
                generation: Box::new(g.clone()),
            });
        }
        if matches!(t, Transition::Resume | Transition::Retry) {
            self.shared.signal_work();
        }
        Ok(g)
    }

    /// pending, paused or processing → cancelled, once: the account slot is given back
    /// at once, the running attempt stops polling (at once in this process or, with
    /// Redis, on any node; else at its next heartbeat), asks the provider to stop where
    /// its contract has a call for it, and writes nothing more, even if the provider
    /// finishes meanwhile.
    pub async fn cancel(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.transition(actor, id, Transition::Cancel).await
    }

    /// pending or paused → cancelled with `code` and `message`, only if it has not
    /// started (so nothing is charged and no provider is involved); `Ok(None)` when it
    /// started or ended meanwhile, and is left alone. For the server's own jobs, e.g.
    /// scene media generated ahead of players that no player can reach anymore.
    pub async fn cancel_unstarted(
        &self,
        actor: Actor,
        id: Uuid,
        code: &str,
        message: &str,
    ) -> Result<Option<Generation>, GenerationError> {
        self.visible_job(actor, id).await?;
        let Some(row) = jobs::cancel_unstarted(&self.shared.pool, id, code, message).await? else {
            return Ok(None);
        };
        let g: Generation = row.try_into()?;
        self.shared.emit(GenerationEvent::JobFailed {
            generation: Box::new(g.clone()),
        });
        Ok(Some(g))
    }

    /// Raises a job that has not started to `priority` (0–10; never lowers it), which
    /// moves it ahead in the queue; `Ok(None)` when it started, ended or already stands
    /// that high.
    pub async fn raise_priority(
        &self,
        actor: Actor,
        id: Uuid,
        priority: i16,
    ) -> Result<Option<Generation>, GenerationError> {
        self.visible_job(actor, id).await?;
        let Some(row) = jobs::raise_priority(&self.shared.pool, id, priority.clamp(0, 10)).await?
        else {
            return Ok(None);
        };
        let mut g: Generation = row.try_into()?;
        self.place(std::slice::from_mut(&mut g)).await?;
        self.shared.emit(GenerationEvent::JobUpdated {
            generation: Box::new(g.clone()),
        });
        Ok(Some(g))
    }

    /// pending → paused.
    pub async fn pause(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.transition(actor, id, Transition::Pause).await
    }

    /// paused → pending.
    pub async fn resume(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        self.transition(actor, id, Transition::Resume).await
    }

    /// failed or cancelled → pending, retries reset. Like [`Self::create`], refused with
    /// [`GenerationError::LimitExceeded`] when the user (not an admin) already has
    /// `user_active_limit` unfinished jobs.
    pub async fn retry(&self, actor: Actor, id: Uuid) -> Result<Generation, GenerationError> {
        let limit = if actor.is_admin {
            None
        } else {
            self.shared.cfg.user_active_limit
        };
        let Some(limit) = limit else {
            return self.transition(actor, id, Transition::Retry).await;
        };
        let job = self.visible_job(actor, id).await?;
        let mut g: Generation =
            match jobs::retry_within_limit(&self.shared.pool, id, job.user_id.0, limit).await? {
                jobs::RetryOutcome::Retried(row) => (*row).try_into()?,
                jobs::RetryOutcome::LimitExceeded { active } => {
                    return Err(GenerationError::LimitExceeded { active, limit });
                }
            };
        self.place(std::slice::from_mut(&mut g)).await?;
        self.shared.emit(GenerationEvent::JobUpdated {
            generation: Box::new(g.clone()),
        });
        self.shared.signal_work();
        Ok(g)
    }

    /// Deletes a job that is not processing (its asset stays).
    pub async fn delete(&self, actor: Actor, id: Uuid) -> Result<(), GenerationError> {
        self.visible_job(actor, id).await?;
        jobs::delete(&self.shared.pool, id).await?;
        Ok(())
    }
}

/// The rules of the request's own fields (not its provider's parameters).
fn request_rules(issues: &mut Issues, req: &CreateGeneration) {
    if req.operation.is_none() {
        issues.push("operation", "required", "an operation is required");
    }
    if let Some(p) = req.priority
        && !(0..=10).contains(&p)
    {
        issues.push("priority", "out_of_range", "0 to 10");
    }
    if let Some(m) = req.max_retries
        && m > 20
    {
        issues.push("max_retries", "out_of_range", "at most 20");
    }
    if let Some(k) = &req.idempotency_key
        && (k.is_empty() || k.len() > 200)
    {
        issues.push("idempotency_key", "invalid_value", "1 to 200 characters");
    }
    if let Some(m) = &req.metadata
        && !m.is_object()
    {
        issues.push("metadata", "invalid_value", "must be an object");
    }
    if let Some(d) = req.deadline_at {
        deadline_rule(issues, d, chrono::Utc::now());
    }
    if req.force_new && matches!(req.reuse, Some(ReuseMode::Exact | ReuseMode::Similar)) {
        issues.push(
            "reuse",
            "conflict",
            "force_new asks never to reuse; leave one of them out",
        );
    }
    if let Some(m) = req.reuse_min_similarity
        && !(0.0..=1.0).contains(&m)
    {
        issues.push("reuse_min_similarity", "out_of_range", "0 to 1");
    }
}

/// What a create may reuse: `force_new` is `never`.
fn reuse_mode(req: &CreateGeneration) -> ReuseMode {
    if req.force_new {
        ReuseMode::Never
    } else {
        req.reuse.unwrap_or_default()
    }
}

/// Candidates per reuse lookup.
const REUSE_CANDIDATES: i64 = 5;

impl GenerationService {
    /// Existing assets the actor may read that are alike what a job would make, at
    /// least `min` similar, most similar first: generated assets of the same operation
    /// and inputs whose prompt is alike (trigram similarity), and, with an embedder that
    /// has a text side and a job without inputs, the videos nearest to the prompt's
    /// embedding.
    async fn reuse_candidates(
        &self,
        actor: Actor,
        op: Operation,
        params: &GenerationParams,
        inputs: &[InputRef],
        min: f32,
    ) -> Result<Vec<ReuseCandidate>, GenerationError> {
        let Some(prompt) = params.prompt.as_deref().filter(|p| !p.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        let owners: Option<Vec<Uuid>> =
            (!actor.is_admin).then(|| vec![actor.user_id.0, domain::user::CONTENT_OWNER.0]);
        let input_ids: Vec<Uuid> = inputs.iter().map(|i| i.asset_id).collect();
        let mut found: Vec<(Uuid, f64, &'static str)> =
            store::generation::library::similar_prompts(
                &self.shared.pool,
                &store::generation::library::PromptQuery {
                    prompt,
                    operation: op,
                    owners: owners.as_deref(),
                    inputs: &input_ids,
                    min_similarity: min,
                    limit: REUSE_CANDIDATES,
                },
            )
            .await?
            .into_iter()
            .map(|(id, s)| (id, s, "prompt"))
            .collect();
        if inputs.is_empty()
            && let Some(embedder) = self.shared.embedder.get().cloned()
        {
            // An embeddings server that fails leaves the prompt's matches.
            match embedder.embed_text(prompt).await {
                Ok(Some(v)) => {
                    if let Ok(v) = crate::embed::to_column(v) {
                        let vector = store::generation::embeddings::vector_text(&v);
                        let near = store::generation::embeddings::nearest(
                            &self.shared.pool,
                            &store::generation::embeddings::NearestQuery {
                                vector: &vector,
                                embedder: embedder.id(),
                                exclude: None,
                                owners: owners.as_deref(),
                                media_type: Some(crate::model::MediaType::Video),
                                created_after: None,
                                created_before: None,
                                tags: &[],
                                include_archived: false,
                                limit: REUSE_CANDIDATES,
                            },
                        )
                        .await?;
                        found.extend(
                            near.into_iter()
                                .map(|(id, d)| (id, 1.0 - d, "embedding"))
                                .filter(|c| c.1 >= f64::from(min)),
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("reuse lookup: the text embedding failed: {e}"),
            }
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut seen = std::collections::HashSet::new();
        found.retain(|c| seen.insert(c.0));
        found.truncate(REUSE_CANDIDATES as usize);
        let ids: Vec<Uuid> = found.iter().map(|c| c.0).collect();
        let rows = assets::get_many(&self.shared.pool, &ids).await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, similarity, by)| {
                let row = rows.iter().find(|r| r.fields.id == id)?;
                actor
                    .may_read_asset(row.fields.owner_id)
                    .then(|| ReuseCandidate {
                        asset: row.clone().into(),
                        similarity: (similarity * 1000.0).round() / 1000.0,
                        matched_by: by.into(),
                    })
            })
            .collect())
    }
}

/// How far ahead a deadline may be.
pub const MAX_DEADLINE_AHEAD: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// A deadline lies after `now` and at most [`MAX_DEADLINE_AHEAD`] later.
fn deadline_rule(
    issues: &mut Issues,
    deadline: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) {
    if deadline <= now {
        issues.push("deadline_at", "out_of_range", "must be in the future");
    } else if deadline - now > MAX_DEADLINE_AHEAD {
        issues.push("deadline_at", "out_of_range", "at most 30 days ahead");
    }
}

/// A retired provider takes no new jobs (unless its entry says the configured base URL
/// still serves the contract): `provider: retired`, naming the date.
pub(crate) fn retired_check(issues: &mut Issues, p: &dyn crate::provider::Provider) {
    if let Some(r) = p.retirement()
        && !r.accepts_jobs
    {
        issues.push(
            "provider",
            "retired",
            format!(
                "{} was retired on {}: its API is turned off; use another provider",
                p.id(),
                r.on
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline_issues(ahead: chrono::TimeDelta) -> Vec<String> {
        let now = chrono::Utc::now();
        let mut issues = Issues::default();
        deadline_rule(&mut issues, now + ahead, now);
        issues.0.into_iter().map(|i| i.message).collect()
    }

    #[test]
    fn a_deadline_lies_ahead_within_thirty_days() {
        assert!(deadline_issues(chrono::TimeDelta::seconds(1)).is_empty());
        assert!(deadline_issues(MAX_DEADLINE_AHEAD).is_empty());
        assert_eq!(
            deadline_issues(chrono::TimeDelta::zero()),
            ["must be in the future"]
        );
        assert_eq!(
            deadline_issues(chrono::TimeDelta::seconds(-5)),
            ["must be in the future"]
        );
        assert_eq!(
            deadline_issues(MAX_DEADLINE_AHEAD + chrono::TimeDelta::seconds(1)),
            ["at most 30 days ahead"]
        );
    }
}
