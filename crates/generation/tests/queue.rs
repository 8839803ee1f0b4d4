//! Queue, leases, accounts, idempotency and reuse against a real PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use generation::fakes::instant::InstantProvider;
use generation::model::{
    CreateGeneration, GenerationParams, JobStatus, Operation, SubmissionStatus,
};
use generation::{Executed, GenerationError, Outcome};

#[tokio::test]
async fn local_job_completes_with_asset() {
    let e = env().await;
    let mut events = e.svc.subscribe();
    let g = e
        .svc
        .create(e.user, t2v("local", "a red fox"))
        .await
        .unwrap();
    assert_eq!(g.status, JobStatus::Pending);
    let w = e.svc.worker();
    let done = w.try_execute_once().await.unwrap();
    let Executed::Ran {
        outcome: Outcome::Completed { asset_id },
        ..
    } = done
    else {
        // Seen once in a clean-clone CI run (LeaseLost) and never here: say where the
        // job stood, and what its submissions say, to find out why.
        let now = e.svc.get(e.user, g.id).await;
        let subs = e.svc.submissions(e.user, g.id).await;
        panic!("{done:?}; the job now: {now:?}; its submissions: {subs:?}")
    };
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.status, JobStatus::Completed);
    assert_eq!(g.asset_id, Some(asset_id));
    let a = e.svc.get_asset(e.user, asset_id).await.unwrap();
    assert_eq!(a.mime, "video/mp4");
    assert!(a.width.unwrap() > 0 && a.duration_ms.unwrap() > 0 && a.has_thumbnail);
    let f = e.svc.asset_file(e.user, asset_id).await.unwrap();
    let bytes = std::fs::read(&f.path).unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(f.size, bytes.len() as u64);
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].status, SubmissionStatus::Succeeded);
    let mut kinds = Vec::new();
    while let Ok(ev) = events.try_recv() {
        // Progress updates come as often as the render reports them: one entry for all.
        if !(ev.kind() == "job:updated" && kinds.last() == Some(&"job:updated")) {
            kinds.push(ev.kind());
        }
    }
    assert_eq!(
        kinds,
        [
            "job:created",
            "job:updated",
            "asset:created",
            "job:completed"
        ]
    );
    // Other users do not see it; admins do.
    let other = generation::model::Actor::user(common::user(&e.db, domain::user::Role::User).await);
    assert!(matches!(
        e.svc.get(other, g.id).await,
        Err(GenerationError::NotFound(_))
    ));
    assert!(e.svc.get_asset(e.admin, asset_id).await.is_ok());
    assert_eq!(w.try_execute_once().await.unwrap(), Executed::EmptyQueue);
}

#[tokio::test]
async fn validation_matches_create() {
    let e = env().await;
    let bad = CreateGeneration {
        provider: Some("pixverse".into()),
        operation: Some(Operation::TextToVideo),
        params: GenerationParams {
            prompt: Some("x".into()),
            duration: Some(7),
            quality: Some("1080p".into()),
            motion_mode: Some("fast".into()),
            seed: Some(-1),
            ..Default::default()
        },
        ..Default::default()
    };
    e.svc
        .create_account(e.admin, account("pixverse", "k"))
        .await
        .unwrap();
    let report = e.svc.validate(e.user, &bad).await.unwrap();
    assert!(!report.valid);
    let fields: Vec<&str> = report.issues.iter().map(|i| i.field.as_str()).collect();
    assert!(fields.contains(&"params.duration"), "{fields:?}");
    assert!(fields.contains(&"params.seed"));
    match e.svc.create(e.user, bad).await {
        Err(GenerationError::InvalidParameters(issues)) => assert_eq!(issues, report.issues),
        other => panic!("{other:?}"),
    }
    // OpenAI (retired, so refused whatever the request): seconds must be 4/8/12 and
    // extend is unsupported.
    let mut o = t2v("openai", "x");
    o.params.duration = Some(5);
    o.operation = Some(Operation::VideoExtend);
    let r = e.svc.validate(e.user, &o).await.unwrap();
    let codes: Vec<&str> = r.issues.iter().map(|i| i.code.as_str()).collect();
    assert!(
        codes.contains(&"retired")
            && codes.contains(&"unsupported")
            && codes.contains(&"invalid_value"),
        "{codes:?}"
    );
    // No replicate account at all: a clear code.
    let ok = t2v("replicate", "x");
    assert!(matches!(
        e.svc.create(e.user, ok).await,
        Err(GenerationError::NoAccountAvailable(_))
    ));
    // Unknown provider, missing prompt.
    let r = e.svc.validate(e.user, &t2v("nope", "x")).await.unwrap();
    assert_eq!(r.issues[0].code, "unknown_provider");
    let mut np = t2v("local", "x");
    np.params.prompt = None;
    let r = e.svc.validate(e.user, &np).await.unwrap();
    assert_eq!(r.issues[0].field, "params.prompt");
    // A valid one reports canonical params and a hash.
    let r = e.svc.validate(e.user, &t2v("local", "ok")).await.unwrap();
    assert!(r.valid && r.params_hash.is_some());
    assert_eq!(r.canonical_params.unwrap()["duration"], 2);
}

