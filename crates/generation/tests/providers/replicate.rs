//! The Replicate adapter against its contract fake: create on both routes (an official
//! model, a community model's version), `Prefer: wait`, polling with progress from the
//! logs, the output download, cancel, every error class, moderation; its parameter
//! rules and description; and whole jobs through a worker (including the
//! `content_filtered` retry).

use crate::common::*;
use crate::run_one;
use std::time::Duration;

use generation::fakes::{Action, Endpoint};
use generation::model::{GenerationParams, JobStatus, Operation, SubmissionStatus};
use generation::params::Issues;
use generation::provider::replicate::{ReplicateConfig, ReplicateProvider};
use generation::provider::{CreditRule, Provider, ProviderError, ProviderStatus, RemoteStatus};
use generation::{GenerationError, Outcome};

use super::{Check, creds, downloader, image_input, open_guard, req};

fn provider(base: &str, tweak: impl FnOnce(&mut ReplicateConfig)) -> ReplicateProvider {
    let mut cfg = ReplicateConfig {
        base_url: format!("{base}/v1"),
        request_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    };
    tweak(&mut cfg);
    ReplicateProvider::new(cfg, &open_guard()).unwrap()
}

fn t2v_params() -> GenerationParams {
    GenerationParams {
        prompt: Some("a lighthouse in a storm".into()),
        negative_prompt: Some("blurry".into()),
        duration: Some(10),
        quality: Some("1080p".into()),
        aspect_ratio: Some("9:16".into()),
        seed: Some(7),
        ..Default::default()
    }
}

fn canonical(p: &ReplicateProvider, op: Operation, params: GenerationParams) -> GenerationParams {
    let mut issues = Issues::default();
    let c = p.validate(op, &params, &[], &mut issues);
    assert!(issues.is_empty(), "{:?}", issues.0);
    c
}

#[tokio::test]
async fn replicate_submit_poll_progress_download_on_an_official_model() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    fake.control.set_polls_until_done(4);
    let p = provider(&fake.base_url(), |_| {});
    let c = creds("r8_key");
    let params = canonical(&p, Operation::TextToVideo, t2v_params());
    let s = p
        .submit(Some(&c), &req(Operation::TextToVideo, params, vec![]))
        .await
        .unwrap();
    let sub = &fake.control.submits()[0];
    assert_eq!(sub["model"], "wan-video/wan-2.5-t2v");
    assert_eq!(sub["prefer"], serde_json::Value::Null);
    let input = &sub["body"]["input"];
    assert_eq!(input["prompt"], "a lighthouse in a storm");
    assert_eq!(input["negative_prompt"], "blurry");
    assert_eq!(input["duration"], 10);
    assert_eq!(input["size"], "1080*1920");
    assert_eq!(input["seed"], 7);

    // starting → processing (progress from the printed percentages) → succeeded.
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Queued);
    assert_eq!(q.progress, None);
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Processing);
    assert_eq!(q.progress, Some(0.25));
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Processing);
    assert_eq!(q.progress, Some(0.5));
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Succeeded);
    assert_eq!(q.progress, Some(1.0));
    let url = q.result_url.clone().unwrap();
    assert!(
        url.starts_with(&format!("{}/delivery/", fake.base_url())),
        "{url}"
    );
    // The output URL is downloaded through the guarded downloader.
    let m = p
        .download(Some(&c), &s.remote_id, &q, &downloader())
        .await
        .unwrap();
    assert!(m.bytes.starts_with(b"GIF8"));
    assert_eq!(m.remote_url.as_deref(), Some(url.as_str()));
    // A finished prediction stays finished.
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Succeeded
    );

    // image_to_video: the image goes as a data URL, the quality as `resolution`.
    let params = canonical(
        &p,
        Operation::ImageToVideo,
        GenerationParams {
            prompt: Some("the cat wakes up".into()),
            ..Default::default()
        },
    );
    assert_eq!(params.model.as_deref(), Some("wan-video/wan-2.5-i2v"));
    p.submit(
        Some(&c),
        &req(Operation::ImageToVideo, params, vec![image_input()]),
    )
    .await
    .unwrap();
    let sub = &fake.control.submits()[1];
    assert_eq!(sub["model"], "wan-video/wan-2.5-i2v");
    let input = &sub["body"]["input"];
    assert!(
        input["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR"),
        "{input}"
    );
    assert_eq!(input["resolution"], "720p");
    assert_eq!(input["duration"], 5);
    assert!(input.get("size").is_none());
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

