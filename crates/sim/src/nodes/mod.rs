//! Node kinds: what each kind does in a session, one module per kind. [`kind`] is the one
//! place that maps a [`NodeKind`] to its behaviour, by an exhaustive match: a new kind is a
//! new module implementing [`Behaviour`] plus one arm there, and the compiler asks for it.

mod action;
mod call;
mod choice;
mod condition;
mod dialogue;
mod end;
mod media;
mod minigame;
mod r#return;

use std::collections::BTreeMap;

use domain::narrative::scene::GenerationSpec;
use domain::narrative::{Line, Node, NodeKind};

use crate::components::Playing;
use crate::cx::{Cx, Next, Res, S};
use crate::edges;
use crate::protocol::{Event, Media};
use crate::resources::MediaLibrary;
use crate::{choices, playback};

/// What entering a node shows besides its id and kind.
#[derive(Default)]
pub(crate) struct Shown {
    pub media: Option<Box<Media>>,
    pub lines: Vec<Line>,
    pub prompt: Option<String>,
}

/// What a node kind does. Only [`Behaviour::enter`] must be written; the rest defaults
/// to "nothing of that".
pub(crate) trait Behaviour<'k> {
    /// What entering shows (media, dialogue lines, a prompt); `pick` is the media picked
    /// on entry among several.
    fn shown(&self, _media: &MediaLibrary, _pick: u32) -> Shown {
        Shown::default()
    }

    /// What happens once the node is entered and shown.
    fn enter(&self, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next>;

    /// The generation spec whose asset this node shows once it is ready.
    fn generates(&self) -> Option<&'k GenerationSpec> {
        None
    }

    /// As a caller's frame: the callee's return values bound to the caller's variables.
    fn return_bindings(&self) -> Option<&'k BTreeMap<String, String>> {
        None
    }

    /// Restarts a saved mini-game wait (`round`, `hits`) on resume.
    fn resume_minigame(
        &self,
        _s: S<'_, '_, '_>,
        _cx: &mut Cx<'_>,
        _round: u32,
        _hits: u32,
    ) -> Res<()> {
        Err("saved mini-game node is no longer a mini-game".into())
    }
}

/// Runs `f` with the behaviour of `kind`. The one match over [`NodeKind`] in the
/// simulation: add a kind here.
pub(crate) fn kind<'k, R>(kind: &'k NodeKind, f: impl FnOnce(&dyn Behaviour<'k>) -> R) -> R {
    match kind {
        NodeKind::Media {
            asset,
            clip,
            generate,
            branch: _,
            variant,
            auto,
            media,
            select: _,
            pool: _,
            playback,
            skippable: _,
            loopable: _,
            hotspots: _,
        } => f(&media::Media {
            asset: asset.as_deref().or(clip.as_deref()),
            variant: variant.as_deref(),
            generate: generate.as_ref(),
            auto: *auto,
            media,
            steps: playback.steps(),
        }),
        NodeKind::Dialogue { lines, auto } => f(&dialogue::Dialogue { lines, auto: *auto }),
        NodeKind::Choice { prompt } => f(&choice::Choice {
            prompt: prompt.as_deref(),
        }),
        NodeKind::Condition {} => f(&condition::Condition),
        NodeKind::Action { effects } => f(&action::Action { effects }),
        NodeKind::MiniGame(spec) => f(&minigame::MiniGame { spec }),
        NodeKind::Call { scene, args, bind } => f(&call::Call { scene, args, bind }),
        NodeKind::Return { values, route } => f(&r#return::Return {
            values,
            route: route.as_deref(),
        }),
        NodeKind::End { outcome } => f(&end::End { outcome: *outcome }),
    }
}

/// Emits `node_entered` for the session's current node, `node`.
pub(crate) fn present(s: S<'_, '_, '_>, cx: &mut Cx<'_>, node: &Node) {
    let shown = shown(node, cx.media, *s.playing);
    let scene = cx.content.scene(&s.pos.scene);
    cx.emit(Event::NodeEntered {
        scene: s.pos.scene.clone(),
        node: s.pos.node.clone(),
        kind: std::borrow::Cow::Borrowed(node.kind.name()),
        media: shown.media,
        lines: shown.lines,
        prompt: shown.prompt,
        presentation: playback::presentation(scene, node, *s.playing),
    });
}

/// Goes on once a media node's steps have all played: what entering it does with no
/// step left (offer its choices, or advance when `auto`).
pub(crate) fn finished(s: S<'_, '_, '_>, cx: &mut Cx<'_>, node: &Node) -> Res<Next> {
    kind(&node.kind, |b| b.enter(s, cx))
}

/// What `node` shows when entered, with the generated media known now.
pub(crate) fn shown(node: &Node, media: &MediaLibrary, playing: Playing) -> Shown {
    kind(&node.kind, |b| b.shown(media, playing.media))
}

/// The node kinds that offer their edges as choices unless `auto`: offer them, or take
/// the automatic edge.
fn offer_or_advance(auto: bool, s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<Next> {
    if auto {
        edges::follow(s, cx, None)?;
        Ok(Next::Moved)
    } else {
        choices::offer(s, cx)?;
        Ok(Next::Stop)
    }
}
