//! Group commit: concurrent creates and completions share statements, and each caller
//! still gets exactly its own answer (limits, reuse, a bad request, lineage).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use domain::user::Role;
use generation::GenerationError;
use generation::fakes::instant::InstantProvider;
use generation::model::{Actor, InputRef, JobStatus, Operation};

/// Many concurrent creates of users with a limit: the limit holds exactly per user,
/// also for jobs written in the same statement.
#[tokio::test]
async fn concurrent_creates_respect_the_limit_per_user() {
    let mut cfg = fast_config();
    cfg.user_active_limit = Some(5);
    let e = env_with(cfg, None).await;
    let ann = e.user;
    let bob = Actor::user(user(&e.db, Role::User).await);
    let mut hs = Vec::new();
    for i in 0..40 {
        let svc = e.svc.clone();
        let who = if i % 2 == 0 { ann } else { bob };
        hs.push(tokio::spawn(async move {
            svc.create(who, t2v("local", &format!("job {i}"))).await
        }));
    }
    let mut ok = std::collections::HashMap::new();
    let mut refused = 0;
    for h in hs {
        match h.await.unwrap() {
            Ok(g) => *ok.entry(g.user_id).or_insert(0) += 1,
            Err(GenerationError::LimitExceeded { active, limit }) => {
                assert_eq!((active, limit), (5, 5));
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok.get(&ann.user_id), Some(&5));
    assert_eq!(ok.get(&bob.user_id), Some(&5));
    assert_eq!(refused, 30);
}

/// An unknown parent generation or preferred account is refused by validation; the
/// requests created alongside are not affected.
#[tokio::test]
async fn references_are_validated() {
    let e = env().await;
    let mut hs = Vec::new();
    for i in 0..20 {
        let svc = e.svc.clone();
        let user = e.user;
        hs.push(tokio::spawn(async move {
            let mut req = t2v("local", &format!("job {i}"));
            match i {
                7 => req.parent_generation_id = Some(uuid::Uuid::now_v7()),
                8 => req.preferred_account_id = Some(uuid::Uuid::now_v7()),
                _ => {}
            }
            (i, svc.create(user, req).await)
        }));
    }
    let mut created = Vec::new();
    for h in hs {
        let (i, r) = h.await.unwrap();
        match (i, r) {
            (7 | 8, Err(GenerationError::InvalidParameters(issues))) => {
                assert_eq!(issues[0].code, "not_found");
            }
            (7 | 8, other) => panic!("{other:?}"),
            (_, r) => created.push(r.unwrap()),
        }
    }
    assert_eq!(created.len(), 18);
    // Another user's generation is no parent of mine.
    let other = Actor::user(user(&e.db, Role::User).await);
    let mut req = t2v("local", "child");
    req.parent_generation_id = Some(created[0].id);
    let err = e.svc.create(other, req.clone()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_parameters");
    let child = e.svc.create(e.user, req).await.unwrap();
    assert_eq!(child.parent_generation_id, Some(created[0].id));
}

/// Concurrent creates with one parameter hash after a completed job all reuse its
/// asset; with `force_new` none does.
#[tokio::test]
async fn concurrent_creates_reuse_a_completed_asset() {
    let e = env().await;
    let first = e.svc.create(e.user, t2v("local", "same")).await.unwrap();
    e.svc.worker().try_execute_once().await.unwrap();
    let asset = e.svc.get(e.user, first.id).await.unwrap().asset_id;
    assert!(asset.is_some());
    let mut hs = Vec::new();
    for i in 0..16 {
        let svc = e.svc.clone();
        let user = e.user;
        hs.push(tokio::spawn(async move {
            let mut req = t2v("local", "same");
            req.force_new = i % 4 == 0;
            (req.force_new, svc.create(user, req).await.unwrap())
        }));
    }
    for h in hs {
        let (forced, g) = h.await.unwrap();
        if forced {
            assert_eq!((g.status, g.reused_from), (JobStatus::Pending, None));
        } else {
            assert_eq!(g.status, JobStatus::Completed);
            assert_eq!((g.asset_id, g.reused_from), (asset, Some(first.id)));
        }
    }
}

/// Jobs with inputs completed together keep their own lineage.
#[tokio::test]
async fn completions_written_together_keep_their_lineage() {
    let mut cfg = fast_config();
    cfg.user_active_limit = None;
    let instant = InstantProvider::new("instant", false, Duration::from_millis(5));
    let reg = registry_with(&cfg, vec![instant.clone()]);
    let e = env_with(cfg, Some(reg)).await;
    let mut jobs = Vec::new();
    for i in 0..24u64 {
        let png = generation::fakes::sample_png(100 + i);
        let input = e.svc.upload_asset(e.user, &png, None).await.unwrap();
        let mut req = t2v("instant", &format!("animate {i}"));
        req.operation = Some(Operation::ImageToVideo);
        req.inputs = vec![InputRef {
            asset_id: input.id,
            role: None,
            ref_name: None,
        }];
        let g = e.svc.create(e.user, req).await.unwrap();
        jobs.push((g.id, input.id));
    }
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(e.svc.worker().run(async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    let deadline = Instant::now() + Duration::from_secs(30);
    for (id, input) in &jobs {
        let g = loop {
            let g = e.svc.get(e.user, *id).await.unwrap();
            if g.status == JobStatus::Completed {
                break g;
            }
            assert!(Instant::now() < deadline, "{id} not completed: {g:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let asset = g.asset_id.unwrap();
        let lineage = e.svc.asset_lineage(e.user, asset).await.unwrap();
        assert_eq!(lineage.parents.len(), 1);
        assert_eq!(lineage.parents[0].parent_asset_id, *input);
        let a = e.svc.get_asset(e.user, asset).await.unwrap();
        assert_eq!(a.source_generation_id, Some(*id));
        assert_eq!(e.svc.submissions(e.user, *id).await.unwrap().len(), 1);
    }
    stop_tx.send(true).unwrap();
    worker.await.unwrap();
}