#[tokio::test]
async fn replicate_community_version_and_prefer_wait() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    let p = provider(&fake.base_url(), |c| {
        c.text_to_video_model = "someone/wan-fork:5c7d5dc6dd8bf75c1acaa8565735e798".into();
        c.prefer_wait_secs = 5;
    });
    let c = creds("r8_key");
    let params = canonical(
        &p,
        Operation::TextToVideo,
        GenerationParams {
            prompt: Some("waves".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        params.model.as_deref(),
        Some("someone/wan-fork:5c7d5dc6dd8bf75c1acaa8565735e798")
    );
    let s = p
        .submit(Some(&c), &req(Operation::TextToVideo, params, vec![]))
        .await
        .unwrap();
    let sub = &fake.control.submits()[0];
    // POST /v1/predictions with the version; the wait header as configured.
    assert_eq!(sub["version"], "5c7d5dc6dd8bf75c1acaa8565735e798");
    assert_eq!(sub["body"]["version"], "5c7d5dc6dd8bf75c1acaa8565735e798");
    assert_eq!(sub["prefer"], "wait=5");
    assert_eq!(sub["body"]["input"]["size"], "1280*720");
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Queued
    );
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

#[tokio::test]
async fn replicate_errors_map_to_failure_classes() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    let p = provider(&fake.base_url(), |_| {});
    let c = creds("r8_key");
    let params = canonical(&p, Operation::TextToVideo, t2v_params());
    let r = req(Operation::TextToVideo, params, vec![]);

    let cases: Vec<(Action, Check)> = vec![
        (
            Action::RateLimit {
                retry_after_secs: 3,
            },
            |e| matches!(e, ProviderError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(3)),
        ),
        (Action::ConcurrencyLimit, |e| {
            matches!(e, ProviderError::RateLimited { .. })
        }),
        (
            Action::OutOfCredits,
            |e| matches!(e, ProviderError::OutOfCredits { code: Some(c), .. } if c == "insufficient_credit"),
        ),
        (Action::ServerError, |e| {
            matches!(e, ProviderError::Transient { .. }) && e.is_retryable()
        }),
        (Action::Slow(Duration::from_secs(2)), |e| {
            matches!(e, ProviderError::Timeout(_))
        }),
        (
            Action::Malformed,
            |e| matches!(e, ProviderError::Transient { code: Some(c), .. } if c == "malformed_response"),
        ),
        (
            Action::Unauthorized,
            |e| matches!(e, ProviderError::Auth { code: Some(c), .. } if c == "unauthenticated"),
        ),
    ];
    for (action, check) in cases {
        fake.control.push(Endpoint::Submit, action.clone());
        let e = p.submit(Some(&c), &r).await.unwrap_err();
        assert!(check(&e), "{action:?} gave {e:?}");
        // Users never see the provider's own text.
        assert!(!e.public_message().contains("replicate.com"), "{e:?}");
    }
    // A wrong token is refused by the fake itself.
    let e = p.submit(Some(&creds("r8_wrong")), &r).await.unwrap_err();
    assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
    // Input the model refuses: 422 problem details → the request is wrong (terminal).
    let mut bad = r.clone();
    bad.params.prompt = Some("  ".into());
    let e = p.submit(Some(&c), &bad).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::InvalidRequest { code: Some(ref c), .. } if c == "input_validation_failed"),
        "{e:?}"
    );
    assert_eq!(fake.control.violations().len(), 1);

    // Polls: a 5xx and a 429 may be retried; an unknown prediction is a 404.
    let s = p.submit(Some(&c), &r).await.unwrap();
    fake.control.push(Endpoint::Poll, Action::ServerError);
    assert!(
        p.poll(Some(&c), &s.remote_id)
            .await
            .unwrap_err()
            .is_retryable()
    );
    fake.control.push(
        Endpoint::Poll,
        Action::RateLimit {
            retry_after_secs: 1,
        },
    );
    let e = p.poll(Some(&c), &s.remote_id).await.unwrap_err();
    assert!(matches!(e, ProviderError::RateLimited { .. }), "{e:?}");
    let e = p.poll(Some(&c), "nosuchprediction").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::InvalidRequest { code: Some(ref c), .. } if c == "not_found"),
        "{e:?}"
    );

    // A failed prediction: the error code is read from the error text.
    fake.control.push(Endpoint::Poll, Action::RemoteFailed);
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Failed);
    assert_eq!(q.error_code.as_deref(), Some("E1001"));

    // The output download failing is a transient download error.
    fake.control.set_polls_until_done(1);
    let s = p.submit(Some(&c), &r).await.unwrap();
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Succeeded);
    fake.control.push(Endpoint::Content, Action::ServerError);
    let e = p
        .download(Some(&c), &s.remote_id, &q, &downloader())
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Download(_)) && e.is_retryable(),
        "{e:?}"
    );
}

