//! Issue #18, item 1 and 2b: every outbound request goes through the one guard (at
//! connect time too), provider base URLs come from configuration only, a provider's
//! error text never reaches a user, and API keys are sealed at rest.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use generation::download::{DownloadConfig, DownloadError, Downloader};
use generation::fakes::Endpoint;
use generation::guard::{Guard, GuardConfig};
use generation::model::{AccountStatus, GenerationParams, JobStatus, Operation};
use generation::provider::openai::{OpenAiConfig, OpenAiProvider};
use generation::provider::pixverse::{PixverseConfig, PixverseProvider};
use generation::provider::{Credentials, Provider, ProviderError, SubmitRequest};
use generation::secrets::SecretKey;
use generation::{Executed, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// A loopback HTTP server that answers every request with `status` and `body`, and
/// counts the connections it accepted.
async fn canned(status: u16, body: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = Vec::new();
                // Read up to the end of the headers (the bodies sent here are small).
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

fn strict() -> GuardConfig {
    GuardConfig::default()
}

/// A guard for which `rebind.test` resolves to loopback, as a DNS-rebinding name would
/// once it has passed an earlier check.
fn rebinding(cfg: GuardConfig) -> Guard {
    Guard::with_hosts(
        cfg,
        HashMap::from([(
            "rebind.test".to_owned(),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )]),
    )
}

fn t2v_request() -> SubmitRequest {
    SubmitRequest {
        job_id: Uuid::now_v7(),
        attempt: 1,
        operation: Operation::TextToVideo,
        params: GenerationParams {
            prompt: Some("a cat".into()),
            model: Some("v5".into()),
            duration: Some(5),
            quality: Some("540p".into()),
            ..Default::default()
        },
        inputs: Vec::new(),
        progress: Default::default(),
    }
}

fn creds() -> Credentials {
    Credentials {
        account_id: Uuid::now_v7(),
        api_key: "pk".into(),
    }
}

fn pixverse(base: String, guard: &Guard) -> PixverseProvider {
    PixverseProvider::new(
        PixverseConfig {
            base_url: base,
            request_timeout: Duration::from_secs(2),
            ..Default::default()
        },
        guard,
    )
    .unwrap()
}

#[tokio::test]
async fn provider_calls_to_private_base_urls_are_refused_before_any_connection() {
    let (addr, seen) = canned(200, "{}").await;
    let guard = Guard::new(strict());
    for base in [
        format!("http://{addr}"),
        format!("http://[::ffff:127.0.0.1]:{}", addr.port()),
        format!("http://localhost:{}", addr.port()),
        format!("http://2130706433:{}", addr.port()),
    ] {
        let p = pixverse(base.clone(), &guard);
        let err = p.submit(Some(&creds()), &t2v_request()).await.unwrap_err();
        assert!(matches!(err, ProviderError::Blocked(_)), "{base}: {err:?}");
    }
    let openai = OpenAiProvider::new(
        OpenAiConfig {
            base_url: format!("http://{addr}/v1"),
            ..Default::default()
        },
        &guard,
    )
    .unwrap();
    let err = openai.poll(Some(&creds()), "video_1").await.unwrap_err();
    assert!(matches!(err, ProviderError::Blocked(_)), "{err:?}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "nothing may reach the server"
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
    let (addr, seen) = canned(200, "{}").await;
    let base = format!("http://rebind.test:{}", addr.port());
    // The name passes the URL check (it is not an address literal) …
    let p = pixverse(base.clone(), &rebinding(strict()));
    let err = p.submit(Some(&creds()), &t2v_request()).await.unwrap_err();
    // … and is refused when the client connects.
    assert!(matches!(err, ProviderError::Blocked(_)), "{err:?}");
    let dl = Downloader::new(DownloadConfig::default(), &rebinding(strict())).unwrap();
    let err = dl.fetch(&format!("{base}/media")).await.unwrap_err();
    assert!(matches!(err, DownloadError::Blocked(_)), "{err:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 0);

    // The same name, allowed by configuration, does connect: the refusal above was
    // the guard's, not a broken setup.
    let allowed = rebinding(GuardConfig {
        allow_hosts: vec!["rebind.test".into()],
        ..Default::default()
    });
    let err = pixverse(base, &allowed)
        .submit(Some(&creds()), &t2v_request())
        .await
        .unwrap_err();
    assert!(!matches!(err, ProviderError::Blocked(_)), "{err:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// A provider whose error body carries internal details: the job, its submission and
/// the account keep a code and a fixed sentence, never the body.
#[tokio::test]
async fn a_providers_error_text_never_reaches_the_user() {
    const BODY: &str = "upstream http://10.1.2.3:8080/internal failed, token=hunter2";
    let (addr, _) = canned(400, BODY).await;
    let e = env_with(pixverse_at(fast_config(), &format!("http://{addr}")), None).await;
    e.svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    let g = e.svc.create(e.user, t2v("pixverse", "x")).await.unwrap();
    let out = e.svc.worker().try_execute_once().await.unwrap();
    assert!(
        matches!(out, Executed::Ran { outcome: Outcome::Failed { ref code }, .. } if code == "provider_rejected"),
        "{out:?}"
    );
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.status, JobStatus::Failed);
    let msg = g.error_message.clone().unwrap_or_default();
    assert_eq!(msg, "the provider refused the request (code http_400)");
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    let everything = format!("{g:?} {subs:?}");
    for secret in ["hunter2", "10.1.2.3", "upstream"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
}

#[tokio::test]
async fn api_keys_are_sealed_at_rest_and_old_plaintext_keys_are_sealed_at_startup() {
    let fake = generation::fakes::pixverse::start("pk-9876").await.unwrap();
    let cfg = pixverse_at(fast_config(), &fake.base_url());
    let key = cfg.secret_key.clone();
    let e = env_with(cfg, None).await;
    let a = e
        .svc
        .create_account(e.admin, account("pixverse", "pk-9876"))
        .await
        .unwrap();
    assert_eq!(a.api_key_hint, "…9876");
    let stored: String = sqlx::query_scalar("SELECT api_key FROM provider_accounts WHERE id = $1")
        .bind(a.id)
        .fetch_one(&e.db.pool)
        .await
        .unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains("pk-9876"),
        "{stored}"
    );
    assert_eq!(key.open(a.id, &stored).unwrap(), "pk-9876");

    // A row written before sealing existed holds the key in plaintext: startup seals it,
    // and the provider still gets the right key.
    sqlx::query("UPDATE provider_accounts SET api_key = 'pk-9876' WHERE id = $1")
        .bind(a.id)
        .execute(&e.db.pool)
        .await
        .unwrap();
    assert_eq!(e.svc.seal_stored_keys().await.unwrap(), 1);
    assert_eq!(e.svc.seal_stored_keys().await.unwrap(), 0);
    let stored: String = sqlx::query_scalar("SELECT api_key FROM provider_accounts WHERE id = $1")
        .bind(a.id)
        .fetch_one(&e.db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("v1:"), "{stored}");
    let g = e.svc.create(e.user, t2v("pixverse", "x")).await.unwrap();
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
    assert_eq!(
        e.svc.get(e.user, g.id).await.unwrap().status,
        JobStatus::Completed
    );

    // A process with another secret key cannot use the sealed key: the account is
    // marked in error, the key is never sent.
    let mut other = pixverse_at(fast_config(), &fake.base_url());
    other.secret_key = SecretKey::random();
    let svc2 = generation::GenerationService::new(e.db.pool.clone(), other).unwrap();
    let before = fake.control.count(Endpoint::Submit);
    e.svc.create(e.user, t2v("pixverse", "y")).await.unwrap();
    svc2.worker().try_execute_once().await.unwrap();
    assert_eq!(
        fake.control.count(Endpoint::Submit),
        before,
        "no call with an unreadable key"
    );
    let a = e.svc.get_account(e.admin, a.id).await.unwrap();
    assert_eq!(a.status, AccountStatus::Error);
}

#[test]
fn credentials_never_show_their_key_in_debug_output() {
    let c = Credentials {
        account_id: Uuid::now_v7(),
        api_key: "sk-very-secret-4321".into(),
    };
    assert!(!format!("{c:?}").contains("secret"), "{c:?}");
}
