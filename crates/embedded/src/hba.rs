//! Reading and rewriting `pg_hba.conf`: which records use `trust`, and the same file
//! with each of those methods replaced by [`METHOD`] (everything else kept).

use std::net::IpAddr;

/// The only authentication method written to `pg_hba.conf`.
pub(crate) const METHOD: &str = "scram-sha-256";

/// Index of the method field of a `pg_hba.conf` record (`None` for blank lines,
/// comments and `include` directives).
fn method_field(tokens: &[&str]) -> Option<usize> {
    let kind = *tokens.first()?;
    if kind.starts_with("include") {
        return None;
    }
    if kind == "local" {
        return Some(3);
    }
    // host*: TYPE DATABASE USER ADDRESS [MASK] METHOD
    let address = tokens.get(3)?;
    let with_mask = !address.contains('/')
        && address.parse::<IpAddr>().is_ok()
        && tokens.get(4).is_some_and(|m| m.parse::<IpAddr>().is_ok());
    Some(if with_mask { 5 } else { 4 })
}

/// Byte ranges of the whitespace-separated tokens of `line` before any comment.
fn token_spans(line: &str) -> Vec<(usize, usize)> {
    let body = line.split('#').next().unwrap_or_default();
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in body.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, body.len()));
    }
    spans
}

/// The method of a record line, with its byte range.
fn method_of(line: &str) -> Option<(usize, usize)> {
    let spans = token_spans(line);
    let tokens: Vec<&str> = spans.iter().map(|&(a, b)| &line[a..b]).collect();
    method_field(&tokens).and_then(|i| spans.get(i).copied())
}

/// True when a record of `pg_hba.conf` uses `trust`.
pub(crate) fn has_trust(hba: &str) -> bool {
    hba.lines()
        .any(|l| method_of(l).is_some_and(|(a, b)| &l[a..b] == "trust"))
}

/// `pg_hba.conf` with every `trust` method replaced by [`METHOD`]; the rest is kept.
pub(crate) fn without_trust(hba: &str) -> String {
    let mut out = String::with_capacity(hba.len() + 64);
    for line in hba.lines() {
        match method_of(line) {
            Some((a, b)) if &line[a..b] == "trust" => {
                out.push_str(&line[..a]);
                out.push_str(METHOD);
                out.push_str(&line[b..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITDB_TRUST: &str = "\
# TYPE  DATABASE        USER            ADDRESS                 METHOD

# \"local\" is for Unix domain socket connections only
local   all             all                                     trust
# IPv4 local connections:
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    all   trust   127.0.0.1   255.255.255.255   trust  # mask form
hostssl all   all     example.com   md5
";

    #[test]
    fn trust_is_found_and_replaced_only_in_the_method_field() {
        assert!(has_trust(INITDB_TRUST));
        let out = without_trust(INITDB_TRUST);
        assert!(!has_trust(&out), "{out}");
        assert!(out.contains(
            "local   all             all                                     scram-sha-256\n"
        ));
        assert!(out.contains(
            "host    all   trust   127.0.0.1   255.255.255.255   scram-sha-256  # mask form"
        ));
        assert!(out.contains("# \"local\" is for Unix domain socket connections only\n"));
        assert!(out.contains("hostssl all   all     example.com   md5\n"));
        for line in out.lines().filter(|l| !l.trim_start().starts_with('#')) {
            assert!(
                !line.split_whitespace().any(|t| t == "trust") || line.contains("all   trust"),
                "{line}"
            );
        }
        assert_eq!(without_trust(&out), out, "idempotent");
        assert!(!has_trust("# host all all 127.0.0.1/32 trust\n"));
    }
}
