//! Adapters against the contract fakes, the local renderer and the download guard.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use generation::download::{DownloadConfig, DownloadError, Downloader};
use generation::fakes::{Action, Endpoint};
use generation::guard::{Guard, GuardConfig};
use generation::media::sniff;
use generation::model::{GenerationParams, InputRole, JobStatus, MediaType, Operation};
use generation::provider::local::LocalProvider;
use generation::provider::openai::{OpenAiConfig, OpenAiProvider};
use generation::provider::pixverse::{PixverseConfig, PixverseProvider};
use generation::provider::{
    Credentials, InputMedia, Provider, ProviderError, RemoteStatus, SubmitRequest,
};
use generation::{Executed, Outcome};
use uuid::Uuid;

type Check = fn(&ProviderError) -> bool;

fn creds(key: &str) -> Credentials {
    Credentials {
        account_id: Uuid::now_v7(),
        api_key: key.into(),
    }
}

/// The guard as the tests' fakes need it: loopback allowed.
fn open_guard() -> Guard {
    Guard::new(GuardConfig {
        allow_private: true,
        ..Default::default()
    })
}

fn req(op: Operation, params: GenerationParams, inputs: Vec<InputMedia>) -> SubmitRequest {
    SubmitRequest {
        job_id: Uuid::now_v7(),
        attempt: 1,
        operation: op,
        params,
        inputs,
    }
}

fn pix_params() -> GenerationParams {
    GenerationParams {
        prompt: Some("a cat".into()),
        model: Some("v5".into()),
        duration: Some(5),
        quality: Some("540p".into()),
        aspect_ratio: Some("16:9".into()),
        seed: Some(3),
        ..Default::default()
    }
}

fn image_input() -> InputMedia {
    InputMedia {
        asset_id: Uuid::now_v7(),
        role: InputRole::SourceImage,
        ref_name: None,
        media_type: MediaType::Image,
        mime: "image/png".into(),
        bytes: Arc::new(generation::fakes::sample_png(5)),
        origin_provider: None,
        origin_remote_id: None,
        remote: None,
    }
}

fn pixverse(base: String, timeout: Duration) -> PixverseProvider {
    PixverseProvider::new(
        PixverseConfig {
            base_url: base,
            request_timeout: timeout,
            poll_interval: Duration::from_millis(10),
            ..Default::default()
        },
        &open_guard(),
    )
    .unwrap()
}

fn downloader() -> Downloader {
    Downloader::new(DownloadConfig::default(), &open_guard()).unwrap()
}

#[tokio::test]
async fn pixverse_happy_path_and_headers() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    fake.control.set_polls_until_done(2);
    let p = pixverse(fake.base_url(), Duration::from_secs(2));
    let c = creds("pk");
    let mut img = image_input();
    let remote = p.upload_input(Some(&c), &img).await.unwrap();
    assert!(remote.remote_id.parse::<i64>().is_ok());
    img.remote = Some(remote);
    let r = req(Operation::ImageToVideo, pix_params(), vec![img]);
    let s = p.submit(Some(&c), &r).await.unwrap();
    let body = &fake.control.submits()[0];
    assert!(body["img_id"].is_i64() && body["duration"] == 5 && body.get("aspect_ratio").is_none());
    let first = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(first.status, RemoteStatus::Processing);
    let done = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(done.status, RemoteStatus::Succeeded);
    let media = p
        .download(Some(&c), &s.remote_id, &done, &downloader())
        .await
        .unwrap();
    assert!(media.bytes.starts_with(b"GIF8"));
    let (monthly, package) = p.credit_balance(&c).await.unwrap();
    assert_eq!((monthly, package), (100, 50));
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
    // Wrong key → auth class.
    let bad = creds("nope");
    assert!(matches!(
        p.poll(Some(&bad), &s.remote_id).await,
        Err(ProviderError::Auth { .. })
    ));
}

