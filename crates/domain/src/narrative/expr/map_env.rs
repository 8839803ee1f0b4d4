//! [`MapEnv`]: a map-backed environment, for tests and tools.

use std::collections::BTreeMap;

use super::ast::Path;
use super::check::TypeEnv;
use super::eval::{Env, EvalError};
use super::value::{Type, Value};

/// A simple map-backed environment, for tests and tools.
#[derive(Clone, Debug, Default)]
pub struct MapEnv {
    /// Values by path text (e.g. `"var.gold"`).
    pub values: BTreeMap<String, Value>,
    /// Random state.
    pub rng: crate::narrative::rng::Rng,
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