#[tokio::test]
async fn idempotency_key_and_hash_reuse() {
    let e = env().await;
    let mut req = t2v("local", "same prompt");
    req.idempotency_key = Some("k1".into());
    let a = e.svc.create(e.user, req.clone()).await.unwrap();
    let b = e.svc.create(e.user, req.clone()).await.unwrap();
    assert_eq!(a.id, b.id);
    let mut other = req.clone();
    other.params.prompt = Some("different".into());
    assert!(matches!(
        e.svc.create(e.user, other).await,
        Err(GenerationError::Conflict(_))
    ));
    e.svc.worker().try_execute_once().await.unwrap();
    let a = e.svc.get(e.user, a.id).await.unwrap();
    assert_eq!(a.status, JobStatus::Completed);
    // Same parameters, no key: reuses the asset, completed at once, nothing queued.
    let c = e
        .svc
        .create(e.user, t2v("local", "same prompt"))
        .await
        .unwrap();
    assert_eq!(c.status, JobStatus::Completed);
    assert_eq!(c.asset_id, a.asset_id);
    assert_eq!(c.reused_from, Some(a.id));
    assert_eq!(
        e.svc.worker().try_execute_once().await.unwrap(),
        Executed::EmptyQueue
    );
    // force_new generates again.
    let mut f = t2v("local", "same prompt");
    f.force_new = true;
    let f = e.svc.create(e.user, f).await.unwrap();
    assert_eq!(f.status, JobStatus::Pending);
    // Validate tells about the reusable asset.
    let r = e
        .svc
        .validate(e.user, &t2v("local", "same prompt"))
        .await
        .unwrap();
    assert_eq!(r.reusable_asset_id, a.asset_id);
}

