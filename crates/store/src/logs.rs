//! The `log_entry` table: tracing events kept for operators.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::StoreError;

/// One log line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct LogEntry {
    #[serde(default)]
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub level: String,
    pub target: String,
    pub message: String,
    pub fields: serde_json::Value,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub job_id: Option<String>,
    pub provider: Option<String>,
    pub account_id: Option<String>,
}

/// Inserts many lines in one statement.
pub async fn insert_batch(pool: &PgPool, lines: &[LogEntry]) -> Result<u64, StoreError> {
    if lines.is_empty() {
        return Ok(0);
    }
    macro_rules! col {
        ($f:ident) => {
            lines.iter().map(|l| l.$f.clone()).collect::<Vec<_>>()
        };
    }
    let fields: Vec<String> = lines.iter().map(|l| l.fields.to_string()).collect();
    let done = sqlx::query!(
        "INSERT INTO log_entry (ts, level, target, message, fields, request_id, user_id, session_id, job_id, provider, account_id)
         SELECT t, l, tg, m, f::jsonb, r, u, s, j, p, a
         FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
              AS x(t, l, tg, m, f, r, u, s, j, p, a)",
        &col!(ts),
        &col!(level),
        &col!(target),
        &col!(message),
        &fields,
        // Nullable elements: `as _` skips the macro's `Vec<String>` check.
        col!(request_id) as _,
        col!(user_id) as _,
        col!(session_id) as _,
        col!(job_id) as _,
        col!(provider) as _,
        col!(account_id) as _,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Filters of [`query`]; every given one must match.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// This level and more severe (`error` < `warn` < `info` < `debug` < `trace`).
    pub level: Option<String>,
    /// Target prefix, e.g. `api` or `generation::worker`.
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub job_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive text in the message or fields.
    pub text: Option<String>,
    /// Only lines with an id below this (for paging back).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Levels at or above `level`, most severe first.
pub fn levels_at_least(level: &str) -> Option<&'static [&'static str]> {
    const ALL: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
    let i = ALL.iter().position(|l| l.eq_ignore_ascii_case(level))?;
    Some(&ALL[..=i])
}

/// Matching lines, newest first. Runtime-checked: the statement is built from the
/// filters given (`QueryBuilder`), which the query macros cannot check.
pub async fn query(pool: &PgPool, f: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, ts, level, target, message, fields, request_id, user_id, session_id, job_id, provider, account_id
         FROM log_entry WHERE true",
    );
    if let Some(level) = &f.level {
        let levels: Vec<String> = levels_at_least(level)
            .unwrap_or(&[])
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        q.push(" AND level = ANY(").push_bind(levels).push(")");
    }
    if let Some(t) = &f.target {
        q.push(" AND target LIKE ")
            .push_bind(format!("{}%", escape_like(t)));
    }
    for (col, v) in [
        ("request_id", &f.request_id),
        ("user_id", &f.user_id),
        ("session_id", &f.session_id),
        ("job_id", &f.job_id),
    ] {
        if let Some(v) = v {
            q.push(format!(" AND {col} = ")).push_bind(v.clone());
        }
    }
    if let Some(t) = f.since {
        q.push(" AND ts >= ").push_bind(t);
    }
    if let Some(t) = f.until {
        q.push(" AND ts < ").push_bind(t);
    }
    if let Some(text) = &f.text {
        let pat = format!("%{}%", escape_like(text));
        q.push(" AND (message ILIKE ").push_bind(pat.clone());
        q.push(" OR fields::text ILIKE ").push_bind(pat).push(")");
    }
    if let Some(id) = f.before_id {
        q.push(" AND id < ").push_bind(id);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(f.limit.clamp(1, 1000));
    Ok(q.build_query_as::<LogEntry>().fetch_all(pool).await?)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Deletes log lines older than `older_than`, and the oldest beyond the newest
/// `keep_at_most`, in slices of `slice` rows (so one purge never holds a long lock or
/// a huge transaction). Returns how many it deleted.
pub async fn purge(
    pool: &PgPool,
    older_than: DateTime<Utc>,
    keep_at_most: i64,
    slice: i64,
) -> Result<u64, StoreError> {
    // The id below which every line is beyond the cap (ids grow with time).
    let cutoff = sqlx::query_scalar!(
        "SELECT id FROM log_entry ORDER BY id DESC OFFSET $1 LIMIT 1",
        keep_at_most.max(0),
    )
    .fetch_optional(pool)
    .await?;
    let cutoff = cutoff.unwrap_or(0);
    let mut deleted = 0;
    loop {
        let done = sqlx::query!(
            "DELETE FROM log_entry WHERE id IN (
                 SELECT id FROM log_entry WHERE ts < $1 OR id <= $2 LIMIT $3)",
            older_than,
            cutoff,
            slice.max(1),
        )
        .execute(pool)
        .await?
        .rows_affected();
        deleted += done;
        if done < slice.max(1) as u64 {
            return Ok(deleted);
        }
    }
}
