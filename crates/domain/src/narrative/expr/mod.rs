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

mod ast;
mod check;
mod eval;
mod lex;
mod map_env;
mod parse;
mod text;
mod value;

pub use ast::{BinOp, Expr, Path};
pub use check::{TypeEnv, TypeError, check};
pub use eval::{Env, EvalError, eval};
pub use lex::ParseError;
pub use map_env::MapEnv;
pub use parse::parse;
pub use text::ExprText;
pub use value::{Type, Value};

#[cfg(test)]
mod tests;
