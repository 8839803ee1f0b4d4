//! Security headers. Every response says `X-Content-Type-Options: nosniff`. Every
//! HTML response (whatever the route, so pages added later get them too) carries a
//! Content Security Policy with `frame-ancestors 'none'`, `X-Frame-Options: DENY` and a
//! `Referrer-Policy`.
//!
//! The policy allows scripts only from this origin and the inline `<script>` blocks of
//! the pages in [`PAGES`], by their SHA-256: a page served from here must be listed
//! there, or its inline script is blocked (a unit test checks every page). Styles may be
//! inline (`style` attributes are everywhere in the admin page; CSS cannot run code).
//! A response that sets its own policy keeps it: the player (`routes::play`) sends a
//! stricter one, with no inline script or style at all.

use std::sync::LazyLock;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The operators' page.
pub const ADMIN_PAGE: &str = include_str!("admin/index.html");
/// The API docs page.
pub const DOCS_PAGE: &str = include_str!("docs.html");

/// Every HTML page the server sends: their inline scripts are allowed by hash.
pub const PAGES: &[&str] = &[ADMIN_PAGE, DOCS_PAGE];

/// The text of each inline `<script>` element (those without a `src`) of a page.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find("<script") {
        let after = &rest[open..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        let body = &after[tag_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !tag.contains("src=") {
            out.push(&body[..close]);
        }
        rest = &body[close..];
    }
    out
}

fn script_hash(script: &str) -> String {
    let digest = Sha256::digest(script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The Content Security Policy of every HTML response.
pub fn content_security_policy() -> String {
    let mut hashes: Vec<String> = PAGES
        .iter()
        .flat_map(|p| inline_scripts(p))
        .map(script_hash)
        .collect();
    hashes.sort();
    hashes.dedup();
    format!(
        "default-src 'none'; script-src 'self' {}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self'; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        hashes.join(" ")
    )
}

static CSP: LazyLock<Option<HeaderValue>> =
    LazyLock::new(|| HeaderValue::from_str(&content_security_policy()).ok());

/// Middleware adding the headers to every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html"))
        });
    if html {
        // A page with a policy of its own (the player's, `routes::play`) keeps it.
        if let Some(csp) = CSP.as_ref()
            && !headers.contains_key(header::CONTENT_SECURITY_POLICY)
        {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
        }
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_inline_script_of_every_page_is_allowed() {
        let csp = content_security_policy();
        assert!(CSP.is_some(), "a valid header value");
        for page in PAGES {
            let scripts = inline_scripts(page);
            assert!(!scripts.is_empty());
            for s in scripts {
                assert!(csp.contains(&script_hash(s)), "{csp}");
            }
            // Inline event handlers would need 'unsafe-hashes': the pages have none.
            for handler in [
                " onclick=",
                " onload=",
                " onchange=",
                " onsubmit=",
                " oninput=",
            ] {
                assert!(!page.contains(handler), "{handler} in a page");
            }
        }
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn scripts_with_src_are_not_hashed() {
        let html = "<script src=\"/a.js\"></script><script>let a = 1;</script>";
        assert_eq!(inline_scripts(html), vec!["let a = 1;"]);
    }
}
