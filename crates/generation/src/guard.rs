//! The one SSRF guard of every outbound request of the pipeline: provider calls, result
//! downloads and anything added later (webhooks) get their HTTP client from
//! [`Guard::client`], whose only way to build a request is [`GuardedClient::request`].
//!
//! Two checks, so no DNS-rebinding window is left:
//! * before a request, the URL: http(s) only, and a host given as an address literal
//!   (reqwest never resolves those) must be public; `localhost` names are refused;
//! * at connect time, the resolver: a name connects only to the public addresses it
//!   resolves to *then*, so a name that answered a public address to an earlier check
//!   and a private one now cannot reach inside.
//!
//! Clients never follow redirects by themselves: a caller that follows one (the
//! downloader) builds the next request through [`GuardedClient::request`] again.
//!
//! Refused: loopback, private, link-local, CGNAT (100.64/10), multicast, broadcast,
//! unspecified, documentation and reserved ranges, and in IPv6 also unique-local
//! (`fc00::/7`), link-local (`fe80::/10`), site-local (`fec0::/10`), documentation,
//! discard-only (`100::/64`), and every form that embeds an IPv4 address
//! (`::ffff:a.b.c.d`, `::a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
//! `2002::/16`, Teredo `2001::/32`) unless the embedded address is public.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, Url};

/// Which destinations the guard lets through besides public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardConfig {
    /// Allow private, loopback and link-local addresses everywhere (tests, local fakes).
    pub allow_private: bool,
    /// Host names allowed whatever they resolve to (an on-prem provider or CDN). A
    /// redirect to any other private address is still refused.
    pub allow_hosts: Vec<String>,
}

/// Why the guard refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("only http and https URLs are allowed, not {0}")]
    Scheme(String),
    #[error("destination not allowed: {0}")]
    Blocked(String),
    #[error("bad url: {0}")]
    Url(String),
}

/// The error the resolver returns for a name with no allowed address; found again in
/// a failed request's source chain by [`refused_by_guard`].
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no allowed address")]
struct RefusedName(String);

/// True when `e` (a reqwest error) failed because the guard's resolver refused every
/// address of the host.
pub fn refused_by_guard(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<RefusedName>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// True for addresses that are neither private, loopback, link-local, multicast,
/// unspecified nor otherwise reserved, in either family, including IPv6 forms that
/// embed an IPv4 address (judged by the embedded one).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0
        // CGNAT 100.64.0.0/10
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
        // IETF protocol assignments 192.0.0.0/24
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        // benchmarking 198.18.0.0/15
        || (o[0] == 198 && (o[1] & 0xFE) == 18)
        // reserved 240.0.0.0/4
        || o[0] >= 240)
}

fn v4_at(s: &[u16; 8], hi: usize) -> Ipv4Addr {
    let (a, b) = (s[hi], s[hi + 1]);
    Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
        return false;
    }
    // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated)
    if (s[..5] == [0; 5] && s[5] == 0xFFFF) || (s[..4] == [0; 4] && s[4] == 0xFFFF && s[5] == 0) {
        return is_public_v4(v4_at(&s, 6));
    }
    // ::a.b.c.d (IPv4-compatible, deprecated) and anything else in ::/96
    if s[..6] == [0; 6] {
        return is_public_v4(v4_at(&s, 6));
    }
    // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48
    if s[0] == 0x64 && s[1] == 0xFF9B {
        if s[2..6] == [0; 4] {
            return is_public_v4(v4_at(&s, 6));
        }
        return false;
    }
    // 6to4 2002::/16: the IPv4 address is in bits 16..48
    if s[0] == 0x2002 {
        return is_public_v4(v4_at(&s, 1));
    }
    // Teredo 2001::/32 (the server address follows; the client's is obfuscated):
    // refuse outright, like the rest of 2001::/23's special blocks.
    if s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0DB8) {
        return false;
    }
    // discard-only 100::/64
    if s[0] == 0x0100 && s[1..4] == [0; 3] {
        return false;
    }
    // unique local fc00::/7, link-local fe80::/10, site-local fec0::/10
    !((s[0] & 0xFE00) == 0xFC00 || (s[0] & 0xFFC0) == 0xFE80 || (s[0] & 0xFFC0) == 0xFEC0)
}

type Hosts = Arc<HashMap<String, Vec<IpAddr>>>;

/// The one outbound guard. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    cfg: Arc<GuardConfig>,
    /// Names answered from this map instead of DNS (tests; pinned hosts).
    hosts: Hosts,
}

impl Guard {
    pub fn new(cfg: GuardConfig) -> Self {
        Guard {
            cfg: Arc::new(cfg),
            hosts: Arc::default(),
        }
    }

