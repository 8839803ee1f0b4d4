//! The condition/expression language.
//!
//! A small, typed, side-effect-free language (except for the seeded `random(lo, hi)` draw)
//! evaluated on the server.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | cmp
//! cmp     := sum (("=="|"!="|"<"|"<="|">"|">=") sum | "in" sum | "not" "in" sum)?
//! sum     := product (("+"|"-") product)*
//! product := unary (("*"|"/"|"%") unary)*
//! unary   := "-" unary | atom
//! atom    := INT | STRING | "true" | "false" | "[" (expr ("," expr)*)? "]"
//!          | "(" expr ")" | "random" "(" expr "," expr ")" | path
//! ```
//!
//! Strings use single or double quotes. Paths (all identifiers `[A-Za-z_][A-Za-z0-9_]*`):
//!
//! | path                      | type          | meaning                                   |
//! |---------------------------|---------------|-------------------------------------------|
//! | `var.NAME`                | declared      | a world variable (flags are bool vars)    |
//! | `arg.NAME`                | declared      | a parameter of the current scene call     |
//! | `stat.STAT.ENTITY.AXIS`   | int           | a stat axis value                         |
//! | `tier.STAT.ENTITY.AXIS`   | string        | the tier name of that value (or `""`)     |
//! | `level.STAT.ENTITY.AXIS`  | int           | the axis level (1 + `levels` reached)     |
//! | `rel.NPC.AXIS`            | int           | relationship axis (affinity, trust, ...)  |
//! | `item.ID`                 | int           | inventory count                           |
//! | `inventory`               | `list<string>`| ids of items held (count > 0)             |
//! | `quest.ID`                | string        | inactive, active, completed, failed, hidden |
//! | `quest.ID.OBJECTIVE`      | int           | objective progress                        |
//! | `visits.SCENE`            | int           | times the scene was entered               |
//! | `visits.SCENE.NODE`       | int           | times the node was entered                |
//! | `unlocked.SCENE`          | bool          | scene unlocked                            |
//! | `time`                    | int           | world time in ms                          |
//! | `xp`, `level`             | int           | progression                               |
//!
//! Types: `bool`, `int` (i64, checked arithmetic), `string`, `list<T>`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A runtime value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// A reference to game state readable from expressions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// `var.NAME`
    Var(String),
    /// `arg.NAME`
    Arg(String),
    /// `stat.STAT.ENTITY.AXIS`
    Stat {
        /// stat id
        stat: String,
        /// entity id
        entity: String,
        /// axis id
        axis: String,
    },
    /// `tier.STAT.ENTITY.AXIS`
    Tier {
        /// stat id
        stat: String,
        /// entity id
        entity: String,
        /// axis id
        axis: String,
    },
    /// `level.STAT.ENTITY.AXIS`: the axis level (1 + thresholds reached).
    StatLevel {
        /// stat id
        stat: String,
        /// entity id
        entity: String,
        /// axis id
        axis: String,
    },
    /// `rel.NPC.AXIS`
    Rel {
        /// npc entity id
        npc: String,
        /// relationship axis
        axis: String,
    },
    /// `item.ID`
    Item(String),
    /// `inventory`
    Inventory,
    /// `quest.ID`
    Quest(String),
    /// `quest.ID.OBJECTIVE`
    Objective {
        /// quest id
        quest: String,
        /// objective id
        objective: String,
    },
    /// `visits.SCENE`
    SceneVisits(String),
    /// `visits.SCENE.NODE`
    NodeVisits {
        /// scene id
        scene: String,
        /// node id
        node: String,
    },
    /// `unlocked.SCENE`
    Unlocked(String),
    /// `time`
    Time,
    /// `xp`
    Xp,
    /// `level`
    Level,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Var(n) => write!(f, "var.{n}"),
            Path::Arg(n) => write!(f, "arg.{n}"),
            Path::Stat { stat, entity, axis } => write!(f, "stat.{stat}.{entity}.{axis}"),
            Path::Tier { stat, entity, axis } => write!(f, "tier.{stat}.{entity}.{axis}"),
            Path::StatLevel { stat, entity, axis } => write!(f, "level.{stat}.{entity}.{axis}"),
            Path::Rel { npc, axis } => write!(f, "rel.{npc}.{axis}"),
            Path::Item(i) => write!(f, "item.{i}"),
            Path::Inventory => f.write_str("inventory"),
            Path::Quest(q) => write!(f, "quest.{q}"),
            Path::Objective { quest, objective } => write!(f, "quest.{quest}.{objective}"),
            Path::SceneVisits(s) => write!(f, "visits.{s}"),
            Path::NodeVisits { scene, node } => write!(f, "visits.{scene}.{node}"),
            Path::Unlocked(s) => write!(f, "unlocked.{s}"),
            Path::Time => f.write_str("time"),
            Path::Xp => f.write_str("xp"),
            Path::Level => f.write_str("level"),
        }
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `and`
    And,
    /// `or`
    Or,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `+` (ints; also string and list concatenation)
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (truncating; error on zero)
    Div,
    /// `%` (error on zero)
    Rem,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

