//! Saves, the one implementation: the session's state as a [`SessionSave`] (the `saved`
//! event, JSON in the tables) or straight in the binary form of
//! [`domain::narrative::save_bin`] (the game's batch log, written every tick for every
//! touched session), checking a save against the content, and restoring one onto a new
//! session. *Invariant:* the binary form decodes to exactly the [`SessionSave`] of
//! [`snapshot`] (tested below).

use std::collections::BTreeMap;

use bevy_ecs::prelude::*;

use domain::narrative::save::map_save;
use domain::narrative::{
    Content, Frame, SAVE_VERSION, SavedPlayback, SavedWait, SessionSave, save_bin,
};

use crate::components::{
    ActiveMiniGame, CallStack, Cooldowns, PendingChoices, Phase, Playing, Position, Progression,
    SessionQueryItem, SessionRng, Variables, VisitCounts,
};
use crate::cx::{Cx, Res, S, wrong_state};
use crate::protocol::{ErrorReason, Event};
use crate::{choices, nodes};

/// The session components a save reads, read-only.
pub(crate) type SaveParts = (
    &'static Position,
    &'static CallStack,
    &'static Variables,
    &'static VisitCounts,
    &'static PendingChoices,
    &'static Progression,
    &'static SessionRng,
    &'static Cooldowns,
    &'static ActiveMiniGame,
    &'static Phase,
    &'static Playing,
);

/// One session's state as a save reads it.
pub(crate) struct SaveView<'a> {
    pub pos: &'a Position,
    pub stack: &'a CallStack,
    pub vars: &'a Variables,
    pub visits: &'a VisitCounts,
    pub choices: &'a PendingChoices,
    pub progress: &'a Progression,
    pub rng: &'a SessionRng,
    pub cooldowns: &'a Cooldowns,
    pub minigame: &'a ActiveMiniGame,
    pub phase: &'a Phase,
    pub playing: &'a Playing,
}

/// A [`SaveParts`] query item.
type PartsItem<'a> = (
    &'a Position,
    &'a CallStack,
    &'a Variables,
    &'a VisitCounts,
    &'a PendingChoices,
    &'a Progression,
    &'a SessionRng,
    &'a Cooldowns,
    &'a ActiveMiniGame,
    &'a Phase,
    &'a Playing,
);

impl<'a> From<PartsItem<'a>> for SaveView<'a> {
    fn from(parts: PartsItem<'a>) -> Self {
        let (pos, stack, vars, visits, choices, progress, rng, cooldowns, minigame, phase, playing) =
            parts;
        SaveView {
            pos,
            stack,
            vars,
            visits,
            choices,
            progress,
            rng,
            cooldowns,
            minigame,
            phase,
            playing,
        }
    }
}

impl<'a> From<&'a SessionQueryItem<'_, '_>> for SaveView<'a> {
    fn from(s: &'a SessionQueryItem<'_, '_>) -> Self {
        SaveView {
            pos: &s.pos,
            stack: &s.stack,
            vars: &s.vars,
            visits: &s.visits,
            choices: &s.choices,
            progress: &s.progress,
            rng: &s.rng,
            cooldowns: &s.cooldowns,
            minigame: &s.minigame,
            phase: &s.phase,
            playing: &s.playing,
        }
    }
}

/// What the session waits for, as saved. Only a session waiting for a choice or inside a
/// mini-game can be saved.
fn saved_wait(v: &SaveView<'_>) -> Result<SavedWait, ErrorReason> {
    match v.phase {
        Phase::Choosing => Ok(SavedWait::Choices {
            offered: v.choices.0.iter().map(|o| o.edge.clone()).collect(),
        }),
        Phase::MiniGame => match &v.minigame.0 {
            Some(run) => Ok(SavedWait::MiniGame {
                round: run.round,
                hits: run.hits,
            }),
            None => Err(wrong_state("save", *v.phase)),
        },
        Phase::Playing => Ok(SavedWait::Continue),
        // No wildcard: a new phase must say here whether it can be saved.
        Phase::Starting | Phase::Ended => Err(wrong_state("save", *v.phase)),
    }
}

/// Cooldowns still running at `now`, as remaining ms.
fn remaining(cooldowns: &Cooldowns, now: i64) -> impl Iterator<Item = (&str, i64)> {
    cooldowns
        .0
        .iter()
        .map(move |(k, u)| (k.as_str(), (u - now).max(0)))
        .filter(|(_, r)| *r > 0)
}

