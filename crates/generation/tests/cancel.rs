//! Cancelling a processing job against the contract fakes: polling stops at once, the
//! provider is asked to stop where its contract has a call for it (OpenAI `DELETE
//! /v1/videos/{id}`; Pixverse documents none), the account slot is given back, and the
//! job ends `cancelled` exactly once, even when the provider finishes meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use generation::fakes::{Action, Endpoint};
use generation::model::{AssetFilter, JobStatus, SubmissionStatus};
use generation::{GenerationEvent, Outcome};
use uuid::Uuid;

/// Heartbeats far apart: only the cancel signal can stop an attempt quickly.
fn slow_heartbeat_config() -> generation::PipelineConfig {
    let mut cfg = fast_config();
    cfg.lease = Duration::from_secs(7200);
    cfg.heartbeat = Duration::from_secs(3600);
    cfg
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The job events of one job seen so far.
fn events_of(rx: &mut tokio::sync::broadcast::Receiver<GenerationEvent>, id: Uuid) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if ev.generation().is_some_and(|g| g.id == id) {
            let status = ev.generation().map(|g| g.status.as_str()).unwrap_or("");
            out.push(format!("{}:{status}", ev.kind()));
        }
    }
    out
}

#[tokio::test]
async fn cancel_stops_openai_polling_and_deletes_the_video() {
    let fake = generation::fakes::openai::start("sk").await.unwrap();
    fake.control.set_polls_until_done(1_000_000);
    let e = env_with(openai_at(slow_heartbeat_config(), &fake.base_url()), None).await;
    let mut acc = account("openai", "sk");
    acc.max_concurrent_jobs = Some(1);
    let acc = e.svc.create_account(e.admin, acc).await.unwrap();
    let mut events = e.svc.subscribe();
    let g = e
        .svc
        .create(e.user, t2v("openai", "endless"))
        .await
        .unwrap();
    let w = e.svc.worker();
    let run = tokio::spawn(async move { w.try_execute_once().await });

    until("a few polls", async || {
        fake.control.count(Endpoint::Poll) >= 3
    })
    .await;
    assert_eq!(
        e.svc
            .get_account(e.admin, acc.id)
            .await
            .unwrap()
            .current_jobs,
        1
    );
    let cancelled = e.svc.cancel(e.user, g.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    // The slot is free at once.
    assert_eq!(
        e.svc
            .get_account(e.admin, acc.id)
            .await
            .unwrap()
            .current_jobs,
        0
    );
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            out,
            generation::Executed::Ran {
                outcome: Outcome::Cancelled,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not the heartbeat"
    );
    assert_eq!(
        fake.control.count(Endpoint::Delete),
        1,
        "DELETE /v1/videos/{{id}}"
    );
    let polls = fake.control.count(Endpoint::Poll);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.control.count(Endpoint::Poll), polls, "polling stopped");

    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].status, SubmissionStatus::Cancelled);
    assert!(
        subs[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("asked to stop")),
        "{subs:?}"
    );
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!((g.status, g.asset_id), (JobStatus::Cancelled, None));
    let evs = events_of(&mut events, g.id);
    assert_eq!(evs.first().map(String::as_str), Some("job:created:pending"));
    assert_eq!(evs.last().map(String::as_str), Some("job:failed:cancelled"));
    assert_eq!(
        evs.iter().filter(|e| e.starts_with("job:failed")).count(),
        1,
        "{evs:?}"
    );
    // Once: a second cancel is refused.
    assert_eq!(
        e.svc.cancel(e.user, g.id).await.unwrap_err().code(),
        "conflict"
    );
    assert_eq!(e.svc.running_jobs(), 0);
}

/// The provider reports success and the worker is fetching the result when the cancel
/// comes: the job stays cancelled, no asset appears, one cancelled event.
#[tokio::test]
async fn cancel_wins_over_a_provider_that_finishes() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    fake.control
        .push(Endpoint::Content, Action::Slow(Duration::from_secs(3)));
    let e = env_with(pixverse_at(slow_heartbeat_config(), &fake.base_url()), None).await;
    let acc = e
        .svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let mut events = e.svc.subscribe();
    let g = e
        .svc
        .create(e.user, t2v("pixverse", "almost"))
        .await
        .unwrap();
    let w = e.svc.worker();
    let run = tokio::spawn(async move { w.try_execute_once().await });

    until("the result download", async || {
        fake.control.count(Endpoint::Content) >= 1
    })
    .await;
    e.svc.cancel(e.user, g.id).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            out,
            generation::Executed::Ran {
                outcome: Outcome::Cancelled,
                ..
            }
        ),
        "{out:?}"
    );
    // Let the slow answer arrive: nothing changes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!((g.status, g.asset_id), (JobStatus::Cancelled, None));
    let assets = e
        .svc
        .list_assets(e.admin, &AssetFilter::default())
        .await
        .unwrap();
    assert_eq!(assets.total, 0);
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs[0].status, SubmissionStatus::Cancelled);
    assert!(
        subs[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("no call")),
        "Pixverse documents no cancel call: {subs:?}"
    );
    assert_eq!(
        e.svc
            .get_account(e.admin, acc.id)
            .await
            .unwrap()
            .current_jobs,
        0
    );
    let evs = events_of(&mut events, g.id);
    assert_eq!(
        evs.iter().filter(|e| e.starts_with("job:failed")).count(),
        1,
        "{evs:?}"
    );
    assert!(
        !evs.iter().any(|e| e.starts_with("job:completed")),
        "{evs:?}"
    );
    assert!(fake.control.violations().is_empty());
}

/// A pending job cancelled before any worker saw it never reaches the provider.
#[tokio::test]
async fn cancelled_pending_job_is_never_submitted() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let g = e
        .svc
        .create(e.user, t2v("pixverse", "never"))
        .await
        .unwrap();
    e.svc.cancel(e.user, g.id).await.unwrap();
    assert_eq!(
        e.svc.worker().try_execute_once().await.unwrap(),
        generation::Executed::EmptyQueue
    );
    assert_eq!(fake.control.count(Endpoint::Submit), 0);
    assert!(e.svc.submissions(e.user, g.id).await.unwrap().is_empty());
}
