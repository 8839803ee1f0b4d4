#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use domain::user::Role;
use store::users::{NewUser, UserPatch};
use store::{StoreError, auth_sessions, testing::fresh_database, users};

fn new_user(email: &str) -> NewUser<'_> {
    NewUser {
        email,
        password_hash: "hash",
        display_name: None,
        role: Role::User,
    }
}

#[tokio::test]
async fn emails_are_unique_case_insensitively() {
    let db = fresh_database().await.unwrap();
    users::create(&db.pool, new_user("Ann@Example.com"))
        .await
        .unwrap();
    let err = users::create(&db.pool, new_user("ann@example.COM"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let (user, hash) = users::credentials(&db.pool, "ANN@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, "Ann@Example.com");
    assert_eq!(hash, "hash");
}

#[tokio::test]
async fn each_test_gets_an_empty_database() {
    let a = fresh_database().await.unwrap();
    let b = fresh_database().await.unwrap();
    assert_ne!(a.name, b.name);
    users::create(&a.pool, new_user("x@example.com"))
        .await
        .unwrap();
    assert_eq!(users::count(&a.pool).await.unwrap(), 1);
    assert_eq!(users::count(&b.pool).await.unwrap(), 0);
    let v: String = sqlx::query_scalar("SELECT '[1,2,3]'::vector::text")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(v, "[1,2,3]", "pgvector is installed by the migrations");
}

#[tokio::test]
async fn patch_changes_only_given_fields() {
    let db = fresh_database().await.unwrap();
    let u = users::create(&db.pool, new_user("p@example.com"))
        .await
        .unwrap();
    let u2 = users::update(
        &db.pool,
        u.id,
        UserPatch {
            display_name: Some(Some("Pat")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(u2.display_name.as_deref(), Some("Pat"));
    assert_eq!(u2.role, Role::User);
    let u3 = users::update(
        &db.pool,
        u.id,
        UserPatch {
            role: Some(Role::Admin),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(u3.display_name.as_deref(), Some("Pat"), "untouched");
    assert_eq!(u3.role, Role::Admin);
    let u4 = users::update(
        &db.pool,
        u.id,
        UserPatch {
            display_name: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(u4.display_name, None, "cleared");
}

#[tokio::test]
async fn sessions_authenticate_until_revoked_or_expired() {
    let db = fresh_database().await.unwrap();
    let u = users::create(&db.pool, new_user("s@example.com"))
        .await
        .unwrap();
    let live = auth_sessions::create(
        &db.pool,
        u.id,
        Utc::now() + Duration::hours(1),
        Some("t"),
        None,
    )
    .await
    .unwrap();
    let other = auth_sessions::create(&db.pool, u.id, Utc::now() + Duration::hours(1), None, None)
        .await
        .unwrap();
    let expired = auth_sessions::create(
        &db.pool,
        u.id,
        Utc::now() - Duration::seconds(1),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        auth_sessions::authenticate(&db.pool, live.id)
            .await
            .unwrap()
            .unwrap()
            .id,
        u.id
    );
    assert!(
        auth_sessions::authenticate(&db.pool, expired.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        auth_sessions::list_active(&db.pool, u.id)
            .await
            .unwrap()
            .len(),
        2
    );

    assert!(
        auth_sessions::revoke(&db.pool, u.id, live.id)
            .await
            .unwrap()
    );
    assert!(
        !auth_sessions::revoke(&db.pool, u.id, live.id)
            .await
            .unwrap(),
        "already revoked"
    );
    assert!(
        auth_sessions::authenticate(&db.pool, live.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        auth_sessions::authenticate(&db.pool, other.id)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(
        auth_sessions::revoke_all(&db.pool, u.id, None)
            .await
            .unwrap(),
        1
    );
    assert!(
        auth_sessions::authenticate(&db.pool, other.id)
            .await
            .unwrap()
            .is_none()
    );

    let s = auth_sessions::create(&db.pool, u.id, Utc::now() + Duration::hours(1), None, None)
        .await
        .unwrap();
    users::update(
        &db.pool,
        u.id,
        UserPatch {
            disabled: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        auth_sessions::authenticate(&db.pool, s.id)
            .await
            .unwrap()
            .is_none(),
        "disabled user"
    );
}
