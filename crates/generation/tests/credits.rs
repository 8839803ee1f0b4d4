//! Credit accounting against the Pixverse contract fake: charges on accepted
//! submissions, the documented refund of moderation failures (status 7), `exhausted` at
//! zero, and balances read from `GET /openapi/v2/account/balance`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use generation::GenerationError;
use generation::fakes::{Action, Billing, Endpoint};
use generation::model::{AccountStatus, JobStatus, ProviderAccount, SubmissionStatus};
use generation::{Executed, Outcome};
use uuid::Uuid;

async fn account_now(e: &Env, id: Uuid) -> ProviderAccount {
    e.svc.get_account(e.admin, id).await.unwrap()
}

fn outcome(out: Executed) -> Outcome {
    match out {
        Executed::Ran { outcome, .. } => outcome,
        Executed::EmptyQueue => panic!("the queue was empty"),
    }
}

/// Our tracked balance follows the provider's: every accepted submission is charged
/// the price (45 for a 5 s 540p video, the fake's price too), a moderation failure is
/// refunded once, a plain failure is not, and a refresh reads the provider's figure.
#[tokio::test]
async fn pixverse_charges_refunds_and_refreshes() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    fake.control.set_balance(100, 50, 45);
    // A moderation failure ends the job here (no new attempt), to follow its refund.
    let mut cfg = pixverse_at(fast_config(), &fake.base_url());
    cfg.content_filtered_retries = 0;
    let e = env_with(cfg, None).await;
    let mut new = account("pixverse", "pk");
    new.credits = Some(1000);
    let a = e.svc.create_account(e.admin, new).await.unwrap();
    let w = e.svc.worker();

    // Completed: charged once.
    let g = e.svc.create(e.user, t2v("pixverse", "one")).await.unwrap();
    assert_eq!(g.estimated_credits, 45);
    assert_eq!(g.credits_charged, 0);
    assert!(matches!(
        outcome(w.try_execute_once().await.unwrap()),
        Outcome::Completed { .. }
    ));
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.credits_charged, 45);
    let subs = e.svc.submissions(e.user, g.id).await.unwrap();
    assert_eq!((subs[0].credits, subs[0].credits_refunded), (45, false));
    assert_eq!(account_now(&e, a.id).await.credits, Some(955));
    assert_eq!(
        fake.control.balance(),
        Some(Billing {
            monthly: 55,
            package: 50,
            cost: 45
        })
    );

    // A refresh replaces our figure by the provider's: monthly + package.
    assert!(a.balance_checked_at.is_none());
    let refreshed = e.svc.refresh_account(e.admin, a.id).await.unwrap();
    assert_eq!(refreshed.credits, Some(105));
    assert_eq!(refreshed.status, AccountStatus::Active);
    assert!(refreshed.balance_checked_at.is_some());

    // Moderation failure (status 7, "credits refunded"): the charge comes back.
    fake.control.push(Endpoint::Poll, Action::Moderation);
    let g2 = e.svc.create(e.user, t2v("pixverse", "two")).await.unwrap();
    assert!(
        matches!(outcome(w.try_execute_once().await.unwrap()), Outcome::Failed { ref code } if code == "content_filtered")
    );
    let g2 = e.svc.get(e.user, g2.id).await.unwrap();
    assert_eq!(g2.credits_charged, 0);
    let subs = e.svc.submissions(e.user, g2.id).await.unwrap();
    assert_eq!(subs[0].status, SubmissionStatus::Filtered);
    assert_eq!((subs[0].credits, subs[0].credits_refunded), (45, true));
    assert_eq!(account_now(&e, a.id).await.credits, Some(105));

    // A plain failure (status 8) is not refunded; the retry pays again.
    fake.control.push(Endpoint::Poll, Action::RemoteFailed);
    let g3 = e
        .svc
        .create(e.user, t2v("pixverse", "three"))
        .await
        .unwrap();
    assert!(
        matches!(outcome(w.try_execute_once().await.unwrap()), Outcome::Requeued { ref code } if code == "provider_failed")
    );
    assert_eq!(account_now(&e, a.id).await.credits, Some(60));
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert!(matches!(
        outcome(w.try_execute_once().await.unwrap()),
        Outcome::Completed { .. }
    ));
    let g3 = e.svc.get(e.user, g3.id).await.unwrap();
    assert_eq!(g3.status, JobStatus::Completed);
    assert_eq!(g3.credits_charged, 90);
    assert_eq!(account_now(&e, a.id).await.credits, Some(15));

    // Both sides agree after all of it.
    let fake_total = fake.control.balance().map(|b| b.monthly + b.package);
    assert_eq!(fake_total, Some(15));
    let refreshed = e.svc.refresh_account(e.admin, a.id).await.unwrap();
    assert_eq!(refreshed.credits, Some(15));
    assert!(fake.control.violations().is_empty());
}

