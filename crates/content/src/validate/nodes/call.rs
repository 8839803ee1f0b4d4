//! `call`: an existing scene, its parameters bound with the right types, its returns bound
//! to variables of the right types.

use std::collections::BTreeMap;

use domain::narrative::ExprText;

use super::super::Ctx;
use super::super::flow::{Flow, NodeCx, On};

pub(super) fn check(
    c: &mut Ctx<'_>,
    n: &NodeCx<'_>,
    scene: &str,
    args: &BTreeMap<String, ExprText>,
    bind: &BTreeMap<String, String>,
) {
    c.flow(
        n,
        Flow::Edges {
            auto: true,
            on: On::Route { scene },
        },
    );
    let (node, params) = (n.id(), &n.scene.params);
    let Some(callee) = c.scenes.get(scene).cloned() else {
        c.at(Some(node), format!("call to undefined scene '{scene}'"));
        return;
    };
    for (k, v) in args {
        let t = c.expr(node, &format!("argument '{k}'"), v, params);
        match callee.params.get(k) {
            None => c.at(
                Some(node),
                format!("call passes argument '{k}' but scene '{scene}' has no such parameter"),
            ),
            Some(pt) => {
                if let Some(t) = t
                    && &t != pt
                {
                    c.at(
                        Some(node),
                        format!("argument '{k}' is {t}, scene '{scene}' expects {pt}"),
                    );
                }
            }
        }
    }
    for (k, pt) in &callee.params {
        if !args.contains_key(k) {
            c.at(
                Some(node),
                format!("call does not bind parameter '{k}' ({pt}) of scene '{scene}'"),
            );
        }
    }
    for (ret, var) in bind {
        let vt = c.var(node, &format!("bind '{ret}'"), var);
        match callee.returns.get(ret) {
            None => c.at(
                Some(node),
                format!("binds return value '{ret}' but scene '{scene}' does not return it"),
            ),
            Some(rt) => {
                if let Some(vt) = vt
                    && &vt != rt
                {
                    c.at(
                        Some(node),
                        format!(
                            "bind '{ret}': scene '{scene}' returns {rt}, variable '{var}' is {vt}"
                        ),
                    );
                }
            }
        }
    }
}
