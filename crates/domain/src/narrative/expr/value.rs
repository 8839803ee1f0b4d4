//! Runtime values and static types (`bool`, `int`, `string`, `list<T>`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A runtime value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Value {
    /// Boolean.
    Bool(bool),
    /// 64-bit integer.
    Int(i64),
    /// String.
    Str(String),
    /// Homogeneous list.
    List(Vec<Value>),
}

impl Value {
    /// The type of this value (`None` for an empty list, whose element type is unknown).
    pub fn ty(&self) -> Option<Type> {
        Some(match self {
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Str(_) => Type::Str,
            Value::List(items) => Type::List(Box::new(items.first()?.ty()?)),
        })
    }

    /// Whether this value can be stored in a slot of type `ty`.
    pub fn fits(&self, ty: &Type) -> bool {
        match (self, ty) {
            (Value::Bool(_), Type::Bool)
            | (Value::Int(_), Type::Int)
            | (Value::Str(_), Type::Str) => true,
            (Value::List(items), Type::List(elem)) => items.iter().all(|v| v.fits(elem)),
            _ => false,
        }
    }

    /// The zero value of a type.
    pub fn zero(ty: &Type) -> Value {
        match ty {
            Type::Bool => Value::Bool(false),
            Type::Int => Value::Int(0),
            Type::Str => Value::Str(String::new()),
            Type::List(_) => Value::List(Vec::new()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write_str_lit(f, s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn write_str_lit(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// A static type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `string`
    Str,
    /// `list<T>`
    List(Box<Type>),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Str => f.write_str("string"),
            Type::List(t) => write!(f, "list<{t}>"),
        }
    }
}

impl std::str::FromStr for Type {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "bool" => Ok(Type::Bool),
            "int" => Ok(Type::Int),
            "string" => Ok(Type::Str),
            _ => {
                if let Some(inner) = s.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
                    Ok(Type::List(Box::new(inner.parse()?)))
                } else {
                    Err(format!(
                        "unknown type '{s}' (expected bool, int, string or list<T>)"
                    ))
                }
            }
        }
    }
}

impl Serialize for Type {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Type {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