#[tokio::test]
async fn replicate_moderation_fails_the_prediction_as_filtered() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    let p = provider(&fake.base_url(), |_| {});
    let c = creds("r8_key");
    let params = canonical(&p, Operation::TextToVideo, t2v_params());
    let r = req(Operation::TextToVideo, params, vec![]);
    // The safety checker runs as part of the prediction: the create is accepted and
    // the prediction fails, flagged as sensitive.
    fake.control.push(Endpoint::Submit, Action::Moderation);
    let s = p.submit(Some(&c), &r).await.unwrap();
    let q = p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert_eq!(q.status, RemoteStatus::Filtered);
    assert_eq!(q.error_code.as_deref(), Some("E005"));
    assert!(q.error_message.unwrap().contains("flagged as sensitive"));
    // The same at a later poll.
    let s = p.submit(Some(&c), &r).await.unwrap();
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Queued
    );
    fake.control.push(Endpoint::Poll, Action::Moderation);
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Filtered
    );
}

#[tokio::test]
async fn replicate_cancel_stops_a_running_prediction() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    fake.control.set_polls_until_done(1_000);
    let p = provider(&fake.base_url(), |_| {});
    assert!(p.can_cancel());
    let c = creds("r8_key");
    let params = canonical(&p, Operation::TextToVideo, t2v_params());
    let r = req(Operation::TextToVideo, params, vec![]);
    let s = p.submit(Some(&c), &r).await.unwrap();
    p.poll(Some(&c), &s.remote_id).await.unwrap();
    assert!(p.cancel(Some(&c), &s.remote_id).await.unwrap());
    assert_eq!(fake.control.count(Endpoint::Cancel), 1);
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Cancelled
    );
    // Gone already: counts as cancelled. Refused: an error.
    assert!(p.cancel(Some(&c), "nosuchprediction").await.unwrap());
    fake.control.push(Endpoint::Cancel, Action::ServerError);
    assert!(p.cancel(Some(&c), &s.remote_id).await.is_err());
    let e = p
        .cancel(Some(&creds("r8_wrong")), &s.remote_id)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
}

