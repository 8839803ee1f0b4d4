//! The expression syntax tree: state references ([`Path`]), operators and [`Expr`].

use std::fmt;

use super::value::Value;

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
    /// The operator as written.
    pub(super) fn symbol(self) -> &'static str {
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