/// The session's save at world time `now` (what `Command::Save` answers).
pub(crate) fn snapshot(
    v: &SaveView<'_>,
    now: i64,
    content_version: &str,
) -> Result<SessionSave, ErrorReason> {
    let wait = saved_wait(v)?;
    let mut stack = v.stack.0.clone();
    stack.push(Frame {
        scene: v.pos.scene.clone(),
        node: v.pos.node.clone(),
        args: v.pos.args.clone(),
    });
    Ok(SessionSave {
        version: SAVE_VERSION,
        content_version: content_version.to_owned(),
        rng: v.rng.0,
        stack,
        elapsed_in_node_ms: now - v.pos.entered_at_ms,
        wait,
        vars: v.vars.0.clone(),
        visits: v.visits.0.clone(),
        progress: v.progress.0.clone(),
        cooldowns: remaining(v.cooldowns, now)
            .map(|(k, r)| (k.to_owned(), r))
            .collect(),
        playback: saved_playback(v.playing),
    })
}

/// The same save in the binary form, encoded straight from the components without
/// copying them. On the tick's hot path: it costs a fraction of the JSON it replaces.
pub(crate) fn encode_binary(
    v: &SaveView<'_>,
    now: i64,
    content_version: &str,
) -> Result<Vec<u8>, ErrorReason> {
    let wait = saved_wait(v)?;
    let cooldowns: BTreeMap<&str, i64> = remaining(v.cooldowns, now).collect();
    // Sized for a typical save (a demo save mid-story is 376 bytes, 758 as JSON), so it
    // is written without regrowing.
    let mut out = Vec::with_capacity(512);
    save_bin::encode(
        &save_bin::SaveRef {
            version: SAVE_VERSION,
            content_version,
            rng: v.rng.0,
            callers: &v.stack.0,
            top: (&v.pos.scene, &v.pos.node, &v.pos.args),
            elapsed_in_node_ms: now - v.pos.entered_at_ms,
            wait: &wait,
            vars: &v.vars.0,
            visits: &v.visits.0,
            progress: &v.progress.0,
            cooldowns: &cooldowns,
            playback: saved_playback(v.playing),
        },
        &mut out,
    );
    Ok(out)
}

fn saved_playback(p: &Playing) -> SavedPlayback {
    SavedPlayback {
        media: p.media,
        step: p.step,
    }
}

/// Validates a save against the content, returning the mapped save and notes.
pub(crate) fn check_save(
    save: &SessionSave,
    content: &Content,
) -> Result<(SessionSave, Vec<String>), ErrorReason> {
    let mut save = save.clone();
    match map_save(&mut save, content) {
        Ok(notes) => Ok((save, notes)),
        Err(e) => Err(ErrorReason::SaveRejected {
            detail: e.to_string(),
        }),
    }
}

/// The components restoring a checked save at world time `now` (inserted over a freshly
/// spawned session), and what the session waited for.
pub(crate) fn restore(save: SessionSave, now: i64) -> Option<(impl Bundle, SavedWait)> {
    let mut stack = save.stack;
    let top = stack.pop()?;
    let bundle = (
        Position {
            scene: top.scene,
            node: top.node,
            entered_at_ms: now - save.elapsed_in_node_ms,
            args: top.args,
        },
        CallStack(stack),
        Variables(save.vars),
        VisitCounts(save.visits),
        Progression(save.progress),
        SessionRng(save.rng),
        Playing {
            media: save.playback.media,
            step: save.playback.step,
        },
        Cooldowns(
            save.cooldowns
                .into_iter()
                .map(|(k, r)| (k, now + r))
                .collect(),
        ),
    );
    Some((bundle, save.wait))
}

/// Finishes a resume on a freshly restored session: shows its node again and waits as
/// the save did.
pub(crate) fn resumed(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    notes: Vec<String>,
    wait: SavedWait,
) -> Res<()> {
    cx.emit(Event::Resumed {
        scene: s.pos.scene.clone(),
        node: s.pos.node.clone(),
        notes,
    });
    let content = cx.content;
    let node = content
        .node(&s.pos.scene, &s.pos.node)
        .ok_or_else(|| format!("scene '{}' has no node '{}'", s.pos.scene, s.pos.node))?;
    nodes::present(s, cx, node);
    match wait {
        SavedWait::Choices { offered } => choices::reoffer(s, cx, offered),
        SavedWait::MiniGame { round, hits } => {
            nodes::kind(&node.kind, |b| b.resume_minigame(s, cx, round, hits))
        }
        SavedWait::Continue => {
            *s.phase = Phase::Playing;
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "save_tests.rs"]
mod tests;
