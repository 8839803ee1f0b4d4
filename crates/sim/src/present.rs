//! Builds a [`SessionView`] from a session's components and the content: the node as its
//! kind presents it, the offered choices, the open round, and the progression (every
//! declared variable and stat axis, so a client folding `StateDelta` agrees with it).

use domain::narrative::{Content, Progress, QuestStatus, Value, Vars};

use crate::components::{Phase, RoundPhase};
use crate::edges::cooldown_key;
use crate::protocol::Choice;
use crate::resources::MediaLibrary;
use crate::save::SaveView;
use crate::view::{OpenRound, SessionView, ViewPosition, ViewProgression, ViewQuest};
use crate::{nodes, playback};

/// The view of one session at world time `now`.
pub(crate) fn build(
    v: &SaveView<'_>,
    content: &Content,
    media: &MediaLibrary,
    now: i64,
) -> SessionView {
    let started = match v.phase {
        Phase::Choosing | Phase::MiniGame | Phase::Playing => true,
        Phase::Starting | Phase::Ended => false,
    };
    let node = started
        .then(|| content.node(&v.pos.scene, &v.pos.node))
        .flatten();
    let position = node.map(|node| {
        let shown = nodes::shown(node, media, *v.playing);
        let scene = content.scene(&v.pos.scene);
        ViewPosition {
            scene: v.pos.scene.clone(),
            node: v.pos.node.clone(),
            kind: node.kind.name(),
            media: shown.media.map(|m| *m),
            lines: shown.lines,
            prompt: shown.prompt,
            presentation: playback::presentation(scene, node, *v.playing)
                .map(|p| *p)
                .unwrap_or_default(),
        }
    });
    SessionView {
        position,
        choices: choices(v, content, now),
        minigame: open_round(v),
        progression: progression(&v.progress.0, &v.vars.0, content),
    }
}

/// The progression part of a view, from a session's (or a save's) progress and
/// variables.
pub fn progression(progress: &Progress, vars: &Vars, content: &Content) -> ViewProgression {
    ViewProgression {
        stats: stats(progress, content),
        items: progress
            .items
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect(),
        quests: quests(progress, content),
        vars: variables(vars, content),
        xp: progress.xp,
        level: progress.level,
        unlocked: progress.unlocked.iter().cloned().collect(),
    }
}

/// Every declared variable (sorted by name) with its value: the session's, else the
/// initial one (the session's map holds only values away from it).
fn variables(vars: &Vars, content: &Content) -> Vec<(String, Value)> {
    content
        .world
        .variables
        .iter()
        .map(|(name, def)| {
            let value = vars.0.get(name).cloned().unwrap_or_else(|| def.initial());
            (name.clone(), value)
        })
        .collect()
}

/// The offered choices with their labels and the time from which each may be taken
/// (its reveal, or the end of its cooldown when later), as `ChoicesOffered` computes them.
fn choices(v: &SaveView<'_>, content: &Content, now: i64) -> Vec<Choice> {
    let choosing = match v.phase {
        Phase::Choosing => true,
        Phase::Starting | Phase::MiniGame | Phase::Playing | Phase::Ended => false,
    };
    if !choosing {
        return Vec::new();
    }
    v.choices
        .0
        .iter()
        .map(|o| {
            let edge = content.edge(&v.pos.scene, &o.edge);
            let cooling = v
                .cooldowns
                .0
                .get(&cooldown_key(&v.pos.scene, &o.edge))
                .copied()
                .filter(|u| *u > now);
            Choice {
                edge: o.edge.clone(),
                label: edge.and_then(|e| e.label.clone()),
                available_at_ms: cooling.map_or(o.reveal_at_ms, |u| u.max(o.reveal_at_ms)),
            }
        })
        .collect()
}

fn open_round(v: &SaveView<'_>) -> Option<OpenRound> {
    let run = v.minigame.0.as_ref()?;
    match &run.phase {
        RoundPhase::Open {
            nonce,
            opens_at_ms,
            closes_at_ms,
        } => Some(OpenRound {
            game: run.game.clone(),
            round: run.round,
            rounds: run.rounds,
            nonce: *nonce,
            opens_at_ms: *opens_at_ms,
            closes_at_ms: *closes_at_ms,
        }),
        RoundPhase::Waiting => None,
    }
}

/// Stat keys are `stat.entity.axis` (ids never hold a dot).
/// Every declared stat axis of every entity carrying it, with its value (the axis's
/// default when never moved or moved back: `Progress` keeps only the others), sorted by
/// stat, entity and axis; like the variables, so a client folding `StateDelta` into the
/// create snapshot holds the same stats as any later snapshot.
fn stats(p: &Progress, content: &Content) -> Vec<(String, String, String, i64)> {
    let world = &content.world;
    let mut out = Vec::new();
    for (stat, def) in &world.stats {
        let mut entities: Vec<&String> = if def.entities.is_empty() {
            world.entities.iter().collect()
        } else {
            def.entities.iter().collect()
        };
        entities.sort();
        entities.dedup();
        for entity in entities {
            for (axis, ax) in &def.axes {
                let key = format!("{stat}.{entity}.{axis}");
                let value = p.stats.get(&key).copied().unwrap_or(ax.default);
                out.push((stat.clone(), entity.clone(), axis.clone(), value));
            }
        }
    }
    out
}

fn quests(p: &Progress, content: &Content) -> Vec<ViewQuest> {
    p.quests
        .iter()
        .filter(|(_, q)| match q.status {
            QuestStatus::Active | QuestStatus::Completed | QuestStatus::Failed => true,
            QuestStatus::Inactive | QuestStatus::Hidden => false,
        })
        .map(|(id, q)| ViewQuest {
            quest: id.clone(),
            status: q.status,
            objectives: content
                .world
                .quests
                .get(id)
                .map(|def| {
                    def.objectives
                        .iter()
                        .map(|o| {
                            let progress = q.objectives.get(&o.id).copied().unwrap_or(0);
                            (o.id.clone(), progress, o.target)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}
