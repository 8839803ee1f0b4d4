//! Expressions, values and state references, checked in the scene they appear in.

use std::collections::BTreeMap;

use domain::narrative::effect::ValueSrc;
use domain::narrative::expr::{self, ExprText, Type, TypeEnv};
use domain::narrative::state::SceneTypes;

use super::Ctx;

impl Ctx<'_> {
    /// Checks an expression; returns its type when valid.
    pub(super) fn expr(
        &mut self,
        node: &str,
        what: &str,
        e: &ExprText,
        params: &BTreeMap<String, Type>,
    ) -> Option<Type> {
        let parsed = match &e.parsed {
            Ok(p) => p,
            Err(err) => {
                self.at(Some(node), format!("{what}: '{}': {err}", e.src));
                return None;
            }
        };
        let env = SceneTypes {
            world: self.world,
            scenes: &self.scenes,
            params,
        };
        match expr::check(parsed, &env) {
            Ok(t) => Some(t),
            Err(err) => {
                self.at(Some(node), format!("{what}: '{}': {err}", e.src));
                None
            }
        }
    }

    /// A literal or expression value; returns its type when valid.
    pub(super) fn value_src(
        &mut self,
        node: &str,
        what: &str,
        v: &ValueSrc,
        params: &BTreeMap<String, Type>,
    ) -> Option<Type> {
        match v {
            ValueSrc::Bool(_) => Some(Type::Bool),
            ValueSrc::Int(_) => Some(Type::Int),
            ValueSrc::Expr(e) => self.expr(node, what, e, params),
        }
    }

    /// A declared variable's type.
    pub(super) fn var(&mut self, node: &str, what: &str, var: &str) -> Option<Type> {
        match self.world.variables.get(var) {
            Some(d) => Some(d.ty.clone()),
            None => {
                self.at(Some(node), format!("{what}: undefined variable '{var}'"));
                None
            }
        }
    }

    /// Checks that a state reference resolves.
    pub(super) fn path(
        &mut self,
        node: &str,
        what: &str,
        p: &expr::Path,
        params: &BTreeMap<String, Type>,
    ) {
        let env = SceneTypes {
            world: self.world,
            scenes: &self.scenes,
            params,
        };
        if let Err(e) = env.path_type(p) {
            self.at(Some(node), format!("{what}: {e}"));
        }
    }
}
