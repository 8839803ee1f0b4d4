//! `log_entry` retention: lines past their age or beyond the cap are purged.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use store::logs::{LogEntry, insert_batch, purge};
use store::testing::fresh_database;

fn line(n: i64, age_days: i64) -> LogEntry {
    LogEntry {
        id: 0,
        ts: Utc::now() - Duration::days(age_days),
        level: "INFO".into(),
        target: "t".into(),
        message: format!("line {n}"),
        fields: serde_json::json!({}),
        request_id: None,
        user_id: None,
        session_id: None,
        job_id: None,
        provider: None,
        account_id: None,
    }
}

#[tokio::test]
async fn purge_drops_old_lines_and_keeps_at_most_the_cap() {
    let db = fresh_database().await.unwrap();
    // 10 lines 20 days old, then 40 of today, in insertion (id) order.
    let old: Vec<_> = (0..10).map(|n| line(n, 20)).collect();
    let new: Vec<_> = (10..50).map(|n| line(n, 0)).collect();
    insert_batch(&db.pool, &old).await.unwrap();
    insert_batch(&db.pool, &new).await.unwrap();

    // Nothing to do: everything young and under the cap.
    let week_ago = Utc::now() - Duration::days(30);
    assert_eq!(purge(&db.pool, week_ago, 1000, 7).await.unwrap(), 0);

    // Age: the 10 old lines go; cap 25: 15 more of the oldest go, in slices of 7.
    let cut = Utc::now() - Duration::days(14);
    assert_eq!(purge(&db.pool, cut, 25, 7).await.unwrap(), 25);
    let left: Vec<String> = sqlx::query_scalar("SELECT message FROM log_entry ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left.len(), 25);
    assert_eq!(left.first().map(String::as_str), Some("line 25"));
    assert_eq!(left.last().map(String::as_str), Some("line 49"));
    assert_eq!(purge(&db.pool, cut, 25, 7).await.unwrap(), 0);
}