/// Expression AST.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// A literal.
    Lit(Value),
    /// A list literal.
    List(Vec<Expr>),
    /// A state reference.
    Path(Path),
    /// `random(lo, hi)`: seeded uniform integer draw in `lo..=hi`.
    Random(Box<Expr>, Box<Expr>),
    /// `not e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `a op b`
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

impl fmt::Display for Expr {
    /// Canonical, fully parenthesised form; `parse(e.to_string()) == e`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(Value::Int(i)) if *i < 0 => write!(f, "({i})"),
            Expr::Lit(v) => write!(f, "{v}"),
            Expr::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Expr::Path(p) => write!(f, "{p}"),
            Expr::Random(a, b) => write!(f, "random({a}, {b})"),
            Expr::Not(e) => write!(f, "(not {e})"),
            Expr::Neg(e) => write!(f, "(-({e}))"),
            Expr::Bin(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
        }
    }
}

/// A syntax error with a byte offset.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("syntax error at column {}: {message}", .offset + 1)]
pub struct ParseError {
    /// Byte offset in the source.
    pub offset: usize,
    /// What went wrong.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Int(i64),
    Str(String),
    Ident(String),
    Dot,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Op(&'static str),
    End,
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset, message: &str| ParseError {
        offset,
        message: message.to_string(),
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n: i64 = src[start..i]
                    .parse()
                    .map_err(|_| err(start, "integer literal out of range"))?;
                out.push((start, Tok::Int(n)));
                continue;
            }
            b'"' | b'\'' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                let mut chars = src[i..].char_indices();
                loop {
                    let Some((off, ch)) = chars.next() else {
                        return Err(err(start, "unterminated string literal"));
                    };
                    if ch as u32 == u32::from(quote) {
                        i += off + 1;
                        break;
                    }
                    if ch == '\\' {
                        match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, e)) => s.push(e),
                            None => return Err(err(start, "unterminated string literal")),
                        }
                    } else {
                        s.push(ch);
                    }
                }
                out.push((start, Tok::Str(s)));
                continue;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((start, Tok::Ident(src[start..i].to_string())));
                continue;
            }
            _ => {}
        }
        let two: &[u8] = if i + 1 < bytes.len() {
            &bytes[i..i + 2]
        } else {
            b""
        };
        let (tok, len) = match two {
            b"==" => (Tok::Op("=="), 2),
            b"!=" => (Tok::Op("!="), 2),
            b"<=" => (Tok::Op("<="), 2),
            b">=" => (Tok::Op(">="), 2),
            b"&&" => (Tok::Ident("and".into()), 2),
            b"||" => (Tok::Ident("or".into()), 2),
            _ => match c {
                b'<' => (Tok::Op("<"), 1),
                b'>' => (Tok::Op(">"), 1),
                b'+' => (Tok::Op("+"), 1),
                b'-' => (Tok::Op("-"), 1),
                b'*' => (Tok::Op("*"), 1),
                b'/' => (Tok::Op("/"), 1),
                b'%' => (Tok::Op("%"), 1),
                b'!' => (Tok::Ident("not".into()), 1),
                b'.' => (Tok::Dot, 1),
                b',' => (Tok::Comma, 1),
                b'(' => (Tok::LParen, 1),
                b')' => (Tok::RParen, 1),
                b'[' => (Tok::LBrack, 1),
                b']' => (Tok::RBrack, 1),
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(err(i, &format!("unexpected character '{ch}'")));
                }
            },
        };
        out.push((i, tok));
        i += len;
    }
    out.push((src.len(), Tok::End));
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |t| &t.1)
    }
    fn peek2(&self) -> &Tok {
        self.toks.get(self.pos + 1).map_or(&Tok::End, |t| &t.1)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |t| t.0)
    }
    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.offset(),
            message: message.into(),
        })
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ParseError> {
        if *self.peek() == t {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {what}"))
        }
    }
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.err("expression nested too deeply")
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut lhs = self.and()?;
        while self.is_kw("or") {
            self.pos += 1;
            let rhs = self.and()?;
            lhs = Expr::Bin(BinOp::Or, Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Ok(lhs)
    }
    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.not()?;
        while self.is_kw("and") {
            self.pos += 1;
            let rhs = self.not()?;
            lhs = Expr::Bin(BinOp::And, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.is_kw("not") {
            self.pos += 1;
            self.enter()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let lhs = self.sum()?;
        let op = match self.peek() {
            Tok::Op("==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::Ne,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::Le,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::Ge,
            Tok::Ident(s) if s == "in" => BinOp::In,
            Tok::Ident(s) if s == "not" && matches!(self.peek2(), Tok::Ident(t) if t == "in") => {
                self.pos += 1;
                BinOp::NotIn
            }
            _ => return Ok(lhs),
        };
        self.pos += 1;
        let rhs = self.sum()?;
        Ok(Expr::Bin(op, Box::new(lhs), Box::new(rhs)))
    }
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.product()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                Tok::Op("%") => BinOp::Rem,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Op("-") {
            self.pos += 1;
            // Fold `-INT` into a literal so that i64::MIN is expressible.
            if let Tok::Int(_) = self.peek()
                && !matches!(self.peek2(), Tok::Dot)
            {
                let off = self.offset();
                if let Tok::Int(n) = self.bump() {
                    return n
                        .checked_neg()
                        .map(|v| Expr::Lit(Value::Int(v)))
                        .ok_or(ParseError {
                            offset: off,
                            message: "integer literal out of range".into(),
                        });
                }
            }
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Expr, ParseError> {
        let off = self.offset();
        match self.bump() {
            Tok::Int(n) => Ok(Expr::Lit(Value::Int(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::Str(s))),
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBrack => {
                let mut items = Vec::new();
                if *self.peek() != Tok::RBrack {
                    loop {
                        items.push(self.expr()?);
                        if *self.peek() == Tok::Comma {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RBrack, "']' or ','")?;
                Ok(Expr::List(items))
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "random" => {
                    self.expect(Tok::LParen, "'(' after random")?;
                    let a = self.expr()?;
                    self.expect(Tok::Comma, "','")?;
                    let b = self.expr()?;
                    self.expect(Tok::RParen, "')'")?;
                    Ok(Expr::Random(Box::new(a), Box::new(b)))
                }
                "and" | "or" | "not" | "in" => Err(ParseError {
                    offset: off,
                    message: format!("unexpected keyword '{id}'"),
                }),
                _ => {
                    let mut segs = vec![id];
                    while *self.peek() == Tok::Dot {
                        self.pos += 1;
                        match self.bump() {
                            Tok::Ident(s) => segs.push(s),
                            _ => {
                                self.pos -= 1;
                                return self.err("expected a name after '.'");
                            }
                        }
                    }
                    path_from(&segs)
                        .map(Expr::Path)
                        .map_err(|message| ParseError {
                            offset: off,
                            message,
                        })
                }
            },
            Tok::End => Err(ParseError {
                offset: off,
                message: "unexpected end of expression".into(),
            }),
            t => Err(ParseError {
                offset: off,
                message: format!("unexpected token {}", tok_name(&t)),
            }),
        }
    }
}

fn tok_name(t: &Tok) -> String {
    match t {
        Tok::Int(n) => n.to_string(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Ident(s) => s.clone(),
        Tok::Dot => "'.'".into(),
        Tok::Comma => "','".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBrack => "'['".into(),
        Tok::RBrack => "']'".into(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::End => "end".into(),
    }
}

fn path_from(segs: &[String]) -> Result<Path, String> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let own = |x: &str| x.to_string();
    Ok(match s.as_slice() {
        ["var", n] => Path::Var(own(n)),
        ["arg", n] => Path::Arg(own(n)),
        ["stat", st, e, a] => Path::Stat {
            stat: own(st),
            entity: own(e),
            axis: own(a),
        },
        ["tier", st, e, a] => Path::Tier {
            stat: own(st),
            entity: own(e),
            axis: own(a),
        },
        ["level", st, e, a] => Path::StatLevel {
            stat: own(st),
            entity: own(e),
            axis: own(a),
        },
        ["rel", n, a] => Path::Rel {
            npc: own(n),
            axis: own(a),
        },
        ["item", i] => Path::Item(own(i)),
        ["inventory"] => Path::Inventory,
        ["quest", q] => Path::Quest(own(q)),
        ["quest", q, o] => Path::Objective {
            quest: own(q),
            objective: own(o),
        },
        ["visits", sc] => Path::SceneVisits(own(sc)),
        ["visits", sc, n] => Path::NodeVisits {
            scene: own(sc),
            node: own(n),
        },
        ["unlocked", sc] => Path::Unlocked(own(sc)),
        ["time"] => Path::Time,
        ["xp"] => Path::Xp,
        ["level"] => Path::Level,
        _ => {
            return Err(format!(
                "unknown reference '{}' (expected var.X, arg.X, stat.S.E.A, tier.S.E.A, level.S.E.A, rel.NPC.AXIS, item.X, inventory, quest.Q[.O], visits.S[.N], unlocked.S, time, xp or level)",
                s.join(".")
            ));
        }
    })
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if *p.peek() != Tok::End {
        return p.err(format!(
            "unexpected {} after expression",
            tok_name(p.peek())
        ));
    }
    Ok(e)
}

/// A type error.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct TypeError(pub String);

/// Resolves the types of state references during type checking.
pub trait TypeEnv {
    /// The type of a path, or a reason it is undefined (e.g. "undefined variable 'x'").
    fn path_type(&self, path: &Path) -> Result<Type, String>;
}

/// Type checks an expression, returning its type.
pub fn check(e: &Expr, env: &dyn TypeEnv) -> Result<Type, TypeError> {
    let terr = |m: String| Err(TypeError(m));
    match e {
        Expr::Lit(v) => v
            .ty()
            .ok_or_else(|| TypeError("cannot infer the type of an empty list".into())),
        Expr::List(items) => {
            let Some(first) = items.first() else {
                return terr("cannot infer the type of an empty list".into());
            };
            let t = check(first, env)?;
            if matches!(t, Type::List(_)) {
                return terr("nested lists are not supported".into());
            }
            for it in &items[1..] {
                let u = check(it, env)?;
                if u != t {
                    return terr(format!("list mixes {t} and {u}"));
                }
            }
            Ok(Type::List(Box::new(t)))
        }
        Expr::Path(p) => env.path_type(p).map_err(TypeError),
        Expr::Random(a, b) => {
            for x in [a, b] {
                let t = check(x, env)?;
                if t != Type::Int {
                    return terr(format!("random() takes int bounds, got {t}"));
                }
            }
            Ok(Type::Int)
        }
        Expr::Not(x) => match check(x, env)? {
            Type::Bool => Ok(Type::Bool),
            t => terr(format!("'not' expects bool, got {t}")),
        },
        Expr::Neg(x) => match check(x, env)? {
            Type::Int => Ok(Type::Int),
            t => terr(format!("'-' expects int, got {t}")),
        },
        Expr::Bin(op, a, b) => {
            let ta = check(a, env)?;
            let tb = check(b, env)?;
            let sym = op.symbol();
            match op {
                BinOp::And | BinOp::Or => {
                    if ta == Type::Bool && tb == Type::Bool {
                        Ok(Type::Bool)
                    } else {
                        terr(format!("'{sym}' expects bool operands, got {ta} and {tb}"))
                    }
                }
                BinOp::Eq | BinOp::Ne => {
                    if ta == tb {
                        Ok(Type::Bool)
                    } else {
                        terr(format!("cannot compare {ta} with {tb}"))
                    }
                }
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    if ta == tb && matches!(ta, Type::Int | Type::Str) {
                        Ok(Type::Bool)
                    } else {
                        terr(format!(
                            "'{sym}' expects two ints or two strings, got {ta} and {tb}"
                        ))
                    }
                }
                BinOp::In | BinOp::NotIn => match &tb {
                    Type::List(elem) if **elem == ta => Ok(Type::Bool),
                    Type::Str if ta == Type::Str => Ok(Type::Bool),
                    _ => terr(format!(
                        "'{sym}' expects a list<{ta}> (or string) on the right, got {tb}"
                    )),
                },
                BinOp::Add => match (&ta, &tb) {
                    (Type::Int, Type::Int) => Ok(Type::Int),
                    (Type::Str, Type::Str) => Ok(Type::Str),
                    (Type::List(x), Type::List(y)) if x == y => Ok(ta.clone()),
                    _ => terr(format!("'+' cannot combine {ta} and {tb}")),
                },
                BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                    if ta == Type::Int && tb == Type::Int {
                        Ok(Type::Int)
                    } else {
                        terr(format!("'{sym}' expects int operands, got {ta} and {tb}"))
                    }
                }
            }
        }
    }
}

/// A runtime evaluation failure. Type-checked expressions only fail with arithmetic errors
/// (overflow, division by zero) or a state lookup failure.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EvalError {
    /// Arithmetic overflow.
    #[error("integer overflow in '{0}'")]
    Overflow(String),
    /// Division or remainder by zero.
    #[error("division by zero in '{0}'")]
    DivByZero(String),
    /// `random(lo, hi)` with `lo > hi`.
    #[error("random({0}, {1}): empty range")]
    EmptyRange(i64, i64),
    /// Operand of the wrong type (only for unchecked expressions).
    #[error("type mismatch: {0}")]
    Type(String),
    /// A reference that cannot be resolved.
    #[error("{0}")]
    Lookup(String),
}

/// Supplies values and randomness during evaluation.
pub trait Env {
    /// The value of a state reference.
    fn lookup(&self, path: &Path) -> Result<Value, EvalError>;
    /// A seeded draw in `lo..=hi` (`lo <= hi` is guaranteed by the caller).
    fn random(&mut self, lo: i64, hi: i64) -> i64;
}

/// Evaluates an expression. `and`/`or` short-circuit (so `random` on the right side
/// is only drawn when needed; this is part of the deterministic semantics).
pub fn eval(e: &Expr, env: &mut dyn Env) -> Result<Value, EvalError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::List(items) => Ok(Value::List(
            items
                .iter()
                .map(|i| eval(i, env))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Path(p) => env.lookup(p),
        Expr::Random(a, b) => {
            let lo = int(eval(a, env)?, e)?;
            let hi = int(eval(b, env)?, e)?;
            if lo > hi {
                return Err(EvalError::EmptyRange(lo, hi));
            }
            Ok(Value::Int(env.random(lo, hi)))
        }
        Expr::Not(x) => Ok(Value::Bool(!boolean(eval(x, env)?, e)?)),
        Expr::Neg(x) => {
            let v = int(eval(x, env)?, e)?;
            v.checked_neg()
                .map(Value::Int)
                .ok_or_else(|| EvalError::Overflow(e.to_string()))
        }
        Expr::Bin(op, a, b) => {
            match op {
                BinOp::And => {
                    return Ok(Value::Bool(
                        boolean(eval(a, env)?, e)? && boolean(eval(b, env)?, e)?,
                    ));
                }
                BinOp::Or => {
                    return Ok(Value::Bool(
                        boolean(eval(a, env)?, e)? || boolean(eval(b, env)?, e)?,
                    ));
                }
                _ => {}
            }
            let va = eval(a, env)?;
            let vb = eval(b, env)?;
            let ovf = || EvalError::Overflow(e.to_string());
            Ok(match op {
                BinOp::Eq => Value::Bool(va == vb),
                BinOp::Ne => Value::Bool(va != vb),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let ord = match (&va, &vb) {
                        (Value::Int(x), Value::Int(y)) => x.cmp(y),
                        (Value::Str(x), Value::Str(y)) => x.cmp(y),
                        _ => return Err(EvalError::Type(format!("cannot order {va} and {vb}"))),
                    };
                    Value::Bool(match op {
                        BinOp::Lt => ord.is_lt(),
                        BinOp::Le => ord.is_le(),
                        BinOp::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    })
                }
                BinOp::In | BinOp::NotIn => {
                    let found = match (&va, &vb) {
                        (x, Value::List(items)) => items.contains(x),
                        (Value::Str(x), Value::Str(y)) => y.contains(x.as_str()),
                        _ => return Err(EvalError::Type(format!("'in' needs a list, got {vb}"))),
                    };
                    Value::Bool(found == (*op == BinOp::In))
                }
                BinOp::Add => match (va, vb) {
                    (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(y).ok_or_else(ovf)?),
                    (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
                    (Value::List(mut x), Value::List(y)) => {
                        x.extend(y);
                        Value::List(x)
                    }
                    (x, y) => return Err(EvalError::Type(format!("cannot add {x} and {y}"))),
                },
                _ => {
                    let x = int(va, e)?;
                    let y = int(vb, e)?;
                    Value::Int(match op {
                        BinOp::Sub => x.checked_sub(y).ok_or_else(ovf)?,
                        BinOp::Mul => x.checked_mul(y).ok_or_else(ovf)?,
                        BinOp::Div | BinOp::Rem => {
                            if y == 0 {
                                return Err(EvalError::DivByZero(e.to_string()));
                            }
                            let r = if *op == BinOp::Div {
                                x.checked_div(y)
                            } else {
                                x.checked_rem(y)
                            };
                            r.ok_or_else(ovf)?
                        }
                        _ => {
                            return Err(EvalError::Type(format!(
                                "unexpected operator {}",
                                op.symbol()
                            )));
                        }
                    })
                }
            })
        }
    }
}

fn int(v: Value, e: &Expr) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(i),
        other => Err(EvalError::Type(format!(
            "expected int, got {other} in '{e}'"
        ))),
    }
}

fn boolean(v: Value, e: &Expr) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(EvalError::Type(format!(
            "expected bool, got {other} in '{e}'"
        ))),
    }
}

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

/// A simple map-backed environment, for tests and tools.
#[derive(Clone, Debug, Default)]
pub struct MapEnv {
    /// Values by path text (e.g. `"var.gold"`).
    pub values: BTreeMap<String, Value>,
    /// Random state.
    pub rng: super::rng::Rng,
}

impl TypeEnv for MapEnv {
    fn path_type(&self, path: &Path) -> Result<Type, String> {
        let key = path.to_string();
        self.values
            .get(&key)
            .and_then(Value::ty)
            .ok_or_else(|| format!("undefined reference '{key}'"))
    }
}

impl Env for MapEnv {
    fn lookup(&self, path: &Path) -> Result<Value, EvalError> {
        let key = path.to_string();
        self.values
            .get(&key)
            .cloned()
            .ok_or(EvalError::Lookup(format!("undefined reference '{key}'")))
    }
    fn random(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.range(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env() -> MapEnv {
        let mut m = MapEnv::default();
        m.values.insert("var.gold".into(), Value::Int(5));
        m.values.insert("var.met".into(), Value::Bool(true));
        m.values
            .insert("var.name".into(), Value::Str("mara".into()));
        m.values.insert(
            "inventory".into(),
            Value::List(vec![Value::Str("key".into())]),
        );
        m
    }

    fn run(src: &str) -> Result<Value, String> {
        let e = parse(src).map_err(|e| e.to_string())?;
        let mut env = env();
        check(&e, &env).map_err(|e| e.to_string())?;
        eval(&e, &mut env).map_err(|e| e.to_string())
    }

    #[test]
    fn basics() {
        assert_eq!(run("var.gold + 2 * 3 == 11").unwrap(), Value::Bool(true));
        assert_eq!(
            run("not var.met or var.gold > 4").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            run("'key' in inventory and 'rope' not in inventory").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(run("var.name == \"mara\"").unwrap(), Value::Bool(true));
        assert_eq!(run("-3 - -2").unwrap(), Value::Int(-1));
        assert_eq!(run("var.gold in [1, 5, 9]").unwrap(), Value::Bool(true));
        assert_eq!(run("(var.gold >= 5) && !false").unwrap(), Value::Bool(true));
    }

    #[test]
    fn errors() {
        assert_eq!(
            run("var.gold + true").unwrap_err(),
            "'+' cannot combine int and bool"
        );
        assert_eq!(
            run("var.gold and true").unwrap_err(),
            "'and' expects bool operands, got int and bool"
        );
        assert_eq!(
            run("var.nope").unwrap_err(),
            "undefined reference 'var.nope'"
        );
        assert_eq!(
            run("var.gold / 0").unwrap_err(),
            "division by zero in '(var.gold / 0)'"
        );
        assert_eq!(
            run("var.gold +").unwrap_err(),
            "syntax error at column 11: unexpected end of expression"
        );
        assert_eq!(
            run("foo.bar").unwrap_err().split(" (").next().unwrap(),
            "syntax error at column 1: unknown reference 'foo.bar'"
        );
        assert_eq!(
            run("1 2").unwrap_err(),
            "syntax error at column 3: unexpected 2 after expression"
        );
    }
}
