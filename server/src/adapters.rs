//! The server's implementations of what the API asks for without knowing the parts:
//! the Redis health probe ([`api::HealthProbe`]) over a `redis::Client`, and the QUIC
//! endpoint's figures ([`api::ChannelStats`]) over [`quic::QuicStats`], and the
//! `/metrics` sources ([`api::MetricsSource`]) of the log sink and the generation
//! pipeline.

use std::sync::Arc;
use std::time::Duration;

use store::PgPool;

use crate::logsink;

/// A PING of the Redis at `url` within `timeout`, without holding a connection open.
pub fn redis_probe(url: &str, timeout: Duration) -> Result<api::HealthProbe, redis::RedisError> {
    let client = redis::Client::open(url)?;
    Ok(api::HealthProbe::new(move || {
        let client = client.clone();
        async move {
            let attempt = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            }
        }
    }))
}

/// The QUIC endpoint's connection figures, read on each `/metrics` scrape.
pub fn quic_figures(stats: quic::QuicStats) -> api::ChannelStats {
    Arc::new(move || api::ChannelFigures {
        connections: stats.connections(),
        accepted_total: stats.total_accepted(),
    })
}

/// The WebSocket game channel's connection figures for `/metrics`
/// (`pixsim_ws_connections`, `pixsim_ws_connections_accepted_total`).
pub fn ws_metrics(stats: channel::ConnectionStats) -> api::MetricsSource {
    Arc::new(move || {
        let text = format!(
            "# HELP pixsim_ws_connections Open WebSocket game connections.\n\
             # TYPE pixsim_ws_connections gauge\n\
             pixsim_ws_connections {}\n\
             # HELP pixsim_ws_connections_accepted_total WebSocket game connections accepted.\n\
             # TYPE pixsim_ws_connections_accepted_total counter\n\
             pixsim_ws_connections_accepted_total {}\n",
            stats.connections(),
            stats.total_accepted()
        );
        Box::pin(std::future::ready(text))
    })
}

/// `pixsim_log_lines_dropped_total` for `/metrics`.
pub fn log_metrics() -> api::MetricsSource {
    Arc::new(|| {
        Box::pin(async {
            format!(
                "# HELP pixsim_log_lines_dropped_total Log lines not stored because the writer was behind.\n\
                 # TYPE pixsim_log_lines_dropped_total counter\n\
                 pixsim_log_lines_dropped_total {}\n",
                logsink::dropped()
            )
        })
    })
}

/// Webhook counters of this process, for `/metrics`.
pub fn webhook_metrics(generation: generation::GenerationService) -> api::MetricsSource {
    Arc::new(move || {
        let (delivered, failed, dropped) = generation.webhook_counters();
        Box::pin(std::future::ready(format!(
            "# HELP pixsim_webhook_deliveries_total Webhook messages delivered (a 2xx answer) by this process.\n\
             # TYPE pixsim_webhook_deliveries_total counter\n\
             pixsim_webhook_deliveries_total {delivered}\n\
             # HELP pixsim_webhook_attempts_failed_total Webhook attempts that failed (retried along the schedule).\n\
             # TYPE pixsim_webhook_attempts_failed_total counter\n\
             pixsim_webhook_attempts_failed_total {failed}\n\
             # HELP pixsim_webhook_events_dropped_total Webhook events dropped before the outbox because its writer was behind.\n\
             # TYPE pixsim_webhook_events_dropped_total counter\n\
             pixsim_webhook_events_dropped_total {dropped}\n"
        )))
    })
}

/// Jobs by status and provider calls by outcome and error class, for `/metrics`.
pub fn generation_metrics(pool: PgPool) -> api::MetricsSource {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            use std::fmt::Write as _;
            let mut out = String::new();
            if let Ok(rows) = store::generation::metrics::jobs_by_status(&pool).await {
                out.push_str("# HELP pixsim_generation_jobs Generation jobs by status.\n# TYPE pixsim_generation_jobs gauge\n");
                for (status, n) in rows {
                    let _ = writeln!(out, "pixsim_generation_jobs{{status=\"{status}\"}} {n}");
                }
            }
            if let Ok(rows) = store::generation::metrics::provider_calls(&pool).await {
                out.push_str("# HELP pixsim_provider_calls_total Provider submissions by provider, outcome and error class.\n# TYPE pixsim_provider_calls_total counter\n");
                for (provider, status, class, n) in rows {
                    let _ = writeln!(
                        out,
                        "pixsim_provider_calls_total{{provider=\"{provider}\",status=\"{status}\",error_class=\"{class}\"}} {n}"
                    );
                }
            }
            out
        })
    })
}
