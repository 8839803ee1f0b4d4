//! The OpenAI adapter against its contract fake, alone and through a worker.

use crate::common::*;
use std::time::Duration;

use generation::fakes::{Action, Endpoint};
use generation::model::{GenerationParams, Operation};
use generation::provider::openai::{OpenAiConfig, OpenAiProvider};
use generation::provider::{Provider, ProviderError, RemoteStatus};
use generation::{Executed, Outcome};

use super::{Check, creds, downloader, image_input, open_guard, req};

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
