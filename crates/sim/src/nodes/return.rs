//! `return`: evaluates the returned values, pops the caller's frame (or ends the session
//! when returning from the root scene), binds the values as the caller's call node says
//! and takes the caller's edge for the route.

use std::collections::BTreeMap;

use domain::narrative::{Effect, ExprText, Value, ValueSrc};

use super::Behaviour;
use crate::cx::{Cx, Next, Res, S, end, parsed, with_ctx};
use crate::edges;
use crate::protocol::EndReason;

pub(super) struct Return<'k> {
    pub values: &'k BTreeMap<String, ExprText>,
    pub route: Option<&'k str>,
}

impl<'k> Behaviour<'k> for Return<'k> {
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
        let content = cx.content;
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for (k, t) in self.values {
            let expr = parsed(t)?;
            let v = with_ctx(s, content, cx.now, |ctx| ctx.eval(expr))
                .map_err(|e| format!("return value '{k}': {e}"))?;
            out.insert(k.clone(), v);
        }
        let Some(frame) = s.stack.0.pop() else {
            end(s, cx, EndReason::Returned);
            return Ok(Next::Stop);
        };
        s.pos.scene = frame.scene;
        s.pos.node = frame.node;
        s.pos.args = frame.args;
        let call = content
            .node(&s.pos.scene, &s.pos.node)
            .ok_or_else(|| format!("caller node '{}' missing", s.pos.node))?;
        if let Some(bind) = super::kind(&call.kind, |caller| caller.return_bindings()) {
            let effects: Vec<Effect> = bind
                .iter()
                .filter_map(|(ret, var)| {
                    out.get(ret).map(|v| Effect::Set {
                        var: var.clone(),
                        value: value_src(v),
                    })
                })
                .collect();
            edges::apply_effects(s, cx, &effects).map_err(|e| format!("return bindings: {e}"))?;
        }
        edges::follow(s, cx, self.route)?;
        Ok(Next::Moved)
    }
}

fn value_src(v: &Value) -> ValueSrc {
    match v {
        Value::Bool(b) => ValueSrc::Bool(*b),
        Value::Int(i) => ValueSrc::Int(*i),
        Value::Str(_) | Value::List(_) => ValueSrc::Expr(ExprText::new(v.to_string())),
    }
}