#[tokio::test]
async fn pixverse_failure_scripts() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let p = pixverse(fake.base_url(), Duration::from_millis(300));
    let c = creds("pk");
    let r = req(Operation::TextToVideo, pix_params(), vec![]);
    let cases: Vec<(Action, Check)> = vec![
        (
            Action::RateLimit {
                retry_after_secs: 7,
            },
            |e| matches!(e, ProviderError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        ),
        (
            Action::Moderation,
            |e| matches!(e, ProviderError::Moderation { code: Some(c), .. } if c == "500054"),
        ),
        (Action::OutOfCredits, |e| {
            matches!(e, ProviderError::OutOfCredits { .. })
        }),
        (Action::ConcurrencyLimit, |e| {
            matches!(e, ProviderError::ConcurrencyLimit { .. })
        }),
        (Action::ServerError, |e| {
            matches!(e, ProviderError::Transient { .. })
        }),
        (Action::Slow(Duration::from_secs(2)), |e| {
            matches!(e, ProviderError::Timeout(_))
        }),
        (
            Action::Malformed,
            |e| matches!(e, ProviderError::Transient { code: Some(c), .. } if c.starts_with("malformed") || c.starts_with("http")),
        ),
        (Action::Unauthorized, |e| {
            matches!(e, ProviderError::Auth { .. })
        }),
    ];
    for (action, check) in cases {
        fake.control.push(Endpoint::Submit, action.clone());
        let e = p.submit(Some(&c), &r).await.unwrap_err();
        assert!(check(&e), "{action:?} gave {e:?}");
    }
    // Upload moderation uses the lowercase envelope on HTTP 500.
    fake.control.push(Endpoint::Upload, Action::Moderation);
    let e = p.upload_input(Some(&c), &image_input()).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Moderation { code: Some(ref c), .. } if c == "500052"),
        "{e:?}"
    );
    // Poll: moderation (7) and failure (8) statuses.
    let s = p.submit(Some(&c), &r).await.unwrap();
    fake.control.push(Endpoint::Poll, Action::Moderation);
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Filtered
    );
    fake.control.push(Endpoint::Poll, Action::RemoteFailed);
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Failed
    );
    fake.control.push(Endpoint::Poll, Action::Malformed);
    assert!(
        p.poll(Some(&c), &s.remote_id)
            .await
            .unwrap_err()
            .is_retryable()
    );
    // Every request carried a fresh trace id.
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

#[tokio::test]
async fn openai_contract_and_failures() {
    let fake = generation::fakes::openai::start("sk").await.unwrap();
    let p = OpenAiProvider::new(
        OpenAiConfig {
            base_url: format!("{}/v1", fake.base_url()),
            request_timeout: Duration::from_millis(300),
            poll_interval: Duration::from_millis(10),
            max_download_bytes: 1 << 20,
            ..Default::default()
        },
        &open_guard(),
    )
    .unwrap();
    let c = creds("sk");
    let params = GenerationParams {
        prompt: Some("a wave".into()),
        model: Some("sora-2".into()),
        duration: Some(8),
        size: Some("1280x720".into()),
        ..Default::default()
    };
    let r = req(Operation::ImageToVideo, params, vec![image_input()]);
    let s = p.submit(Some(&c), &r).await.unwrap();
    let body = &fake.control.submits()[0];
    assert_eq!(body["seconds"], "8");
    assert_eq!(body["input_reference"]["content_type"], "image/png");
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Queued);
    assert_eq!(q.next_poll, Some(Duration::from_millis(20)));
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Succeeded);
    let m = p
        .download(Some(&c), &s.remote_id, &q, &downloader())
        .await
        .unwrap();
    assert!(m.bytes.starts_with(b"GIF8"));
    assert!(m.thumbnail.unwrap().starts_with(&[0x89, b'P']));

    let cases: Vec<(Action, Check)> = vec![
        (
            Action::RateLimit {
                retry_after_secs: 3,
            },
            |e| matches!(e, ProviderError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(3)),
        ),
        (Action::OutOfCredits, |e| {
            matches!(e, ProviderError::OutOfCredits { .. })
        }),
        (Action::Moderation, |e| {
            matches!(e, ProviderError::Moderation { .. })
        }),
        (Action::ServerError, |e| {
            matches!(e, ProviderError::Transient { .. })
        }),
        (Action::Slow(Duration::from_secs(2)), |e| {
            matches!(e, ProviderError::Timeout(_))
        }),
        (Action::Malformed, |e| {
            matches!(e, ProviderError::Transient { .. })
        }),
        (Action::Unauthorized, |e| {
            matches!(e, ProviderError::Auth { .. })
        }),
    ];
    for (action, check) in cases {
        fake.control.push(Endpoint::Submit, action.clone());
        let e = p.submit(Some(&c), &r).await.unwrap_err();
        assert!(check(&e), "{action:?} gave {e:?}");
    }
    let s = p.submit(Some(&c), &r).await.unwrap();
    fake.control.push(Endpoint::Poll, Action::Moderation);
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Filtered
    );
    let s = p.submit(Some(&c), &r).await.unwrap();
    fake.control.push(Endpoint::Poll, Action::RemoteFailed);
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Failed
    );
    fake.control.push(Endpoint::Poll, Action::ServerError);
    assert!(
        p.poll(Some(&c), &s.remote_id)
            .await
            .unwrap_err()
            .is_retryable()
    );
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

