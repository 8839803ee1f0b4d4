//! [`ExprText`]: an expression as written in a content file, with its parse result.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ast::Expr;
use super::lex::ParseError;
use super::parse::parse;

/// Expression source text as written in a scene file, parsed at deserialization.
///
/// Deserialization never fails on a syntax error: the error is kept so that validation can
/// report it with the file and node it belongs to.
#[derive(Clone, Debug)]
pub struct ExprText {
    /// Source text.
    pub src: String,
    /// Parse result.
    pub parsed: Result<Expr, ParseError>,
}

impl ExprText {
    /// Parses `src`.
    pub fn new(src: impl Into<String>) -> Self {
        let src = src.into();
        let parsed = parse(&src);
        Self { src, parsed }
    }
}

impl PartialEq for ExprText {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

impl Serialize for ExprText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.src)
    }
}

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ExprText::new(String::deserialize(d)?))
    }
}
