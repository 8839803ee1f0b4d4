//! Edges out of the current node: conditions, cooldowns, the automatic pick (weighted
//! draw), and taking an edge (its effects, its cooldown, the move).

use domain::narrative::{Edge, Effect};

use crate::cx::{Cx, Res, S, parsed, with_ctx};

/// Whether the edge's condition holds.
pub(crate) fn test_edge(s: S<'_, '_, '_>, cx: &Cx<'_>, e: &Edge) -> Res<bool> {
    match &e.condition {
        None => Ok(true),
        Some(c) => {
            let expr = parsed(c)?;
            with_ctx(s, cx.content, cx.now, |ctx| ctx.test(expr))
                .map_err(|err| format!("edge '{}': {err}", e.id))
        }
    }
}

/// The key of an edge's cooldown: `scene/edge`.
pub(crate) fn cooldown_key(scene: &str, edge: &str) -> String {
    format!("{scene}/{edge}")
}

/// When the edge is usable again, if it is cooling down.
pub(crate) fn cooling_until(s: S<'_, '_, '_>, cx: &Cx<'_>, e: &Edge) -> Option<i64> {
    if s.cooldowns.0.is_empty() {
        return None;
    }
    s.cooldowns
        .0
        .get(&cooldown_key(&s.pos.scene, &e.id))
        .copied()
        .filter(|u| *u > cx.now)
}

/// Among `edges`, the passing non-default ones (weighted draw when several), else the
/// passing default one.
fn pick_among<'c>(
    s: S<'_, '_, '_>,
    cx: &Cx<'c>,
    edges: impl Iterator<Item = &'c Edge>,
) -> Res<Option<&'c Edge>> {
    // Allocation-free for the common case of zero or one passing non-default edge.
    let mut first = None;
    let mut more: Vec<&'c Edge> = Vec::new();
    let mut default = None;
    for e in edges {
        if cooling_until(s, cx, e).is_some() || !test_edge(s, cx, e)? {
            continue;
        }
        if e.default {
            default.get_or_insert(e);
        } else if first.is_none() {
            first = Some(e);
        } else {
            more.push(e);
        }
    }
    let Some(first) = first else {
        return Ok(default);
    };
    if more.is_empty() {
        return Ok(Some(first));
    }
    more.insert(0, first);
    let weights: Vec<u32> = more.iter().map(|e| e.weight).collect();
    Ok(match s.rng.0.weighted(&weights) {
        Some(i) => Some(more[i]),
        None => default.or(Some(first)),
    })
}

/// Picks the automatic edge from the current node: edges whose `on` matches `on` first,
/// then edges without `on`.
pub(crate) fn pick<'c>(s: S<'_, '_, '_>, cx: &Cx<'c>, on: Option<&str>) -> Res<&'c Edge> {
    let content = cx.content;
    if let Some(on) = on {
        let sel = content
            .out_edges(&s.pos.scene, &s.pos.node)
            .filter(|e| e.on.as_deref() == Some(on));
        if let Some(e) = pick_among(s, cx, sel)? {
            return Ok(e);
        }
    }
    let sel = content
        .out_edges(&s.pos.scene, &s.pos.node)
        .filter(|e| e.on.is_none());
    pick_among(s, cx, sel)?.ok_or_else(|| {
        format!(
            "no edge can be taken from node '{}' in scene '{}'",
            s.pos.node, s.pos.scene
        )
    })
}

/// Applies effects, journaling the changes (also on failure, for what was applied).
pub(crate) fn apply_effects(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    effects: &[Effect],
) -> Result<(), domain::narrative::state::EffectError> {
    if effects.is_empty() {
        return Ok(());
    }
    let mut scratch = std::mem::take(&mut cx.staging.scratch);
    let r = with_ctx(s, cx.content, cx.now, |ctx| {
        for eff in effects {
            ctx.apply(eff, &mut scratch)?;
        }
        Ok(())
    });
    let id = cx.id;
    cx.staging
        .journal
        .extend(scratch.drain(..).map(|c| (id, c)));
    cx.staging.scratch = scratch;
    r
}

/// Applies an edge's effects and cooldown, and moves to its target.
pub(crate) fn take(s: S<'_, '_, '_>, cx: &mut Cx<'_>, e: &Edge) -> Res<()> {
    let now = cx.now;
    let r = apply_effects(s, cx, &e.effects);
    r.map_err(|err| format!("edge '{}': {err}", e.id))?;
    if e.cooldown_ms > 0 {
        let key = cooldown_key(&s.pos.scene, &e.id);
        s.cooldowns.0.insert(key, now + e.cooldown_ms as i64);
    }
    if !s.cooldowns.0.is_empty() {
        s.cooldowns.0.retain(|_, until| *until > now);
    }
    s.pos.node.clone_from(&e.to);
    Ok(())
}

/// Picks the automatic edge (`on` first, see [`pick`]) and takes it.
pub(crate) fn follow(s: S<'_, '_, '_>, cx: &mut Cx<'_>, on: Option<&str>) -> Res<()> {
    let e = pick(s, cx, on)?;
    take(s, cx, e)
}
