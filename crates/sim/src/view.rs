//! A live session's state as a client renders it ([`SessionView`]): where it stands and
//! what that node shows, the choices offered, the open reflex round and the player's
//! progression. Read through [`crate::Sessions::view`] after a tick, so it reflects
//! exactly the events emitted up to then (the game sends it as the snapshot of a join).

use domain::narrative::{Content, Line, Progress, QuestStatus, Value, Vars};

use crate::components::{Phase, RoundPhase};
use crate::edges::cooldown_key;
use crate::nodes;
use crate::protocol::{Choice, Media};
use crate::resources::MediaLibrary;
use crate::save::SaveView;

/// A live session as a client renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The node the session stands at, as its `NodeEntered` presented it (with media
    /// generated since then); `None` while the session is starting.
    pub position: Option<ViewPosition>,
    /// The choices offered now, as `ChoicesOffered` gave them (empty when none).
    pub choices: Vec<Choice>,
    /// The open reflex round, as its `MiniGamePrompt` announced it.
    pub minigame: Option<OpenRound>,
    /// The player's progression.
    pub progression: ViewProgression,
}

/// The current node and what it shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewPosition {
    /// Scene.
    pub scene: String,
    /// Node.
    pub node: String,
    /// Node kind name.
    pub kind: &'static str,
    /// Media shown (an asset, or the spec still being generated).
    pub media: Option<Media>,
    /// Dialogue lines.
    pub lines: Vec<Line>,
    /// Choice prompt.
    pub prompt: Option<String>,
}

/// An open reflex round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRound {
    /// Game.
    pub game: String,
    /// Round (1-based).
    pub round: u32,
    /// Rounds in total.
    pub rounds: u32,
    /// Nonce to echo.
    pub nonce: u64,
    /// Window start (world ms).
    pub opens_at_ms: i64,
    /// Window end (world ms).
    pub closes_at_ms: i64,
}

/// A player's progression as a client shows it; each list sorted by its key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewProgression {
    /// Stat axis values that differ from their default: `(stat, entity, axis, value)`.
    pub stats: Vec<(String, String, String, i64)>,
    /// Items held (count above zero).
    pub items: Vec<(String, u32)>,
    /// Quests shown in a quest log (neither inactive nor hidden), with their objectives.
    pub quests: Vec<ViewQuest>,
    /// Every declared world variable with its current value (its initial value when
    /// never set, or set back to it).
    pub vars: Vec<(String, Value)>,
    /// XP total.
    pub xp: i64,
    /// Level.
    pub level: u32,
    /// Scenes unlocked by effects.
    pub unlocked: Vec<String>,
}

/// A quest in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewQuest {
    /// Quest id.
    pub quest: String,
    /// Status.
    pub status: QuestStatus,
    /// `(objective, progress, target)` in the quest's order.
    pub objectives: Vec<(String, u32, u32)>,
}

/// The view of one session at world time `now`.
pub(crate) fn build(
    v: &SaveView<'_>,
    content: &Content,
    media: &MediaLibrary,
    now: i64,
) -> SessionView {
    let started = match v.phase {
        Phase::Choosing | Phase::MiniGame => true,
        Phase::Starting | Phase::Ended => false,
    };
    let node = started
        .then(|| content.node(&v.pos.scene, &v.pos.node))
        .flatten();
    let position = node.map(|node| {
        let shown = nodes::shown(node, media);
        ViewPosition {
            scene: v.pos.scene.clone(),
            node: v.pos.node.clone(),
            kind: node.kind.name(),
            media: shown.media.map(|m| *m),
            lines: shown.lines,
            prompt: shown.prompt,
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
        Phase::Starting | Phase::MiniGame | Phase::Ended => false,
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
