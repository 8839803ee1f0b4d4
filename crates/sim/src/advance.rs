//! The automatic advance: enter the current node, show it, do what its kind does, and go
//! on until the session waits (choices, a mini-game) or ends. The top of a step: the
//! narrative system calls it after a start, a choice or a resolved mini-game ([`after`]);
//! node kinds and the choice / mini-game helpers below it never call back into it, they
//! return a [`Next`].

use crate::cx::{Cx, Next, Res, S};
use crate::nodes;

/// Enters the current node and advances automatically until the session waits or ends.
/// `scene_entry`: the node is its scene's entry, reached by a start or a call.
pub(crate) fn run(s: S<'_, '_, '_>, cx: &mut Cx<'_>, mut scene_entry: bool) -> Res<()> {
    let content = cx.content;
    for _ in 0..cx.cfg.max_auto_steps {
        let node = content
            .node(&s.pos.scene, &s.pos.node)
            .ok_or_else(|| format!("scene '{}' has no node '{}'", s.pos.scene, s.pos.node))?;
        s.visits.0.enter(&s.pos.scene, &s.pos.node, scene_entry);
        s.pos.entered_at_ms = cx.now;
        crate::playback::entered(s, cx, node)?;
        nodes::present(s, cx, node);
        match nodes::kind(&node.kind, |node| node.enter(s, cx))? {
            Next::Stop => return Ok(()),
            Next::Moved => scene_entry = false,
            Next::EnteredScene => scene_entry = true,
        }
    }
    Err(format!(
        "more than {} automatic steps without waiting (a loop in the content?)",
        cx.cfg.max_auto_steps
    ))
}

/// Goes on after a step that ran outside the advance (a choice taken, a mini-game
/// resolved): enters the node it moved to, if it moved.
pub(crate) fn after(s: S<'_, '_, '_>, cx: &mut Cx<'_>, next: Next) -> Res<()> {
    match next {
        Next::Stop => Ok(()),
        Next::Moved => run(s, cx, false),
        Next::EnteredScene => run(s, cx, true),
    }
}
