//! The game channel over WebTransport: the endpoint of `[webtransport]` with the same
//! game handler and limits as QUIC (`[quic]`'s connection limits and timeouts), what
//! `GET /api/v1/game/webtransport` publishes of it (the URL's port and path, the public
//! host, the certificate hashes read on each request) and its `/metrics` figures.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::{Config, VERSION};

/// Binds the WebTransport endpoint with `handler` (the game channel's); `None` when
/// `[webtransport] enabled = false`.
pub fn bind(
    cfg: &Config,
    handler: Arc<dyn quic::ConnectionHandler>,
) -> anyhow::Result<Option<webtransport::WebTransportServer>> {
    let w = &cfg.webtransport;
    if !w.enabled {
        return Ok(None);
    }
    let mut wcfg =
        webtransport::WebTransportConfig::new(w.addr, format!("pixsim-server {VERSION}"));
    wcfg.rotation = Duration::from_secs(w.rotate_hours.saturating_mul(3600));
    wcfg.server_names = w.public_host.iter().cloned().collect();
    wcfg.idle_timeout = Duration::from_secs(cfg.quic.idle_timeout_secs.max(1));
    wcfg.max_connections = cfg.quic.max_connections;
    wcfg.outbox_capacity = cfg.quic.outbox_capacity;
    let server = webtransport::WebTransportServer::bind(wcfg, handler)
        .with_context(|| format!("starting WebTransport on udp://{}", w.addr))?;
    Ok(Some(server))
}

/// What the API's state holds of the endpoint.
pub struct ApiParts {
    /// For `GET /api/v1/game/webtransport`.
    pub directory: api::WebTransportDirectory,
    /// `pixsim_webtransport_connections` and `pixsim_webtransport_connections_accepted_total`.
    pub metrics: api::MetricsSource,
}

/// The API's parts over `server`.
pub fn api_parts(cfg: &Config, server: &webtransport::WebTransportServer) -> ApiParts {
    ApiParts {
        directory: directory(cfg, server),
        metrics: metrics(server.stats()),
    }
}

/// The session counts for `/metrics`.
fn metrics(stats: channel::ConnectionStats) -> api::MetricsSource {
    Arc::new(move || {
        let text = format!(
            "# HELP pixsim_webtransport_connections Open WebTransport game sessions.\n\
             # TYPE pixsim_webtransport_connections gauge\n\
             pixsim_webtransport_connections {}\n\
             # HELP pixsim_webtransport_connections_accepted_total WebTransport game sessions accepted.\n\
             # TYPE pixsim_webtransport_connections_accepted_total counter\n\
             pixsim_webtransport_connections_accepted_total {}\n",
            stats.connections(),
            stats.total_accepted()
        );
        Box::pin(std::future::ready(text))
    })
}

/// What the REST route publishes of `server`.
fn directory(
    cfg: &Config,
    server: &webtransport::WebTransportServer,
) -> api::WebTransportDirectory {
    use api::{WebTransportCerts, WebTransportDirectory};
    let certs = server.certificates();
    WebTransportDirectory {
        port: server.local_addr().port(),
        path: webtransport::SESSION_PATH.to_owned(),
        public_host: cfg.webtransport.public_host.clone(),
        certs: Arc::new(move || {
            let published = certs.published();
            WebTransportCerts {
                sha256: published.certificates.iter().map(|c| c.sha256).collect(),
                expires_at: chrono::DateTime::<chrono::Utc>::from(
                    published.expires_at().unwrap_or(SystemTime::UNIX_EPOCH),
                ),
            }
        }),
    }
}
