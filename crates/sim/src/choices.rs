//! Choices: offering the current node's edges, taking one (`choose`), and offering again
//! the choices a save recorded. Nothing here advances: `choose` returns a [`Next`] the
//! caller hands to [`crate::advance::after`].

use domain::narrative::Edge;

use crate::components::{Offered, Phase};
use crate::cx::{Cx, Next, Res, S, wrong_state};
use crate::edges::{cooling_until, take, test_edge};
use crate::protocol::{Choice, ErrorReason, Event};

/// An edge's reveal delay: its own `reveal_ms`, else (when it sets none) its node's
/// `reveal_choices_ms`.
fn reveal_ms(content: &domain::narrative::Content, s: S<'_, '_, '_>, e: &Edge) -> u64 {
    if e.reveal_ms > 0 {
        return e.reveal_ms;
    }
    content
        .node(&s.pos.scene, &e.from)
        .and_then(|n| n.reveal_choices_ms)
        .unwrap_or(0)
}

/// Offers the current node's edges without `on` whose conditions hold.
pub(crate) fn offer(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<()> {
    let content = cx.content;
    let mut choices = Vec::new();
    let edges = content
        .out_edges(&s.pos.scene, &s.pos.node)
        .filter(|e| e.on.is_none());
    for e in edges {
        if !test_edge(s, cx, e)? {
            continue;
        }
        let reveal = s.pos.entered_at_ms + reveal_ms(content, s, e) as i64;
        let avail = cooling_until(s, cx, e).map_or(reveal, |u| u.max(reveal));
        // Reuse the previous offer's buffers.
        let list = &mut s.choices.0;
        match list.get_mut(choices.len()) {
            Some(slot) => {
                slot.edge.clone_from(&e.id);
                slot.reveal_at_ms = reveal;
            }
            None => list.push(Offered {
                edge: e.id.clone(),
                reveal_at_ms: reveal,
            }),
        }
        choices.push(Choice {
            edge: e.id.clone(),
            label: e.label.clone(),
            available_at_ms: avail,
        });
    }
    s.choices.0.truncate(choices.len());
    if choices.is_empty() {
        return Err(format!(
            "no choice available at node '{}' in scene '{}'",
            s.pos.node, s.pos.scene
        ));
    }
    *s.phase = Phase::Choosing;
    cx.emit(Event::ChoicesOffered {
        node: s.pos.node.clone(),
        choices,
    });
    Ok(())
}

/// Offers again the choices a save recorded (those still in the content), or afresh
/// when none is left.
pub(crate) fn reoffer(s: S<'_, '_, '_>, cx: &mut Cx<'_>, offered: Vec<String>) -> Res<()> {
    let content = cx.content;
    let mut list = Vec::new();
    let mut choices = Vec::new();
    for id in offered {
        if let Some(e) = content.edge(&s.pos.scene, &id) {
            let reveal = s.pos.entered_at_ms + reveal_ms(content, s, e) as i64;
            let avail = cooling_until(s, cx, e).map_or(reveal, |u| u.max(reveal));
            list.push(Offered {
                edge: id.clone(),
                reveal_at_ms: reveal,
            });
            choices.push(Choice {
                edge: id,
                label: e.label.clone(),
                available_at_ms: avail,
            });
        }
    }
    if list.is_empty() {
        // Every saved choice disappeared: offer afresh from the current content.
        return offer(s, cx);
    }
    s.choices.0 = list;
    *s.phase = Phase::Choosing;
    cx.emit(Event::ChoicesOffered {
        node: s.pos.node.clone(),
        choices,
    });
    Ok(())
}

/// `choose`: validates fully before changing anything. Takes the edge and returns
/// [`Next::Moved`] (the caller advances), or refuses and returns [`Next::Stop`].
pub(crate) fn choose(s: S<'_, '_, '_>, cx: &mut Cx<'_>, edge_id: &str) -> Res<Next> {
    if *s.phase != Phase::Choosing {
        cx.reject("choose", wrong_state("choose", *s.phase));
        return Ok(Next::Stop);
    }
    let not_offered = || ErrorReason::EdgeNotOffered {
        edge: edge_id.to_string(),
    };
    let Some(reveal_at_ms) = s
        .choices
        .0
        .iter()
        .find(|o| o.edge == edge_id)
        .map(|o| o.reveal_at_ms)
    else {
        cx.reject("choose", not_offered());
        return Ok(Next::Stop);
    };
    let content = cx.content;
    let Some(edge) = content.edge(&s.pos.scene, edge_id) else {
        cx.reject("choose", not_offered());
        return Ok(Next::Stop);
    };
    // Between ticks the clock is the last tick's: what opened within a tick of it may
    // be open by now (the clock's resolution, as for a reflex press).
    let latest = cx.now_at_latest();
    if latest < reveal_at_ms {
        let at_ms = reveal_at_ms;
        let edge = edge_id.to_string();
        cx.reject("choose", ErrorReason::NotRevealed { edge, at_ms });
        return Ok(Next::Stop);
    }
    if let Some(until_ms) = cooling_until(s, cx, edge).filter(|u| *u > latest) {
        let edge = edge_id.to_string();
        cx.reject("choose", ErrorReason::Cooldown { edge, until_ms });
        return Ok(Next::Stop);
    }
    let rng_before = s.rng.0;
    let refused = match test_edge(s, cx, edge) {
        Ok(true) => None,
        Ok(false) => Some(edge_id.to_string()),
        Err(detail) => Some(format!("{edge_id} ({detail})")),
    };
    if let Some(edge) = refused {
        s.rng.0 = rng_before;
        cx.reject("choose", ErrorReason::ConditionFalse { edge });
        return Ok(Next::Stop);
    }
    take(s, cx, edge)?;
    Ok(Next::Moved)
}
