//! `call`: evaluates the arguments, pushes the caller's frame and enters the callee
//! scene's entry node. On return, the caller binds the returned values (see
//! [`super::r#return`]).

use std::collections::BTreeMap;

use domain::narrative::{ExprText, Frame};

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S, parsed, with_ctx};

pub(super) struct Call<'k> {
    pub scene: &'k String,
    pub args: &'k BTreeMap<String, ExprText>,
    pub bind: &'k BTreeMap<String, String>,
}

impl<'k> Behaviour<'k> for Call<'k> {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        let content = cx.content;
        let callee = self.scene;
        let callee_scene = content
            .scene(callee)
            .ok_or_else(|| format!("call to missing scene '{callee}'"))?;
        let mut values = BTreeMap::new();
        for (k, t) in self.args {
            let expr = parsed(t)?;
            let v = with_ctx(s, content, cx.now, |ctx| ctx.eval(expr))
                .map_err(|e| format!("argument '{k}': {e}"))?;
            values.insert(k.clone(), v);
        }
        let caller = Frame {
            scene: s.pos.scene.clone(),
            node: s.pos.node.clone(),
            args: std::mem::take(&mut s.pos.args),
        };
        s.stack.0.push(caller);
        s.pos.scene = callee.clone();
        s.pos.node = callee_scene.entry.clone();
        s.pos.args = values;
        Ok(Next::EnteredScene)
    }

    fn return_bindings(&self) -> Option<&'k BTreeMap<String, String>> {
        Some(self.bind)
    }
}
