//! Static type checking.

use thiserror::Error;

use super::ast::{BinOp, Expr, Path};
use super::value::Type;

/// A type error.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct TypeError(pub String);

/// Resolves the types of state references during type checking.
pub trait TypeEnv {
    /// The type of a path, or a reason it is undefined (e.g. "undefined variable 'x'").
    fn path_type(&self, path: &Path) -> Result<Type, String>;
}

fn terr<T>(m: String) -> Result<T, TypeError> {
    Err(TypeError(m))
}

/// Type checks an expression, returning its type.
pub fn check(e: &Expr, env: &dyn TypeEnv) -> Result<Type, TypeError> {
    match e {
        Expr::Lit(v) => v
            .ty()
            .ok_or_else(|| TypeError("cannot infer the type of an empty list".into())),
        Expr::List(items) => check_list(items, env),
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
            check_bin(*op, ta, tb)
        }
    }
}

/// A list literal: non-empty, flat, one element type.
fn check_list(items: &[Expr], env: &dyn TypeEnv) -> Result<Type, TypeError> {
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

/// The type of `a op b` given the operands' types.
fn check_bin(op: BinOp, ta: Type, tb: Type) -> Result<Type, TypeError> {
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
