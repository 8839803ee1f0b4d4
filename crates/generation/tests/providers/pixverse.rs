//! The Pixverse adapter against its contract fake: requests, headers, failure codes.

use std::time::Duration;

use generation::fakes::{Action, Endpoint};
use generation::model::Operation;
use generation::provider::{Provider, ProviderError, RemoteStatus};

use super::{Check, creds, downloader, image_input, pix_params, pixverse, req};

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
