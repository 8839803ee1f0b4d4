//! Queue places (`store::generation::jobs::queue_places`) against the claim order
//! computed here: due jobs by priority (highest first), then age; jobs scheduled later
//! after every due one, by their time. The statement counts the due jobs ahead of the
//! first job asked about and ranks only the rest, so it is asked about sets that start
//! at the head, in the middle, at the end and among the scheduled jobs.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use domain::user::Role;
use store::generation::jobs::{self, InsertOutcome, NewJob};
use store::testing::{fresh_database, new_job};
use store::users::{self, NewUser};
use uuid::Uuid;

#[tokio::test]
async fn places_follow_the_claim_order_whichever_jobs_are_asked_about() {
    let db = fresh_database().await.unwrap();
    let user = users::create(
        &db.pool,
        NewUser {
            email: "queue@example.com",
            password_hash: "hash",
            display_name: None,
            role: Role::User,
        },
    )
    .await
    .unwrap()
    .id
    .0;
    // Twelve jobs, one at a time (so each is older than the next): priorities mixed,
    // two scheduled an hour and two hours ahead.
    let now = Utc::now();
    let specs: [(i16, Option<DateTime<Utc>>); 12] = [
        (5, None),
        (1, None),
        (5, Some(now + Duration::hours(2))),
        (9, None),
        (5, None),
        (1, None),
        (9, Some(now + Duration::hours(1))),
        (5, None),
        (9, None),
        (1, None),
        (5, None),
        (7, None),
    ];
    let mut rows = Vec::new();
    for (i, (priority, at)) in specs.into_iter().enumerate() {
        let job = NewJob {
            priority,
            scheduled_at: at,
            ..new_job(user, &format!("job {i}"))
        };
        match jobs::insert(&db.pool, &job, None).await.unwrap() {
            InsertOutcome::Created(r) => rows.push(r),
            other => panic!("job {i}: {other:?}"),
        }
    }
    // The claim order, computed here.
    let mut order = rows.clone();
    order.sort_by(|a, b| {
        let due = |r: &jobs::JobRow| r.scheduled_at <= Utc::now();
        due(b)
            .cmp(&due(a))
            .then_with(|| match (due(a), due(b)) {
                (false, false) => a.scheduled_at.cmp(&b.scheduled_at),
                _ => std::cmp::Ordering::Equal,
            })
            .then(b.priority.cmp(&a.priority))
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id))
    });
    let expected = |id: Uuid| order.iter().position(|r| r.id == id).unwrap() as i64 + 1;
    // The head, a stretch in the middle, the tail, the scheduled ones, everything.
    let ids: Vec<Uuid> = order.iter().map(|r| r.id).collect();
    let sets: Vec<Vec<Uuid>> = vec![
        ids[..2].to_vec(),
        ids[4..7].to_vec(),
        vec![ids[3], ids[8]],
        ids[9..].to_vec(),
        ids[10..].to_vec(),
        ids.clone(),
    ];
    for set in sets {
        let mut places = jobs::queue_places(&db.pool, &set).await.unwrap();
        places.sort_by_key(|p| p.position);
        let got: Vec<(Uuid, i64)> = places.iter().map(|p| (p.id, p.position)).collect();
        let mut want: Vec<(Uuid, i64)> = set.iter().map(|id| (*id, expected(*id))).collect();
        want.sort_by_key(|w| w.1);
        assert_eq!(got, want, "asked about {set:?}");
    }
}