#[tokio::test]
async fn replicate_webhooks_are_asked_for_signed_and_read() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    fake.control.set_polls_until_done(1_000);
    let c = creds("r8_key");
    // Without a webhook_url: no webhook asked for, no key read.
    let plain = provider(&fake.base_url(), |_| {});
    assert_eq!(plain.webhook_secret(&c).await.unwrap(), None);
    let params = canonical(&plain, Operation::TextToVideo, t2v_params());
    plain
        .submit(
            Some(&c),
            &req(Operation::TextToVideo, params.clone(), vec![]),
        )
        .await
        .unwrap();
    assert!(fake.control.submits()[0]["body"].get("webhook").is_none());

    // With one: the create asks for `completed`; the fake then finishes the
    // prediction and POSTs it, signed with the account's key, which we can read.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let p = provider(&fake.base_url(), |c| c.webhook_url = Some(url.clone()));
    let key = p.webhook_secret(&c).await.unwrap().expect("a key");
    assert_eq!(key, generation::fakes::replicate::WEBHOOK_SECRET);
    let s = p
        .submit(Some(&c), &req(Operation::TextToVideo, params, vec![]))
        .await
        .unwrap();
    let body = &fake.control.submits()[1]["body"];
    assert_eq!(body["webhook"], url.as_str());
    assert_eq!(
        body["webhook_events_filter"],
        serde_json::json!(["completed"])
    );
    let (mut sock, _) = tokio::time::timeout(Duration::from_secs(10), receiver.accept())
        .await
        .unwrap()
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // One request, read to the end of its body (its Content-Length).
    loop {
        use tokio::io::AsyncReadExt;
        let n = sock.read(&mut buf).await.unwrap();
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
        assert!(n > 0, "the webhook request ended early");
    }
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    assert!(head.starts_with("POST /hook "), "{head}");
    let ts: i64 = header("webhook-timestamp").parse().unwrap();
    let k = generation::webhooks::sign::secret_key(&key).unwrap();
    generation::webhooks::sign::verify(
        &k,
        &header("webhook-id"),
        ts,
        body.as_bytes(),
        &header("webhook-signature"),
        chrono::Utc::now().timestamp(),
        300,
    )
    .expect("signed with the account's key");
    // It is about our prediction, which the next poll finds finished.
    assert_eq!(
        p.webhook_subject(body.as_bytes()),
        Some(s.remote_id.clone())
    );
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Succeeded
    );
    assert_eq!(p.webhook_subject(b"{}"), None);
    assert_eq!(p.webhook_subject(b"not json"), None);
    // A bad URL is refused at startup.
    let bad = ReplicateConfig {
        webhook_url: Some("ftp://example.com/hook".into()),
        ..Default::default()
    };
    assert!(ReplicateProvider::new(bad, &open_guard()).is_err());
    assert!(fake.control.violations().is_empty());
}

#[tokio::test]
async fn replicate_large_inputs_go_through_the_files_api() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    fake.control.set_polls_until_done(1);
    let c = creds("r8_key");
    let p = provider(&fake.base_url(), |_| {});
    // A small image goes inline; one over 1 MB is uploaded first.
    let small = image_input();
    assert!(!p.needs_upload(&small));
    let mut large = image_input();
    large.bytes = std::sync::Arc::new(vec![7u8; 1_200_000]);
    assert!(p.needs_upload(&large));
    assert_eq!(
        p.upload_lifetime(),
        Some(Duration::from_secs(23 * 3600)),
        "files expire after 24 h"
    );
    let remote = p.upload_input(Some(&c), &large).await.unwrap();
    let url = remote.url.clone().expect("urls.get");
    assert!(url.contains("/v1/files/"), "{url}");
    let upload = &fake.control.submits()[0]["file"];
    assert_eq!(upload["size"], 1_200_000);
    assert_eq!(upload["content_type"], "image/png");
    large.remote = Some(remote);
    let params = canonical(
        &p,
        Operation::ImageToVideo,
        GenerationParams {
            prompt: Some("the tide comes in".into()),
            ..Default::default()
        },
    );
    let s = p
        .submit(
            Some(&c),
            &req(Operation::ImageToVideo, params.clone(), vec![large.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(
        fake.control.submits()[1]["body"]["input"]["image"],
        url.as_str()
    );
    assert_eq!(
        p.poll(Some(&c), &s.remote_id).await.unwrap().status,
        RemoteStatus::Succeeded
    );
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
    // Inline, the same file breaks the contract's advice (the fake records it) …
    large.remote = None;
    p.submit(
        Some(&c),
        &req(Operation::ImageToVideo, params.clone(), vec![large]),
    )
    .await
    .unwrap();
    assert_eq!(fake.control.violations().len(), 1);
    // … and a file URL the provider does not know is refused.
    let mut unknown = image_input();
    unknown.remote = Some(generation::provider::RemoteInput {
        remote_id: "nope".into(),
        url: Some(format!("{}/v1/files/nope", fake.base_url())),
    });
    let e = p
        .submit(
            Some(&c),
            &req(Operation::ImageToVideo, params, vec![unknown]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::InvalidRequest { .. }), "{e:?}");
    // A wrong key is an authentication failure.
    let e = p
        .upload_input(Some(&creds("r8_wrong")), &image_input())
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Auth { .. }), "{e:?}");
}

