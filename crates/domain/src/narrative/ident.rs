//! [`IDENT`]: the identifier rule every id of the content format follows (scenes, nodes,
//! edges, variables, items, ...). The content types put it in their JSON Schemas
//! (feature `schema`); also at `narrative::schema::IDENT`.

/// The identifier pattern of every id (scenes, nodes, edges, variables, items, ...).
pub const IDENT: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// Whether `s` is an identifier: the rule [`IDENT`] spells for the JSON Schemas, as the
/// loader checks it. The two live here side by side so they change together.
pub fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_pattern() {
        assert_eq!(IDENT, "^[A-Za-z_][A-Za-z0-9_]*$", "change is_ident with it");
        for ok in ["a", "_", "Z9", "node_1", "_x_"] {
            assert!(is_ident(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_ident(bad), "{bad}");
        }
    }
}