#[tokio::test]
async fn local_renders_real_deterministic_media() {
    let mut params = GenerationParams {
        prompt: Some("a lighthouse".into()),
        seed: Some(9),
        duration: Some(1),
        ..Default::default()
    };
    let mut issues = generation::params::Issues::default();
    params = generation::provider::local::validate(Operation::TextToVideo, &params, &mut issues);
    assert!(issues.is_empty());
    let r = req(Operation::TextToVideo, params.clone(), vec![]);
    let a = LocalProvider::render_request(&r).unwrap();
    let b = LocalProvider::render_request(&r).unwrap();
    assert_eq!(a.bytes, b.bytes, "deterministic per seed");
    assert!(a.bytes.starts_with(b"GIF89a"));
    let info = generation::media::gif_info(&a.bytes).unwrap();
    assert_eq!(info.frames, 10);
    assert_eq!(sniff(&a.bytes).unwrap().media_type, MediaType::Video);
    let thumb = a.thumbnail.unwrap();
    assert!(thumb.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]));
    let mut other = r.clone();
    other.params.seed = Some(10);
    assert_ne!(
        LocalProvider::render_request(&other).unwrap().bytes,
        a.bytes
    );
    // Every operation, using its inputs.
    let png = image_input();
    let gif = InputMedia {
        role: InputRole::SourceVideo,
        media_type: MediaType::Video,
        mime: "image/gif".into(),
        bytes: Arc::new(a.bytes.clone()),
        ..image_input()
    };
    for (op, inputs) in [
        (Operation::ImageToVideo, vec![png.clone()]),
        (Operation::VideoExtend, vec![gif]),
        (
            Operation::VideoTransition,
            vec![
                InputMedia {
                    role: InputRole::TransitionInput,
                    ..png.clone()
                },
                InputMedia {
                    role: InputRole::TransitionInput,
                    bytes: Arc::new(generation::fakes::sample_png(77)),
                    ..png.clone()
                },
            ],
        ),
        (
            Operation::Fusion,
            vec![
                InputMedia {
                    role: InputRole::Subject,
                    ref_name: Some("cat".into()),
                    ..png.clone()
                },
                InputMedia {
                    role: InputRole::Background,
                    ref_name: Some("room".into()),
                    ..png.clone()
                },
            ],
        ),
    ] {
        let r = req(op, params.clone(), inputs);
        let out = LocalProvider::render_request(&r).unwrap();
        assert!(out.bytes.starts_with(b"GIF89a"), "{op}");
        assert_ne!(out.bytes, a.bytes, "{op} uses its inputs");
    }
}

async fn guard_server() -> (generation::fakes::FakeServer, u16) {
    use axum::response::IntoResponse;
    let control = Arc::new(generation::fakes::Control::default());
    let gif = generation::fakes::sample_gif(3);
    let router = axum::Router::new()
        .route(
            "/media",
            axum::routing::get({
                let gif = gif.clone();
                move || async move { gif.clone() }
            }),
        )
        .route(
            "/big",
            axum::routing::get(|| async { vec![0x47u8; 200_000] }),
        )
        .route("/html", axum::routing::get(|| async { "<html></html>" }))
        .route(
            "/redirect",
            axum::routing::get(
                |axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    let to = q.unwrap_or_default().trim_start_matches("to=").to_owned();
                    (axum::http::StatusCode::FOUND, [("location", to)]).into_response()
                },
            ),
        );
    let s = generation::fakes::serve(router, control).await.unwrap();
    let port = s.addr.port();
    (s, port)
}