/// An out-of-credits answer reads the provider's balance and retires the account as
/// `exhausted`; a refresh after a top-up brings it back.
#[tokio::test]
async fn out_of_credits_reads_the_balance_and_a_refresh_revives() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    fake.control.set_balance(0, 30, 45);
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    // Untracked locally (credits unknown), so it is chosen.
    let a = e
        .svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    assert_eq!(a.credits, None);
    let w = e.svc.worker();
    let g = e.svc.create(e.user, t2v("pixverse", "poor")).await.unwrap();
    assert!(
        matches!(outcome(w.try_execute_once().await.unwrap()), Outcome::Requeued { ref code } if code == "out_of_credits")
    );
    let acc = account_now(&e, a.id).await;
    assert_eq!(acc.status, AccountStatus::Exhausted);
    assert_eq!(acc.credits, Some(30), "the balance endpoint's figure");
    assert!(acc.balance_checked_at.is_some());
    assert_eq!(fake.control.count(Endpoint::Balance), 1);
    // Nothing else can run it.
    assert!(
        matches!(outcome(w.try_execute_once().await.unwrap()), Outcome::Failed { ref code } if code == "no_account_available")
    );
    let g = e.svc.get(e.user, g.id).await.unwrap();
    assert_eq!(g.credits_charged, 0);

    // Topped up on the provider's side: a refresh makes it active again.
    fake.control.set_balance(100, 30, 45);
    let acc = e.svc.refresh_account(e.admin, a.id).await.unwrap();
    assert_eq!(
        (acc.status, acc.credits),
        (AccountStatus::Active, Some(130))
    );
    e.svc.retry(e.user, g.id).await.unwrap();
    assert!(matches!(
        outcome(w.try_execute_once().await.unwrap()),
        Outcome::Completed { .. }
    ));
    assert_eq!(account_now(&e, a.id).await.credits, Some(85));
}

/// A charge that takes the tracked balance to zero marks the account `exhausted`.
#[tokio::test]
async fn exhausted_at_zero() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    let mut new = account("pixverse", "pk");
    new.credits = Some(45);
    let a = e.svc.create_account(e.admin, new).await.unwrap();
    e.svc.create(e.user, t2v("pixverse", "last")).await.unwrap();
    assert!(matches!(
        outcome(e.svc.worker().try_execute_once().await.unwrap()),
        Outcome::Completed { .. }
    ));
    let acc = account_now(&e, a.id).await;
    assert_eq!(
        (acc.status, acc.credits),
        (AccountStatus::Exhausted, Some(0))
    );
    // Jobs now fail at create: no account could ever run them.
    let err = e
        .svc
        .create(e.user, t2v("pixverse", "more"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "no_account_available");
}

/// Refresh errors: no balance endpoint, a refused key, an unreachable provider, and
/// the account permissions.
#[tokio::test]
async fn refresh_errors() {
    let fake = generation::fakes::pixverse::start("pk").await.unwrap();
    let e = env_with(pixverse_at(fast_config(), &fake.base_url()), None).await;
    let openai = e
        .svc
        .create_account(e.admin, account("openai", "sk"))
        .await
        .unwrap();
    let err = e.svc.refresh_account(e.admin, openai.id).await.unwrap_err();
    assert!(matches!(err, GenerationError::Unsupported(_)), "{err}");
    assert_eq!((err.code(), err.http_status()), ("unsupported", 422));

    let shared = e
        .svc
        .create_account(e.admin, account("pixverse", "pk"))
        .await
        .unwrap();
    // Users may not refresh shared accounts.
    let err = e.svc.refresh_account(e.user, shared.id).await.unwrap_err();
    assert_eq!(err.http_status(), 403);

    fake.control.push(Endpoint::Balance, Action::ServerError);
    let err = e.svc.refresh_account(e.admin, shared.id).await.unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("provider_unavailable", 503)
    );
    assert_eq!(
        account_now(&e, shared.id).await.status,
        AccountStatus::Active
    );

    fake.control.push(Endpoint::Balance, Action::Unauthorized);
    let err = e.svc.refresh_account(e.admin, shared.id).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("provider_refused", 409));
    assert_eq!(
        account_now(&e, shared.id).await.status,
        AccountStatus::Error
    );

    // A user's own account: theirs to refresh, nobody else's.
    let mut own = account("pixverse", "pk");
    own.shared = false;
    let own = e.svc.create_account(e.user, own).await.unwrap();
    let other = generation::model::Actor::user(user(&e.db, domain::user::Role::User).await);
    let err = e.svc.refresh_account(other, own.id).await.unwrap_err();
    assert_eq!(err.http_status(), 404);
    let acc = e.svc.refresh_account(e.user, own.id).await.unwrap();
    assert_eq!(acc.credits, Some(150));
}