#[tokio::test]
async fn per_user_limit_and_transitions() {
    let mut cfg = fast_config();
    cfg.user_active_limit = Some(2);
    let e = env_with(cfg, None).await;
    let a = e.svc.create(e.user, t2v("local", "1")).await.unwrap();
    let b = e.svc.create(e.user, t2v("local", "2")).await.unwrap();
    let err = e.svc.create(e.user, t2v("local", "3")).await.unwrap_err();
    assert_eq!(err.code(), "limit_exceeded");
    // pause → not claimable; resume → claimable.
    let p = e.svc.pause(e.user, a.id).await.unwrap();
    assert_eq!(p.status, JobStatus::Paused);
    assert!(matches!(
        e.svc.pause(e.user, a.id).await,
        Err(GenerationError::Conflict(_))
    ));
    let c = e.svc.cancel(e.user, b.id).await.unwrap();
    assert_eq!(c.status, JobStatus::Cancelled);
    assert_eq!(
        e.svc.worker().try_execute_once().await.unwrap(),
        Executed::EmptyQueue
    );
    e.svc.resume(e.user, a.id).await.unwrap();
    let r = e.svc.retry(e.user, b.id).await.unwrap();
    assert_eq!(r.status, JobStatus::Pending);
    let w = e.svc.worker();
    assert!(matches!(
        w.try_execute_once().await.unwrap(),
        Executed::Ran { .. }
    ));
    assert!(matches!(
        w.try_execute_once().await.unwrap(),
        Executed::Ran { .. }
    ));
    e.svc.delete(e.user, a.id).await.unwrap();
    assert!(matches!(
        e.svc.get(e.user, a.id).await,
        Err(GenerationError::NotFound(_))
    ));
    let page = e.svc.list(e.user, &Default::default()).await.unwrap();
    assert_eq!(page.total, 1);
    let filtered = e
        .svc
        .list(
            e.user,
            &generation::model::GenerationFilter {
                status: Some(vec![JobStatus::Failed]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(filtered.total, 0);
}

#[tokio::test]
async fn priority_and_schedule_order_claims() {
    let e = env().await;
    let mut low = t2v("local", "low");
    low.priority = Some(1);
    let mut high = t2v("local", "high");
    high.priority = Some(9);
    let mut later = t2v("local", "later");
    later.priority = Some(10);
    later.scheduled_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let low = e.svc.create(e.user, low).await.unwrap();
    let high = e.svc.create(e.user, high).await.unwrap();
    e.svc.create(e.user, later).await.unwrap();
    let w = e.svc.worker();
    let claimed = w.claim(10).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.id()).collect();
    assert_eq!(ids, vec![high.id, low.id]);
}

/// A worker "killed" mid-job (its attempt dropped after the provider accepted the
/// submission) leaves the job to another worker once its lease expires; the job
/// completes exactly once, with at most one provider submission per attempt, and the
/// new attempt adopts the running submission instead of paying again.
#[tokio::test]
async fn killed_worker_job_completes_exactly_once() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    fake.control.set_polls_until_done(3);
    let mut cfg = fast_config();
    cfg.lease = Duration::from_millis(600);
    cfg.heartbeat = Duration::from_millis(150);
    cfg.providers.set("pixverse", "poll_interval_secs", 0.1);
    let e = env_with(pixverse_at(cfg, &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let g = e
        .svc
        .create(e.user, t2v("pixverse", "a storm"))
        .await
        .unwrap();

    let w1 = e.svc.worker_named("w1");
    let job = w1.claim(1).await.unwrap().pop().unwrap();
    let run = tokio::spawn({
        let w1 = w1.clone();
        async move { w1.execute(job).await }
    });
    // Wait until the provider accepted the submission, then kill the worker.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let subs = e.svc.submissions(e.user, g.id).await.unwrap();
        if subs.first().is_some_and(|s| s.remote_id.is_some()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the provider never accepted the submission"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort();
    let _ = run.await;
    assert_eq!(fake.control.count(generation::fakes::Endpoint::Submit), 1);
    // The account slot is still held by the dead attempt.
    let acc = &e
        .svc
        .list_accounts(e.admin, Some("pixverse"))
        .await
        .unwrap()[0];
    assert_eq!(acc.current_jobs, 1);

    let w2 = e.svc.worker_named("w2");
    // Before the lease expires nothing can be claimed.
    assert_eq!(w2.try_execute_once().await.unwrap(), Executed::EmptyQueue);
    // The dead attempt no longer heartbeats, so its lease runs out and the job is
    // reclaimed, once.
    assert_eq!(reclaim_when_expired(&w2).await, 1);
    let out = w2.try_execute_once().await.unwrap();
    assert!(
        matches!(
            out,
            Executed::Ran {
                outcome: Outcome::Completed { .. },
                ..
            }
        ),
        "{out:?}"
    );
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.status, JobStatus::Completed);
    assert_eq!(g.attempt, 2);
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(
        subs.len(),
        1,
        "the second attempt adopted the first submission"
    );
    assert_eq!(subs[0].status, SubmissionStatus::Succeeded);
    assert_eq!(fake.control.count(generation::fakes::Endpoint::Submit), 1);
    let assets = e
        .svc
        .list_assets(e.user, &Default::default())
        .await
        .unwrap();
    assert_eq!(assets.total, 1);
    let acc = &e
        .svc
        .list_accounts(e.admin, Some("pixverse"))
        .await
        .unwrap()[0];
    assert_eq!(acc.current_jobs, 0);
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

/// Polls `reclaim_expired` (bounded) until it reclaims something, and returns how
/// many: leases run on the database's clock, so the test waits for the expiry to be
/// observable rather than sleeping past it.
async fn reclaim_when_expired(w: &generation::Worker) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = w.reclaim_expired().await.unwrap();
        if n > 0 {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lease expired within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A heartbeat that lands just after the attempt's own completion was committed finds
/// the job no longer processing; that is the attempt ending, not a lost lease: the
/// outcome is `Completed` and the completion's events go out. (With a heartbeat every
/// millisecond the race is hit on most jobs.)
#[tokio::test]
async fn a_heartbeat_after_the_completion_does_not_lose_the_attempt() {
    let mut cfg = fast_config();
    cfg.heartbeat = Duration::from_millis(1);
    let fast = InstantProvider::new("fast", false, Duration::from_millis(5));
    let reg = registry_with(&cfg, vec![fast]);
    let e = env_with(cfg, Some(reg)).await;
    let mut events = e.svc.subscribe();
    let w = e.svc.worker_named("hb");
    for i in 0..30 {
        let g = e
            .svc
            .create(e.user, t2v("fast", &format!("race {i}")))
            .await
            .unwrap();
        let done = w.try_execute_once().await.unwrap();
        assert!(
            matches!(
                done,
                Executed::Ran {
                    outcome: Outcome::Completed { .. },
                    ..
                }
            ),
            "job {i}: {done:?}"
        );
        let seen = e.svc.get(e.user, g.id).await.unwrap();
        assert_eq!(seen.status, JobStatus::Completed);
    }
    let mut completed = 0;
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, generation::GenerationEvent::JobCompleted { .. }) {
            completed += 1;
        }
    }
    assert_eq!(completed, 30, "every completion announced");
}

/// Each attempt starts its progress from 0: a job requeued at 60% shows 0% when it is
/// claimed again, not the first attempt's figure.
#[tokio::test]
async fn a_new_attempt_starts_its_progress_from_zero() {
    let mut cfg = fast_config();
    cfg.lease = Duration::from_millis(200);
    let e = env_with(cfg, None).await;
    let g = e.svc.create(e.user, t2v("local", "a tide")).await.unwrap();
    let w1 = e.svc.worker_named("w1");
    let job = w1.claim(1).await.unwrap().pop().unwrap();
    assert_eq!(job.id(), g.id);
    assert!(
        store::generation::jobs::set_progress(e.svc.pool(), job.id(), job.attempt(), "w1", 0.6)
            .await
            .unwrap()
    );
    let seen = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(seen.progress, Some(60.0));
    // The worker goes silent; its lease runs out and the job is claimed again.
    let w2 = e.svc.worker_named("w2");
    assert_eq!(reclaim_when_expired(&w2).await, 1);
    let again = w2.claim(1).await.unwrap().pop().unwrap();
    assert_eq!(again.attempt(), job.attempt() + 1);
    let seen = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(
        (seen.status, seen.progress),
        (JobStatus::Processing, Some(0.0))
    );
}

/// A stale attempt that lost its lease cannot complete the job (fencing).
#[tokio::test]
async fn stale_attempt_is_fenced() {
    let mut cfg = fast_config();
    cfg.lease = Duration::from_millis(300);
    cfg.heartbeat = Duration::from_secs(60);
    let slow = InstantProvider::new("slow", false, Duration::from_millis(900));
    let reg = registry_with(&cfg, vec![slow.clone()]);
    let e = env_with(cfg, Some(reg)).await;
    let g = e.svc.create(e.user, t2v("slow", "x")).await.unwrap();
    let w1 = e.svc.worker_named("w1");
    let job = w1.claim(1).await.unwrap().pop().unwrap();
    let first = tokio::spawn({
        let w1 = w1.clone();
        async move { w1.execute(job).await }
    });
    let w2 = e.svc.worker_named("w2");
    assert_eq!(reclaim_when_expired(&w2).await, 1);
    let second = w2.try_execute_once().await.unwrap();
    assert!(matches!(
        second,
        Executed::Ran {
            outcome: Outcome::Completed { .. },
            ..
        }
    ));
    assert_eq!(first.await.unwrap(), Outcome::LeaseLost);
    let assets = e
        .svc
        .list_assets(e.user, &Default::default())
        .await
        .unwrap();
    assert_eq!(assets.total, 1, "exactly one completion");
    // One provider call per attempt; a synchronous (free) provider's submission is
    // recorded with the completion, so only the winning attempt has a row.
    assert_eq!(slow.submits.load(std::sync::atomic::Ordering::SeqCst), 2);
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        (subs[0].attempt, subs[0].status),
        (2, SubmissionStatus::Succeeded)
    );
}

/// 8 workers, 3 accounts with max 2 jobs each: never more than 2 at once per account.
#[tokio::test]
async fn concurrent_workers_never_oversubscribe_accounts() {
    let mut cfg = fast_config();
    cfg.worker_concurrency = 4;
    cfg.user_active_limit = None;
    let p = InstantProvider::new("metered", true, Duration::from_millis(30));
    let reg = registry_with(&cfg, vec![p.clone()]);
    let e = env_with(cfg, Some(reg)).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut a = account("metered", &format!("key{i}"));
        a.priority = i;
        ids.push(e.svc.create_account(e.admin, a).await.unwrap().id);
    }
    let n = 60;
    for i in 0..n {
        e.svc
            .create(e.user, t2v("metered", &format!("p{i}")))
            .await
            .unwrap();
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for i in 0..8 {
        let w = e.svc.worker_named(format!("w{i}"));
        let mut rx = rx.clone();
        handles.push(tokio::spawn(w.run(async move {
            let _ = rx.wait_for(|v| *v).await;
        })));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let page = e
            .svc
            .list(
                e.admin,
                &generation::model::GenerationFilter {
                    status: Some(vec![JobStatus::Completed]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.total == n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} completed",
            page.total
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.send(true).unwrap();
    for h in handles {
        h.await.unwrap();
    }
    let seen = p.probe.max_seen();
    for id in &ids {
        assert!(seen.get(id).copied().unwrap_or(0) <= 2, "{seen:?}");
    }
    assert!(
        seen.values().sum::<usize>() >= 3,
        "accounts were used: {seen:?}"
    );
    for a in e.svc.list_accounts(e.admin, Some("metered")).await.unwrap() {
        assert_eq!(a.current_jobs, 0);
    }
    assert_eq!(
        p.submits.load(std::sync::atomic::Ordering::SeqCst),
        n as usize
    );
}

#[tokio::test]
async fn account_selection_order_and_waiting() {
    let cfg = fast_config();
    let p = InstantProvider::new("metered", true, Duration::ZERO);
    let reg = registry_with(&cfg, vec![p.clone()]);
    let e = env_with(cfg, Some(reg)).await;
    let mut lo = account("metered", "a");
    lo.priority = 1;
    lo.credits = Some(100);
    let mut hi_rich = account("metered", "b");
    hi_rich.priority = 5;
    hi_rich.credits = Some(1000);
    let mut hi_poor = account("metered", "c");
    hi_poor.priority = 5;
    hi_poor.credits = Some(10);
    e.svc.create_account(e.admin, lo).await.unwrap();
    e.svc.create_account(e.admin, hi_rich).await.unwrap();
    let poor = e.svc.create_account(e.admin, hi_poor).await.unwrap();
    let g = e.svc.create(e.user, t2v("metered", "x")).await.unwrap();
    e.svc.worker().try_execute_once().await.unwrap();
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(
        g.account_id,
        Some(poor.id),
        "priority desc, then credits asc"
    );

    // All accounts disabled: the job fails with a clear code.
    for a in e.svc.list_accounts(e.admin, None).await.unwrap() {
        e.svc
            .update_account(
                e.admin,
                a.id,
                generation::model::ProviderAccountPatch {
                    max_concurrent_jobs: Some(0),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    // Accounts exist but none can ever qualify → create refuses.
    let err = e.svc.create(e.user, t2v("metered", "y")).await.unwrap_err();
    assert_eq!(err.code(), "no_account_available");
}

#[tokio::test]
async fn create_from_scene_spec() {
    let e = env().await;
    let spec: domain::narrative::scene::GenerationSpec =
        serde_json::from_value(serde_json::json!({
            "operation": "text_to_video",
            "prompt": "the tavern at dusk",
            "params": {"duration": 1, "seed": 42}
        }))
        .unwrap();
    let g = e
        .svc
        .create_from_spec(
            e.user,
            &spec,
            serde_json::json!({"scene": "s1", "node": "n1"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(g.metadata["node"], "n1");
    assert_eq!(g.params["seed"], 42);
    assert_eq!(g.status, JobStatus::Pending);
    let _ = Arc::new(());

    // Without a key, the same spec again is another job while the first is pending…
    let again = e
        .svc
        .create_from_spec(e.user, &spec, serde_json::json!({}), None)
        .await
        .unwrap();
    assert_ne!(again.id, g.id);
    // … and, once one completed, a reuse of its asset.
    while e.svc.worker().try_execute_once().await.unwrap() != Executed::EmptyQueue {}
    let reused = e
        .svc
        .create_from_spec(e.user, &spec, serde_json::json!({}), None)
        .await
        .unwrap();
    assert_eq!(reused.status, JobStatus::Completed);
    let from = reused.reused_from.unwrap();
    assert!(from == g.id || from == again.id);
    let source = e.svc.get(e.user, from).await.unwrap();
    assert_eq!(reused.asset_id, source.asset_id);

    // With a key in the spec's params: one job per key.
    let mut keyed = spec.clone();
    keyed
        .params
        .insert("idempotency_key".into(), serde_json::json!("scene:s1:n1"));
    keyed.params.insert("seed".into(), serde_json::json!(43));
    let k1 = e
        .svc
        .create_from_spec(e.user, &keyed, serde_json::json!({}), None)
        .await
        .unwrap();
    let k2 = e
        .svc
        .create_from_spec(e.user, &keyed, serde_json::json!({}), None)
        .await
        .unwrap();
    assert_eq!(k1.id, k2.id);
    assert_eq!(k1.idempotency_key.as_deref(), Some("scene:s1:n1"));
}

#[tokio::test]
async fn a_job_made_ahead_is_raised_and_cancelled_only_while_it_has_not_started() {
    let e = env().await;
    let spec: domain::narrative::scene::GenerationSpec =
        serde_json::from_value(serde_json::json!({
            "operation": "text_to_video",
            "prompt": "the harbour at dawn",
            "params": {"duration": 1}
        }))
        .unwrap();
    // Made ahead at a low priority; an ordinary job created later goes first.
    let ahead = e
        .svc
        .create_from_spec(e.user, &spec, serde_json::json!({}), Some(1))
        .await
        .unwrap();
    assert_eq!(ahead.priority, 1);
    let other = e
        .svc
        .create(e.user, t2v("local", "ordinary"))
        .await
        .unwrap();
    let placed = e.svc.get(e.user, ahead.id).await.unwrap();
    assert_eq!(placed.queue_position, Some(2), "behind the ordinary job");

    // Raised: it goes first; raising never lowers.
    let raised = e
        .svc
        .raise_priority(e.user, ahead.id, generation::DEFAULT_PRIORITY + 1)
        .await
        .unwrap()
        .expect("raised while pending");
    assert_eq!(raised.priority, generation::DEFAULT_PRIORITY + 1);
    assert_eq!(raised.queue_position, Some(1));
    assert!(
        e.svc
            .raise_priority(e.user, ahead.id, 2)
            .await
            .unwrap()
            .is_none()
    );

    // Cancelled while pending: nothing charged, the reason kept.
    let cancelled = e
        .svc
        .cancel_unstarted(e.user, ahead.id, "unreachable", "no player can reach it")
        .await
        .unwrap()
        .expect("cancelled while pending");
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.error_code.as_deref(), Some("unreachable"));
    assert_eq!(cancelled.credits_charged, 0);
    // A job that ran is neither raised nor cancelled.
    while e.svc.worker().try_execute_once().await.unwrap() != Executed::EmptyQueue {}
    let done = e.svc.get(e.user, other.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert!(
        e.svc
            .cancel_unstarted(e.user, other.id, "unreachable", "x")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        e.svc
            .raise_priority(e.user, other.id, 9)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        e.svc.get(e.user, other.id).await.unwrap().status,
        JobStatus::Completed
    );
}

#[tokio::test]
async fn retry_obeys_the_per_user_active_limit() {
    let mut cfg = fast_config();
    cfg.user_active_limit = Some(2);
    let e = env_with(cfg, None).await;
    let a = e.svc.create(e.user, t2v("local", "r1")).await.unwrap();
    let b = e.svc.create(e.user, t2v("local", "r2")).await.unwrap();
    e.svc.cancel(e.user, b.id).await.unwrap();
    let c = e.svc.create(e.user, t2v("local", "r3")).await.unwrap();
    // a and c are unfinished: retrying b would make three.
    let err = e.svc.retry(e.user, b.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            GenerationError::LimitExceeded {
                active: 2,
                limit: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "limit_exceeded");
    assert_eq!(
        e.svc.get(e.user, b.id).await.unwrap().status,
        JobStatus::Cancelled
    );
    e.svc.cancel(e.user, c.id).await.unwrap();
    // One slot free: of concurrent retries exactly one passes.
    let d = e.svc.create(e.user, t2v("local", "r4")).await.unwrap();
    e.svc.cancel(e.user, d.id).await.unwrap();
    let (rb, rc, rd) = tokio::join!(
        e.svc.retry(e.user, b.id),
        e.svc.retry(e.user, c.id),
        e.svc.retry(e.user, d.id)
    );
    let ok = [&rb, &rc, &rd].iter().filter(|r| r.is_ok()).count();
    let limited = [&rb, &rc, &rd]
        .iter()
        .filter(|r| matches!(r, Err(GenerationError::LimitExceeded { .. })))
        .count();
    assert_eq!((ok, limited), (1, 2), "{rb:?} {rc:?} {rd:?}");
    // An admin's retry is not limited.
    let still_cancelled = [(b.id, &rb), (c.id, &rc), (d.id, &rd)]
        .into_iter()
        .find(|(_, r)| r.is_err())
        .map(|(id, _)| id)
        .unwrap();
    let r = e.svc.retry(e.admin, still_cancelled).await.unwrap();
    assert_eq!(r.status, JobStatus::Pending);
    let _ = a;
}

/// An idempotency key holds for 24 hours per user: within them a repeat returns the
/// first job, after them the key makes a new job (the old job gives the key up).
#[tokio::test]
async fn an_idempotency_key_expires_after_a_day() {
    let e = env().await;
    let mut req = t2v("local", "kept for a day");
    req.scheduled_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    req.idempotency_key = Some("daily".into());
    let first = e.svc.create(e.user, req.clone()).await.unwrap();
    let again = e.svc.create(e.user, req.clone()).await.unwrap();
    assert_eq!(again.id, first.id);

    // 23 hours later the key still holds.
    sqlx::query("UPDATE generations SET created_at = now() - interval '23 hours' WHERE id = $1")
        .bind(first.id)
        .execute(&e.db.pool)
        .await
        .unwrap();
    assert_eq!(
        e.svc.create(e.user, req.clone()).await.unwrap().id,
        first.id
    );

    // 25 hours later it makes a new job, even with other parameters.
    sqlx::query("UPDATE generations SET created_at = now() - interval '25 hours' WHERE id = $1")
        .bind(first.id)
        .execute(&e.db.pool)
        .await
        .unwrap();
    let mut other = req.clone();
    other.params.prompt = Some("a day later".into());
    let second = e.svc.create(e.user, other.clone()).await.unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.idempotency_key.as_deref(), Some("daily"));
    assert_eq!(
        e.svc.get(e.user, first.id).await.unwrap().idempotency_key,
        None
    );
    // And the new job holds it now.
    assert_eq!(e.svc.create(e.user, other).await.unwrap().id, second.id);
}

/// A job past its deadline is never claimed; the deadline sweep cancels it with
/// `deadline_exceeded`, charges nothing and announces it like a cancel.
#[tokio::test]
async fn a_job_past_its_deadline_is_cancelled_and_never_claimed() {
    let e = env().await;
    let mut req = t2v("local", "too late");
    req.deadline_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let g = e.svc.create(e.user, req).await.unwrap();
    assert!(g.deadline_at.is_some());
    let kept = e
        .svc
        .create(e.user, t2v("local", "no deadline"))
        .await
        .unwrap();
    // The deadline passes before any worker looks.
    sqlx::query("UPDATE generations SET deadline_at = now() - interval '1 second' WHERE id = $1")
        .bind(g.id)
        .execute(&e.db.pool)
        .await
        .unwrap();
    let mut events = e.svc.subscribe();
    let w = e.svc.worker();
    // The claim passes the late job over and takes the other one.
    let Executed::Ran { job_id, .. } = w.try_execute_once().await.unwrap() else {
        panic!("the job without a deadline was not claimed");
    };
    assert_eq!(job_id, kept.id);
    assert_eq!(w.try_execute_once().await.unwrap(), Executed::EmptyQueue);
    assert_eq!(
        e.svc.get(e.user, g.id).await.unwrap().status,
        JobStatus::Pending
    );

    assert_eq!(w.cancel_past_deadline().await.unwrap(), 1);
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.status, JobStatus::Cancelled);
    assert_eq!(g.error_code.as_deref(), Some("deadline_exceeded"));
    assert_eq!(g.credits_charged, 0);
    assert_eq!(g.attempt, 0, "never started");
    assert!(e.svc.submissions(e.user, g.id).await.unwrap().is_empty());
    let mut failed = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if ev.kind() == "job:failed" {
            failed.push(ev.generation().unwrap().id);
        }
    }
    assert_eq!(failed, [g.id]);
    // Swept once only.
    assert_eq!(w.cancel_past_deadline().await.unwrap(), 0);
}