#[tokio::test]
async fn replicate_rules_description_and_reachability() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    let p = provider(&fake.base_url(), |_| {});
    // Defaults.
    let d = canonical(
        &p,
        Operation::TextToVideo,
        GenerationParams {
            prompt: Some("x".into()),
            ..Default::default()
        },
    );
    assert_eq!(d.duration, Some(5));
    assert_eq!(d.quality.as_deref(), Some("720p"));
    assert_eq!(d.aspect_ratio.as_deref(), Some("16:9"));
    assert_eq!(p.estimated_credits(Operation::TextToVideo, &d), 50);
    let big = canonical(&p, Operation::TextToVideo, t2v_params());
    assert_eq!(p.estimated_credits(Operation::TextToVideo, &big), 150);
    // Refusals, each naming its field.
    let refused = |op: Operation, params: GenerationParams| {
        let mut issues = Issues::default();
        p.validate(op, &params, &[], &mut issues);
        issues
            .0
            .iter()
            .map(|i| format!("{}:{}", i.field, i.code))
            .collect::<Vec<_>>()
    };
    let prompt = || GenerationParams {
        prompt: Some("x".into()),
        ..Default::default()
    };
    assert_eq!(
        refused(Operation::Fusion, prompt()),
        ["operation:unsupported"]
    );
    assert_eq!(
        refused(
            Operation::TextToVideo,
            GenerationParams {
                duration: Some(8),
                quality: Some("540p".into()),
                aspect_ratio: Some("1:1".into()),
                model: Some("sora-2".into()),
                size: Some("1280x720".into()),
                ..prompt()
            }
        ),
        [
            "params.model:invalid_value",
            "params.quality:invalid_value",
            "params.duration:invalid_value",
            "params.aspect_ratio:invalid_value",
            "params.size:unsupported"
        ]
    );
    assert_eq!(
        refused(
            Operation::ImageToVideo,
            GenerationParams {
                aspect_ratio: Some("16:9".into()),
                negative_prompt: Some("n".repeat(501)),
                ..prompt()
            }
        ),
        [
            "params.negative_prompt:too_long",
            "params.aspect_ratio:unsupported"
        ]
    );
    assert_eq!(
        refused(Operation::TextToVideo, GenerationParams::default()),
        ["params.prompt:required"]
    );

    let desc = p.describe();
    assert_eq!(desc.id, "replicate");
    assert_eq!(desc.status, ProviderStatus::Available);
    assert!(desc.can_cancel && desc.requires_account && desc.accepts_jobs);
    let ops: Vec<Operation> = desc.operations.iter().map(|o| o.operation).collect();
    assert_eq!(ops, [Operation::TextToVideo, Operation::ImageToVideo]);
    assert_eq!(desc.operations[0].durations, [5, 10]);
    assert_eq!(desc.operations[0].models, ["wan-video/wan-2.5-t2v"]);
    assert_eq!(desc.operations[1].max_inputs, Some(1));
    assert!(desc.operations[1].aspect_ratios.is_empty());
    match &desc.credits {
        CreditRule::Table { by, prices, .. } => {
            assert_eq!(by, "quality");
            assert_eq!(prices.get("1080p"), Some(&15));
        }
        other => panic!("{other:?}"),
    }

    // Reachable: the fake answers (a 404 on /v1 counts); a closed port does not.
    p.probe().await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = provider(&format!("http://{closed}"), |_| {});
    assert_eq!(down.probe().await.unwrap_err(), "cannot connect");
    // The guard refuses a private base URL when private outbound is off.
    let guarded = ReplicateProvider::new(
        ReplicateConfig {
            base_url: format!("{}/v1", fake.base_url()),
            ..Default::default()
        },
        &generation::guard::Guard::new(Default::default()),
    )
    .unwrap();
    assert_eq!(
        guarded.probe().await.unwrap_err(),
        "the outbound guard refuses the base URL"
    );
}