#[tokio::test]
async fn download_guard() {
    let (_server, port) = guard_server().await;
    let strict = Downloader::new(
        DownloadConfig::default(),
        &Guard::new(GuardConfig::default()),
    )
    .unwrap();
    let err = strict
        .fetch(&format!("http://127.0.0.1:{port}/media"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Blocked(_)), "{err:?}");
    assert!(matches!(
        strict.fetch("file:///etc/passwd").await,
        Err(DownloadError::Scheme(_))
    ));
    // One named host allowed (an on-prem CDN); a redirect from it to loopback is refused.
    let named = Downloader::new(
        DownloadConfig {
            max_bytes: 100_000,
            ..Default::default()
        },
        &Guard::new(GuardConfig {
            allow_hosts: vec!["localhost".into()],
            ..Default::default()
        }),
    )
    .unwrap();
    let ok = named
        .fetch(&format!("http://localhost:{port}/media"))
        .await
        .unwrap();
    assert!(ok.bytes.starts_with(b"GIF8"));
    let err = named
        .fetch(&format!(
            "http://localhost:{port}/redirect?to=http://127.0.0.1:{port}/media"
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::Blocked(_)), "{err:?}");
    let err = named
        .fetch(&format!("http://localhost:{port}/big"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge(_)), "{err:?}");
    let err = named
        .fetch(&format!("http://localhost:{port}/html"))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::BadContent), "{err:?}");
    // Allowed when configured.
    let open = Downloader::new(DownloadConfig::default(), &open_guard()).unwrap();
    let ok = open
        .fetch(&format!("http://127.0.0.1:{port}/redirect?to=/media"))
        .await
        .unwrap();
    assert_eq!(ok.kind.mime, "image/gif");
}

/// Worker-level failure classes with two Pixverse accounts.
#[tokio::test]
async fn pixverse_worker_failure_classes() {
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
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Requeued { ref code }, .. } if code == "rate_limited"),
        "{out:?}"
    );
    let acc1 = e.svc.get_account(e.admin, a1.id).await.unwrap();
    assert_eq!(acc1.status, generation::model::AccountStatus::RateLimited);
    assert!(acc1.cooldown_until.unwrap() > chrono::Utc::now() + chrono::Duration::seconds(20));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = w.try_execute_once().await.unwrap();
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
    assert_eq!(g.account_id, Some(a2.id));
    assert_eq!(e.svc.submissions(e.user, g.id).await.unwrap().len(), 2);

    // Out of credits → account 2 exhausted; nothing else eligible (1 cools down) → waits.
    fake.control.push(Endpoint::Submit, Action::OutOfCredits);
    let g2 = e.svc.create(e.user, t2v("pixverse", "two")).await.unwrap();
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Requeued { ref code }, .. } if code == "out_of_credits"),
        "{out:?}"
    );
    let acc2 = e.svc.get_account(e.admin, a2.id).await.unwrap();
    assert_eq!(acc2.status, generation::model::AccountStatus::Exhausted);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Requeued { ref code }, .. } if code == "waiting_for_account"),
        "{out:?}"
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
    let out = w.try_execute_once().await.unwrap();
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
    assert_eq!(
        e.svc.get(e.user, g2.id).await.unwrap().account_id,
        Some(a1.id)
    );

    // Moderation → terminal, recorded on the submission.
    fake.control.push(Endpoint::Submit, Action::Moderation);
    let g3 = e
        .svc
        .create(e.user, t2v("pixverse", "three"))
        .await
        .unwrap();
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Failed { ref code }, .. } if code == "content_filtered"),
        "{out:?}"
    );
    let subs = e.svc.submissions(e.user, g3.id).await.unwrap();
    assert_eq!(subs[0].status, "filtered");
    assert_eq!(subs[0].error_class.as_deref(), Some("moderation"));

    // 5xx → transient: requeued with backoff, counted; then completes.
    fake.control.push(Endpoint::Submit, Action::ServerError);
    let g4 = e.svc.create(e.user, t2v("pixverse", "four")).await.unwrap();
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Requeued { ref code }, .. } if code == "provider_unavailable"),
        "{out:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = w.try_execute_once().await.unwrap();
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
    let g4 = e.svc.get(e.user, g4.id).await.unwrap();
    assert_eq!(g4.retry_count, 1);

    // Poll-time moderation (status 7) → filtered.
    fake.control.push(Endpoint::Poll, Action::Moderation);
    let g5 = e.svc.create(e.user, t2v("pixverse", "five")).await.unwrap();
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Failed { ref code }, .. } if code == "content_filtered"),
        "{out:?}"
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

