//! `return`: returns every declared value of the scene, each of its declared type.

use std::collections::BTreeMap;

use domain::narrative::ExprText;

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx};

pub(super) fn check(c: &mut Ctx<'_>, n: &NodeCx<'_>, values: &BTreeMap<String, ExprText>) {
    c.flow(n, Flow::Return);
    let (id, s) = (n.id(), n.scene);
    for (k, v) in values {
        let t = c.expr(id, &format!("return value '{k}'"), v, &s.params);
        match s.returns.get(k) {
            None => c.at(
                Some(id),
                format!("return value '{k}' is not declared in the scene's returns"),
            ),
            Some(rt) => {
                if let Some(t) = t
                    && &t != rt
                {
                    c.at(
                        Some(id),
                        format!("return value '{k}' is {t}, declared {rt}"),
                    );
                }
            }
        }
    }
    for k in s.returns.keys() {
        if !values.contains_key(k) {
            c.at(
                Some(id),
                format!("return node does not return declared value '{k}'"),
            );
        }
    }
}