/// A whole job through a worker: submitted with the account's token, followed to the
/// end with progress, downloaded, charged the estimate; and a user's cancel reaches
/// the provider.
#[tokio::test]
async fn replicate_worker_end_to_end() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    fake.control.set_polls_until_done(4);
    let e = env_with(replicate_at(fast_config(), &fake.base_url()), None).await;
    let acc = e
        .svc
        .create_account(e.admin, account("replicate", "r8_key"))
        .await
        .unwrap();
    let mut events = e.svc.subscribe();
    let g = e
        .svc
        .create(e.user, t2v("replicate", "a red kite"))
        .await
        .unwrap();
    assert_eq!(g.estimated_credits, 50);
    let out = run_one(&e.svc.worker()).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.status, JobStatus::Completed);
    let a = e.svc.get_asset(e.user, g.asset_id.unwrap()).await.unwrap();
    assert!(a.remote_url.unwrap().contains("/delivery/"));
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].status, SubmissionStatus::Succeeded);
    assert_eq!(subs[0].credits, 50);
    // Progress from the logs was recorded on the way.
    let mut progress = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let Some(p) = ev.generation().and_then(|g| g.progress) {
            progress.push(p);
        }
    }
    assert!(
        progress.contains(&25.0) && progress.contains(&50.0),
        "{progress:?}"
    );
    assert_eq!(
        e.svc
            .get_account(e.admin, acc.id)
            .await
            .unwrap()
            .current_jobs,
        0
    );
    assert_eq!(
        fake.control.submits()[0]["body"]["input"]["prompt"],
        "a red kite"
    );

    // A cancel while it runs stops the prediction on Replicate's side.
    fake.control.set_polls_until_done(1_000_000);
    let g2 = e
        .svc
        .create(e.user, t2v("replicate", "endless kite"))
        .await
        .unwrap();
    let w = e.svc.worker();
    let run = tokio::spawn(async move { w.try_execute_once().await });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.control.count(Endpoint::Poll) < 6 {
        assert!(std::time::Instant::now() < deadline, "no polls");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cancelled = e.svc.cancel(e.user, g2.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.control.count(Endpoint::Cancel) == 0 {
        assert!(std::time::Instant::now() < deadline, "no cancel call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        fake.control.violations().is_empty(),
        "{:?}",
        fake.control.violations()
    );
}

/// `content_filtered`: a moderation refusal gets a new attempt (which may pass) up to
/// `content_filtered_retries` times, counted apart from `max_retries`; then the job
/// fails. 0 fails at once.
#[tokio::test]
async fn content_filtered_is_retried_as_configured() {
    let fake = generation::fakes::replicate::start("r8_key").await.unwrap();
    fake.control.set_polls_until_done(2);
    let mut cfg = replicate_at(fast_config(), &fake.base_url());
    cfg.max_retries = 0;
    let e = env_with(cfg, None).await;
    e.svc
        .create_account(e.admin, account("replicate", "r8_key"))
        .await
        .unwrap();
    let w = e.svc.worker();

    // The first attempt is moderated, the second passes.
    fake.control.push(Endpoint::Submit, Action::Moderation);
    let g = e
        .svc
        .create(e.user, t2v("replicate", "edgy"))
        .await
        .unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "content_filtered".into()
        }
    );
    let mid = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(mid.status, JobStatus::Pending);
    assert_eq!(
        mid.retry_count, 0,
        "a moderation retry is not a failure retry"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = run_one(&w).await;
    assert!(matches!(out, Outcome::Completed { .. }), "{out:?}");
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    let statuses: Vec<_> = subs.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [SubmissionStatus::Filtered, SubmissionStatus::Succeeded]
    );
    assert_eq!(subs[0].error_code.as_deref(), Some("E005"));

    // Moderated twice: the one retry is spent, the job fails.
    fake.control.push(Endpoint::Submit, Action::Moderation);
    fake.control.push(Endpoint::Submit, Action::Moderation);
    let g = e
        .svc
        .create(e.user, t2v("replicate", "edgier"))
        .await
        .unwrap();
    assert_eq!(
        run_one(&w).await,
        Outcome::Requeued {
            code: "content_filtered".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        run_one(&w).await,
        Outcome::Failed {
            code: "content_filtered".into()
        }
    );
    assert_eq!(
        e.svc.get(e.user, g.id).await.unwrap().status,
        JobStatus::Failed
    );

    // With 0 retries the first refusal fails the job.
    let mut cfg = replicate_at(fast_config(), &fake.base_url());
    cfg.content_filtered_retries = 0;
    let e = env_with(cfg, None).await;
    e.svc
        .create_account(e.admin, account("replicate", "r8_key"))
        .await
        .unwrap();
    fake.control.push(Endpoint::Submit, Action::Moderation);
    let g = e
        .svc
        .create(e.user, t2v("replicate", "edgy"))
        .await
        .unwrap();
    assert_eq!(
        run_one(&e.svc.worker()).await,
        Outcome::Failed {
            code: "content_filtered".into()
        }
    );
    assert_eq!(
        e.svc.get(e.user, g.id).await.unwrap().error_code.as_deref(),
        Some("content_filtered")
    );
}

/// OpenAI is retired: its jobs are refused at creation with a 422-class error naming
/// the date, unless its entry says the base URL still serves the contract.
#[tokio::test]
async fn a_retired_provider_refuses_new_jobs() {
    let e = env().await;
    e.svc
        .create_account(e.admin, account("openai", "sk"))
        .await
        .unwrap();
    let err = e
        .svc
        .create(e.user, t2v("openai", "waves"))
        .await
        .unwrap_err();
    match err {
        GenerationError::InvalidParameters(issues) => {
            let i = issues.iter().find(|i| i.field == "provider").unwrap();
            assert_eq!(i.code, "retired");
            assert!(i.message.contains("2026-09-24"), "{}", i.message);
        }
        other => panic!("{other:?}"),
    }
    let listed = e.svc.list_providers(e.user).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["local", "openai", "pixverse", "replicate"]);
    let openai = &listed[1];
    assert_eq!(openai.status, ProviderStatus::Retired);
    assert_eq!(openai.retired_on.as_deref(), Some("2026-09-24"));
    assert!(!openai.accepts_jobs);
    // No account for these: unconfigured for this user.
    assert_eq!(listed[2].status, ProviderStatus::Unconfigured);
    assert_eq!(listed[3].status, ProviderStatus::Unconfigured);
    assert_eq!(listed[0].status, ProviderStatus::Available);
}