#[tokio::test]
async fn openai_worker_end_to_end() {
    let fake = generation::fakes::openai::start("sk").await.unwrap();
    let e = env_with(openai_at(fast_config(), &fake.base_url()), None).await;
    e.svc
        .create_account(e.admin, account("openai", "sk"))
        .await
        .unwrap();
    let g = e.svc.create(e.user, t2v("openai", "waves")).await.unwrap();
    let out = e.svc.worker().try_execute_once().await.unwrap();
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
    let a = e.svc.get_asset(e.user, g.asset_id.unwrap()).await.unwrap();
    assert!(a.has_thumbnail);
    assert_eq!(fake.control.submits()[0]["seconds"], "4");
    // Billing 429 → the only account is exhausted → nothing can qualify any more.
    fake.control.push(Endpoint::Submit, Action::OutOfCredits);
    let g2 = e
        .svc
        .create(e.user, t2v("openai", "more waves"))
        .await
        .unwrap();
    let w = e.svc.worker();
    w.try_execute_once().await.unwrap();
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Failed { ref code }, .. } if code == "no_account_available"),
        "{out:?}"
    );
    assert_eq!(
        e.svc
            .get(e.user, g2.id)
            .await
            .unwrap()
            .error_code
            .as_deref(),
        Some("no_account_available")
    );
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
    let out = w.try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Requeued { ref code }, .. } if code == "timeout"),
        "{out:?}"
    );
    fake.control.set_polls_until_done(1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let out = w.try_execute_once().await.unwrap();
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
    assert_eq!(
        fake.control.count(Endpoint::Submit),
        1,
        "adopted, not paid twice"
    );
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
}

/// Local transition: lineage edges keep the inputs' order.
#[tokio::test]
async fn local_transition_lineage_order() {
    let e = env().await;
    let a = e
        .svc
        .upload_asset(e.user, &generation::fakes::sample_png(1), None)
        .await
        .unwrap();
    let b = e
        .svc
        .upload_asset(e.user, &generation::fakes::sample_png(2), None)
        .await
        .unwrap();
    let req = generation::model::CreateGeneration {
        operation: Some(Operation::VideoTransition),
        params: GenerationParams {
            prompt: Some("dawn to dusk".into()),
            ..Default::default()
        },
        inputs: vec![
            generation::model::InputRef {
                asset_id: a.id,
                role: None,
                ref_name: None,
            },
            generation::model::InputRef {
                asset_id: b.id,
                role: None,
                ref_name: None,
            },
        ],
        ..Default::default()
    };
    let g = e.svc.create(e.user, req).await.unwrap();
    assert_eq!(g.provider, "local");
    let out = e.svc.worker().try_execute_once().await.unwrap();
    let Executed::Ran {
        outcome: Outcome::Completed { asset_id },
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    let l = e.svc.asset_lineage(e.user, asset_id).await.unwrap();
    let order: Vec<(uuid::Uuid, i32, &str)> = l
        .parents
        .iter()
        .map(|p| (p.parent_asset_id, p.sequence, p.relation.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![(a.id, 0, "transition_input"), (b.id, 1, "transition_input")]
    );
    // An image input given to video_extend is refused by validation.
    let bad = generation::model::CreateGeneration {
        operation: Some(Operation::VideoExtend),
        params: GenerationParams {
            prompt: Some("more".into()),
            ..Default::default()
        },
        inputs: vec![generation::model::InputRef {
            asset_id: a.id,
            role: None,
            ref_name: None,
        }],
        ..Default::default()
    };
    let r = e.svc.validate(e.user, &bad).await.unwrap();
    assert_eq!(r.issues[0].code, "invalid_media_type");
    // Pixverse fusion prompts must name every reference.
    let mut issues = generation::params::Issues::default();
    let inputs = vec![generation::model::InputRef {
        asset_id: a.id,
        role: Some(InputRole::Subject),
        ref_name: Some("hero".into()),
    }];
    generation::provider::pixverse::validate(
        Operation::Fusion,
        &GenerationParams {
            prompt: Some("a knight".into()),
            ..Default::default()
        },
        &inputs,
        &mut issues,
    );
    assert!(
        issues.0.iter().any(|i| i.code == "not_in_prompt"),
        "{:?}",
        issues.0
    );
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
    assert_eq!(subs[0].status.as_str(), "failed", "{subs:?}");
    assert!(subs[0].finished_at.is_some());
}
