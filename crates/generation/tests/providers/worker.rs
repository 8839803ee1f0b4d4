//! Worker-level behaviour through the Pixverse fake: failure classes and accounts,
//! image-to-video lineage and the upload cache, the job deadline, unusable results.

use crate::common::*;
use crate::run_one;
use std::time::Duration;

use generation::fakes::{Action, Endpoint};
use generation::model::{GenerationParams, JobStatus, MediaType, Operation, SubmissionStatus};
use generation::{Executed, Outcome};

/// Account failure classes with two Pixverse accounts: a rate limit cools one down, out
/// of credits exhausts one, and a job waits while none is free.
#[tokio::test]
async fn pixverse_worker_account_failure_classes() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    let mut a1 = account("pixverse", "pk");
    a1.priority = 10;
    let a1 = e.svc.create_account(e.admin, a1).await.unwrap();
    let a2 = e
        .svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let w = e.svc.worker();

    // 429 → account 1 cools down, the job is requeued and account 2 completes it.
    fake.control.push(
        Endpoint::Submit,
        Action::RateLimit {
            retry_after_secs: 30,
        },
    );
    let g = e.svc.create(e.user, t2v("pixverse", "one")).await.unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "rate_limited".into()
        }
    );
    let acc1 = e.svc.get_account(e.admin, a1.id).await.unwrap();
    assert_eq!(acc1.status, generation::model::AccountStatus::RateLimited);
    assert!(acc1.cooldown_until.unwrap() > chrono::Utc::now() + chrono::Duration::seconds(20));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.account_id, Some(a2.id));
    assert_eq!(e.svc.submissions(e.user, g.id).await.unwrap().len(), 2);

    // Out of credits → account 2 exhausted; nothing else eligible (1 cools down) → waits.
    fake.control.push(Endpoint::Submit, Action::OutOfCredits);
    let g2 = e.svc.create(e.user, t2v("pixverse", "two")).await.unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "out_of_credits".into()
        }
    );
    let acc2 = e.svc.get_account(e.admin, a2.id).await.unwrap();
    assert_eq!(acc2.status, generation::model::AccountStatus::Exhausted);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "waiting_for_account".into()
        }
    );
    // Cooldown cleared → account 1 takes it.
    e.svc
        .update_account(
            e.admin,
            a1.id,
            generation::model::ProviderAccountPatch {
                status: Some(generation::model::AccountStatus::Active),
                clear_cooldown: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    assert_eq!(
        e.svc.get(e.user, g2.id).await.unwrap().account_id,
        Some(a1.id)
    );
    for a in e.svc.list_accounts(e.admin, None).await.unwrap() {
        assert_eq!(a.current_jobs, 0);
    }
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

/// Job failure classes through the worker: with no `content_filtered` retries,
/// moderation at submit and at poll time is terminal; a 5xx is retried with backoff.
#[tokio::test]
async fn pixverse_worker_job_failure_classes() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let mut cfg = pixverse_at(fast_config(), &fake.base_url());
    cfg.content_filtered_retries = 0;
    let e = env_with(cfg, None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let w = e.svc.worker();

    // Moderation → terminal, recorded on the submission.
    fake.control.push(Endpoint::Submit, Action::Moderation);
    let g3 = e
        .svc
        .create(e.user, t2v("pixverse", "three"))
        .await
        .unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Failed {
            code: "content_filtered".into()
        }
    );
    let subs = e.svc.submissions(e.user, g3.id).await.unwrap();
    assert_eq!(subs[0].status, SubmissionStatus::Filtered);
    assert_eq!(subs[0].error_class.as_deref(), Some("moderation"));

    // 5xx → transient: requeued with backoff, counted; then completes.
    fake.control.push(Endpoint::Submit, Action::ServerError);
    let g4 = e.svc.create(e.user, t2v("pixverse", "four")).await.unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "provider_unavailable".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    let g4 = e.svc.get(e.user, g4.id).await.unwrap();
    assert_eq!(g4.retry_count, 1);

    // Poll-time moderation (status 7) → filtered.
    fake.control.push(Endpoint::Poll, Action::Moderation);
    let g5 = e.svc.create(e.user, t2v("pixverse", "five")).await.unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Failed {
            code: "content_filtered".into()
        }
    );
    assert_eq!(
        e.svc.get(e.user, g5.id).await.unwrap().status,
        JobStatus::Failed
    );
    for a in e.svc.list_accounts(e.admin, None).await.unwrap() {
        assert_eq!(a.current_jobs, 0);
    }
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

/// Image-to-video through Pixverse with lineage and the upload cache.
#[tokio::test]
async fn pixverse_image_to_video_lineage_and_upload_cache() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let png = generation::fakes::sample_png(1);
    let input = e
        .svc
        .upload_asset(e.user, &png, Some("image/png"))
        .await
        .unwrap();
    assert_eq!(input.media_type, MediaType::Image);
    assert_eq!((input.width, input.height), (Some(16), Some(16)));
    let mk = |prompt: &str| generation::model::CreateGeneration {
        provider: Some("pixverse".into()),
        operation: Some(Operation::ImageToVideo),
        params: GenerationParams {
            prompt: Some(prompt.into()),
            ..Default::default()
        },
        inputs: vec![generation::model::InputRef {
            asset_id: input.id,
            role: None,
            ref_name: None,
        }],
        ..Default::default()
    };
    let w = e.svc.worker();
    let g1 = e.svc.create(e.user, mk("first")).await.unwrap();
    assert!(matches!(
        w.try_execute_once().await.unwrap(),
        Executed::Ran {
            outcome: Outcome::Completed { .. },
            ..
        }
    ));
    let g2 = e.svc.create(e.user, mk("second")).await.unwrap();
    assert!(matches!(
        w.try_execute_once().await.unwrap(),
        Executed::Ran {
            outcome: Outcome::Completed { .. },
            ..
        }
    ));
    assert_eq!(
        fake.control.count(Endpoint::Upload),
        1,
        "the second job reused the upload"
    );
    let uploads = store::generation::assets::uploads(&e.db.pool, input.id)
        .await
        .unwrap();
    assert_eq!(uploads.len(), 1);
    assert!(uploads[0].last_used_at > uploads[0].created_at);
    let out = e.svc.get(e.user, g2.id).await.unwrap().asset_id.unwrap();
    let lineage = e.svc.asset_lineage(e.user, out).await.unwrap();
    assert_eq!(lineage.parents.len(), 1);
    assert_eq!(lineage.parents[0].parent_asset_id, input.id);
    assert_eq!(lineage.parents[0].relation, "source_image");
    assert_eq!(lineage.parents[0].operation, "image_to_video");
    let up = e.svc.asset_lineage(e.user, input.id).await.unwrap();
    assert_eq!(up.children.len(), 2);
    let a1 = e.svc.get(e.user, g1.id).await.unwrap().asset_id.unwrap();
    let a1 = e.svc.get_asset(e.user, a1).await.unwrap();
    assert_eq!(a1.provider.as_deref(), Some("pixverse"));
    assert!(a1.remote_url.is_some());
    // Uploads are checked by magic bytes and declared type.
    let err = e
        .svc
        .upload_asset(e.user, b"<html>", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_media");
    let err = e
        .svc
        .upload_asset(e.user, &png, Some("video/mp4"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_media");
}

/// The per-attempt deadline: a job whose provider never finishes is requeued with
/// `timeout`, and the next attempt adopts the same submission.
#[tokio::test]
async fn job_timeout_requeues_and_adopts() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    fake.control.set_polls_until_done(1_000_000);
    let mut cfg = fast_config();
    cfg.job_timeout = Duration::from_millis(300);
    let e = env_with(pixverse_at(cfg, &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let g = e
        .svc
        .create(e.user, t2v("pixverse", "forever"))
        .await
        .unwrap();
    let w = e.svc.worker();
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "timeout".into()
        }
    );
    fake.control.set_polls_until_done(1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    assert_eq!(
        fake.control.count(Endpoint::Submit),
        1,
        "adopted, not paid twice"
    );
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
}

/// A result that is no known media fails the job and closes its submission, so a
/// retry submits again instead of adopting a result it cannot use.
#[tokio::test]
async fn a_result_that_is_not_media_closes_its_submission() {
    let fake = generation::fakes::openai::start("sk").await.unwrap();
    let e = env_with(openai_at(fast_config(), &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("openai", "sk"))
        .await
        .unwrap();
    fake.control.push(Endpoint::Content, Action::Malformed);
    let g = e.svc.create(e.user, t2v("openai", "waves")).await.unwrap();
    let out = e.svc.worker().try_execute_once().await.unwrap();
    assert!(
        matches!(&out, Executed::Ran { outcome: Outcome::Failed { code }, .. } if code == "download_rejected"),
        "{out:?}"
    );
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].status, SubmissionStatus::Failed, "{subs:?}");
    assert!(subs[0].finished_at.is_some());
}

/// Image-to-video through Replicate with an input over `data_url_max_bytes`: uploaded
/// with the Files API once, the upload reused by the next job, and uploaded again once
/// it is older than Replicate keeps files.
#[tokio::test]
async fn replicate_uploads_large_inputs_once_and_again_when_they_expire() {
    let fake = generation::fakes::replicate::start("r8").await.unwrap();
    fake.control.set_polls_until_done(1);
    let mut cfg = replicate_at(fast_config(), &fake.base_url());
    cfg.providers.set("replicate", "data_url_max_bytes", 10);
    let e = env_with(cfg, None).await;
    e.svc
        .create_account(e.admin, account("replicate", "r8"))
        .await
        .unwrap();
    let png = generation::fakes::sample_png(2);
    let input = e
        .svc
        .upload_asset(e.user, &png, Some("image/png"))
        .await
        .unwrap();
    let mk = |prompt: &str| generation::model::CreateGeneration {
        provider: Some("replicate".into()),
        operation: Some(Operation::ImageToVideo),
        params: GenerationParams {
            prompt: Some(prompt.into()),
            ..Default::default()
        },
        inputs: vec![generation::model::InputRef {
            asset_id: input.id,
            role: None,
            ref_name: None,
        }],
        ..Default::default()
    };
    let files = || {
        fake.control
            .submits()
            .iter()
            .filter(|s| s.get("file").is_some())
            .count()
    };
    let w = e.svc.worker();
    for (prompt, uploads) in [("first", 1), ("second", 1)] {
        e.svc.create(e.user, mk(prompt)).await.unwrap();
        let out = run_one(&w).await;
        assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
        assert_eq!(files(), uploads, "{prompt}");
    }
    // Every create named the uploaded file, not a data URL.
    for s in fake
        .control
        .submits()
        .iter()
        .filter(|s| s.get("body").is_some())
    {
        let image = s["body"]["input"]["image"].as_str().unwrap();
        assert!(image.contains("/v1/files/"), "{image}");
    }
    // A day later Replicate has dropped the file: the next job uploads it again.
    sqlx::query(
        "UPDATE provider_uploads SET created_at = now() - interval '24 hours' WHERE asset_id = $1",
    )
    .bind(input.id)
    .execute(&e.db.pool)
    .await
    .unwrap();
    e.svc.create(e.user, mk("third")).await.unwrap();
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    assert_eq!(files(), 2);
    // … and the new upload is reused again.
    e.svc.create(e.user, mk("fourth")).await.unwrap();
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    assert_eq!(files(), 2);
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

/// A provider-hosted result has its asset row from the moment the provider accepts the
/// job (sync status `remote`, no file: 409), and the completion fills in that same row
/// (`downloaded`); a failed job's row says `error`, a cancelled job's row goes.
#[tokio::test]
async fn an_asynchronous_job_has_its_asset_from_submission() {
    use generation::model::{AssetFilter, SyncStatus};
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let w = e.svc.worker();
    let remote = AssetFilter {
        sync_status: Some(SyncStatus::Remote),
        ..Default::default()
    };

    // Held at the provider until told otherwise.
    fake.control.set_polls_until_done(usize::MAX);
    let g = e
        .svc
        .create(e.user, t2v("pixverse", "a slow harbour"))
        .await
        .unwrap();
    let run = tokio::spawn({
        let w = w.clone();
        async move { run_one(&w).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let pending = loop {
        let page = e.svc.list_assets(e.user, &remote).await.unwrap();
        if let Some(a) = page.items.first() {
            break a.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no remote asset appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(pending.source_generation_id, Some(g.id));
    assert_eq!(pending.provider.as_deref(), Some("pixverse"));
    assert!(pending.remote_id.is_some());
    assert_eq!((pending.size_bytes, pending.content_hash.as_str()), (0, ""));
    let err = e.svc.asset_file(e.user, pending.id).await.unwrap_err();
    assert_eq!(err.http_status(), 409, "{err}");
    assert_eq!(e.svc.get(e.user, g.id).await.unwrap().asset_id, None);

    fake.control.set_polls_until_done(1);
    let out = run.await.unwrap();
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    let done = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(done.asset_id, Some(pending.id), "the same row got the file");
    let asset = e.svc.get_asset(e.user, pending.id).await.unwrap();
    assert_eq!(asset.sync_status, SyncStatus::Downloaded);
    assert!(asset.size_bytes > 0 && !asset.content_hash.is_empty());
    assert_eq!(
        asset.created_at, pending.created_at,
        "created at the submission"
    );
    assert!(e.svc.asset_file(e.user, pending.id).await.is_ok());
    let all = e
        .svc
        .list_assets(e.user, &AssetFilter::default())
        .await
        .unwrap();
    assert_eq!(all.total, 1, "one row per job");

    // The provider fails the job: its row says `error`.
    fake.control.set_polls_until_done(1);
    fake.control.push(Endpoint::Poll, Action::RemoteFailed);
    let mut req = t2v("pixverse", "a failing harbour");
    req.max_retries = Some(0);
    let g2 = e.svc.create(e.user, req).await.unwrap();
    loop {
        let out = run_one(&w).await;
        let j = e.svc.get(e.user, g2.id).await.unwrap();
        if j.status == JobStatus::Failed {
            break;
        }
        assert!(!matches!(out, Outcome::Completed { .. }), "{out:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = e
        .svc
        .list_assets(
            e.user,
            &AssetFilter {
                source_generation_id: Some(g2.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.total, 1);
    assert_eq!(failed.items[0].sync_status, SyncStatus::Error);

    // Cancelled while the provider holds it: the row goes (nothing will come).
    fake.control.set_polls_until_done(usize::MAX);
    let g3 = e
        .svc
        .create(e.user, t2v("pixverse", "a cancelled harbour"))
        .await
        .unwrap();
    let run = tokio::spawn({
        let w = w.clone();
        async move { run_one(&w).await }
    });
    let of_g3 = AssetFilter {
        source_generation_id: Some(g3.id),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while e.svc.list_assets(e.user, &of_g3).await.unwrap().total == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no remote asset appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    e.svc.cancel(e.user, g3.id).await.unwrap();
    let _ = run.await.unwrap();
    assert_eq!(
        e.svc.get(e.user, g3.id).await.unwrap().status,
        JobStatus::Cancelled
    );
    assert_eq!(e.svc.list_assets(e.user, &of_g3).await.unwrap().total, 0);
}
