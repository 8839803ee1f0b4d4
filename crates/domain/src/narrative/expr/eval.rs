//! Evaluation.

use std::cmp::Ordering;

use thiserror::Error;

use super::ast::{BinOp, Expr, Path};
use super::value::Value;

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
        Expr::Bin(BinOp::And, a, b) => Ok(Value::Bool(
            boolean(eval(a, env)?, e)? && boolean(eval(b, env)?, e)?,
        )),
        Expr::Bin(BinOp::Or, a, b) => Ok(Value::Bool(
            boolean(eval(a, env)?, e)? || boolean(eval(b, env)?, e)?,
        )),
        Expr::Bin(op, a, b) => {
            let va = eval(a, env)?;
            let vb = eval(b, env)?;
            eval_bin(*op, va, vb, e)
        }
    }
}

/// `va op vb` for the operators that evaluate both sides; `e` names the expression in
/// errors.
fn eval_bin(op: BinOp, va: Value, vb: Value, e: &Expr) -> Result<Value, EvalError> {
    let ovf = || EvalError::Overflow(e.to_string());
    Ok(match op {
        // Short-circuiting: evaluated by `eval` itself; both sides are known here.
        BinOp::And => Value::Bool(boolean(va, e)? && boolean(vb, e)?),
        BinOp::Or => Value::Bool(boolean(va, e)? || boolean(vb, e)?),
        BinOp::Eq => Value::Bool(va == vb),
        BinOp::Ne => Value::Bool(va != vb),
        BinOp::Lt => Value::Bool(order(&va, &vb)?.is_lt()),
        BinOp::Le => Value::Bool(order(&va, &vb)?.is_le()),
        BinOp::Gt => Value::Bool(order(&va, &vb)?.is_gt()),
        BinOp::Ge => Value::Bool(order(&va, &vb)?.is_ge()),
        BinOp::In => Value::Bool(contains(&va, &vb)?),
        BinOp::NotIn => Value::Bool(!contains(&va, &vb)?),
        BinOp::Add => match (va, vb) {
            (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(y).ok_or_else(ovf)?),
            (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
            (Value::List(mut x), Value::List(y)) => {
                x.extend(y);
                Value::List(x)
            }
            (x, y) => return Err(EvalError::Type(format!("cannot add {x} and {y}"))),
        },
        BinOp::Sub => Value::Int(int(va, e)?.checked_sub(int(vb, e)?).ok_or_else(ovf)?),
        BinOp::Mul => Value::Int(int(va, e)?.checked_mul(int(vb, e)?).ok_or_else(ovf)?),
        BinOp::Div | BinOp::Rem => {
            let x = int(va, e)?;
            let y = int(vb, e)?;
            if y == 0 {
                return Err(EvalError::DivByZero(e.to_string()));
            }
            let r = if op == BinOp::Div {
                x.checked_div(y)
            } else {
                x.checked_rem(y)
            };
            Value::Int(r.ok_or_else(ovf)?)
        }
    })
}

/// Orders two ints or two strings.
fn order(va: &Value, vb: &Value) -> Result<Ordering, EvalError> {
    match (va, vb) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => Err(EvalError::Type(format!("cannot order {va} and {vb}"))),
    }
}

/// List membership, or substring.
fn contains(va: &Value, vb: &Value) -> Result<bool, EvalError> {
    match (va, vb) {
        (x, Value::List(items)) => Ok(items.contains(x)),
        (Value::Str(x), Value::Str(y)) => Ok(y.contains(x.as_str())),
        _ => Err(EvalError::Type(format!("'in' needs a list, got {vb}"))),
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