    /// As [`Self::new`], with names answered from `hosts` instead of DNS (what
    /// `/etc/hosts` does, for this guard only). Tests use it to make a name resolve to
    /// a private address at connect time.
    pub fn with_hosts(cfg: GuardConfig, hosts: HashMap<String, Vec<IpAddr>>) -> Self {
        let hosts = hosts
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Guard {
            cfg: Arc::new(cfg),
            hosts: Arc::new(hosts),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.cfg.allow_private
            || self
                .cfg
                .allow_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The checks made before a request: scheme, address literals, `localhost`
    /// names. Names are checked again, by address, when the client connects.
    pub fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GuardError::Scheme(url.scheme().to_owned()));
        }
        let host = url.host().ok_or_else(|| GuardError::Url(redact(url)))?;
        let host_str = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if self.host_allowed(host_str) {
            return Ok(());
        }
        match host {
            url::Host::Ipv4(ip) if !is_public_v4(ip) => Err(GuardError::Blocked(ip.to_string())),
            url::Host::Ipv6(ip) if !is_public_v6(ip) => Err(GuardError::Blocked(ip.to_string())),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.');
                if d.eq_ignore_ascii_case("localhost")
                    || d.to_ascii_lowercase().ends_with(".localhost")
                {
                    return Err(GuardError::Blocked(d.to_owned()));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A client with this guard's resolver and no automatic redirects, built from
    /// `builder` (timeouts and the like).
    pub fn client(&self, builder: reqwest::ClientBuilder) -> reqwest::Result<GuardedClient> {
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardResolver {
                guard: self.clone(),
            }))
            .build()?;
        Ok(GuardedClient {
            client,
            guard: self.clone(),
        })
    }
}

/// A URL for messages: no credentials, no query (it may carry signatures).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A resolver that drops non-public addresses (unless allowed): a host that resolves
/// only to private addresses cannot be reached, whatever the URL said.
#[derive(Debug)]
struct GuardResolver {
    guard: Guard,
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow = self.guard.host_allowed(&host);
        let pinned = self.guard.hosts.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = match pinned {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let addrs: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(RefusedName(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let it: Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// A reqwest client that builds requests only to URLs the guard accepts, and connects
/// only to addresses it accepts.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    guard: Guard,
}

impl GuardedClient {
    /// A request to `url`, if the guard accepts it.
    pub fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, GuardError> {
        let url = Url::parse(url).map_err(|e| GuardError::Url(e.to_string()))?;
        self.request_url(method, url)
    }

    /// As [`Self::request`], with a parsed URL.
    pub fn request_url(&self, method: Method, url: Url) -> Result<RequestBuilder, GuardError> {
        self.guard.check_url(&url)?;
        Ok(self.client.request(method, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn private_ranges_and_their_ipv6_embeddings_are_refused() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:127.0.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(!is_public(ip(s)), "{s} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass_in_every_form() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700::1111",
            "2a00:1450:4001::1",
        ] {
            assert!(is_public(ip(s)), "{s} must pass");
        }
    }

    #[test]
    fn urls_with_private_literals_or_local_names_are_refused_before_connecting() {
        let g = Guard::new(GuardConfig::default());
        let check = |u: &str| g.check_url(&Url::parse(u).expect("a url"));
        for u in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://x.localhost/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(matches!(check(u), Err(GuardError::Blocked(_))), "{u}");
        }
        assert!(matches!(
            check("file:///etc/passwd"),
            Err(GuardError::Scheme(_))
        ));
        assert!(matches!(check("gopher://x/"), Err(GuardError::Scheme(_))));
        assert!(check("https://example.com/x").is_ok());
        assert!(check("https://8.8.8.8/").is_ok());
        let open = Guard::new(GuardConfig {
            allow_private: true,
            ..Default::default()
        });
        assert!(
            open.check_url(&Url::parse("http://127.0.0.1/").expect("url"))
                .is_ok()
        );
        let named = Guard::new(GuardConfig {
            allow_hosts: vec!["cdn.internal".into()],
            ..Default::default()
        });
        assert!(
            named
                .check_url(&Url::parse("http://cdn.internal/").expect("url"))
                .is_ok()
        );
        assert!(
            named
                .check_url(&Url::parse("http://10.0.0.1/").expect("url"))
                .is_err()
        );
    }

    #[test]
    fn redact_drops_credentials_and_query() {
        let u = Url::parse("https://user:pw@example.com/a?sig=secret#f").expect("url");
        assert_eq!(redact(&u), "https://example.com/a");
    }
}
