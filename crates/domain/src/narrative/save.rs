//! Versioned session saves and their mapping onto (possibly changed) content.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::content::Content;
use super::expr::Value;
use super::rng::Rng;
use super::scene::NodeKind;
use super::state::{Progress, Vars, Visits};

/// Current save format version.
pub const SAVE_VERSION: u32 = 1;

/// A call-stack frame: the scene, the node (the current node for the top frame, the
/// calling node for the others) and the call arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Scene id.
    pub scene: String,
    /// Node id.
    pub node: String,
    /// Arguments bound by the caller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Value>,
}

/// What the session was waiting for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SavedWait {
    /// Choices were offered (edge ids).
    Choices {
        /// Offered edge ids.
        offered: Vec<String>,
    },
    /// Inside a mini-game: the current round restarts on resume with a fresh nonce.
    MiniGame {
        /// Current round (1-based).
        round: u32,
        /// Rounds hit so far.
        hits: u32,
    },
    /// A `steps` playback waits for the player's `continue` (the step is
    /// [`SavedPlayback::step`]).
    Continue,
}

/// The current node's media state: which of its media was picked on entry and where a
/// `steps` playback stands. Zero (the default, left out of a save) for most nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlayback {
    /// Index of the media shown (into the node's `media` list).
    #[serde(default)]
    pub media: u32,
    /// The step playing (0-based; the number of steps once all have played).
    #[serde(default)]
    pub step: u32,
}

impl SavedPlayback {
    /// True when both are zero.
    pub fn is_default(&self) -> bool {
        *self == SavedPlayback::default()
    }
}

/// A saved session. Times are relative (remaining/elapsed ms), so a save can be resumed
/// on any world at any time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSave {
    /// Format version ([`SAVE_VERSION`]).
    pub version: u32,
    /// [`Content::version`] at save time.
    pub content_version: String,
    /// PRNG state.
    pub rng: Rng,
    /// Call stack, bottom first; the last frame is the current position.
    pub stack: Vec<Frame>,
    /// Time spent in the current node (ms).
    pub elapsed_in_node_ms: i64,
    /// What the session was waiting for.
    pub wait: SavedWait,
    /// Variables.
    pub vars: Vars,
    /// Visit counts.
    pub visits: Visits,
    /// Progression.
    pub progress: Progress,
    /// Remaining edge cooldowns (ms) by `scene/edge`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cooldowns: BTreeMap<String, i64>,
    /// The current node's media state (absent in older saves: zero).
    #[serde(default, skip_serializing_if = "SavedPlayback::is_default")]
    pub playback: SavedPlayback,
}

/// Why a save cannot be resumed on the current content.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SaveError {
    /// Unknown format version.
    #[error("unsupported save version {found} (this server reads version {expected})")]
    Version {
        /// Found.
        found: u32,
        /// Expected.
        expected: u32,
    },
    /// The save cannot be mapped onto the current content.
    #[error("save incompatible with current content: {0}")]
    Incompatible(String),
    /// The save could not be decoded.
    #[error("malformed save: {0}")]
    Malformed(String),
}

/// Maps a save onto `content` in place, by scene, node, edge, variable, item and quest ids.
///
/// Returns notes about what was dropped or clamped (empty when the content is unchanged),
/// or a [`SaveError::Incompatible`] naming what cannot be mapped (a scene or node that no
/// longer exists, a call node that no longer calls the saved callee, a waiting node whose
/// kind changed). It never returns a state with no way forward.
pub fn map_save(save: &mut SessionSave, content: &Content) -> Result<Vec<String>, SaveError> {
    if save.version != SAVE_VERSION {
        return Err(SaveError::Version {
            found: save.version,
            expected: SAVE_VERSION,
        });
    }
    let mut notes = Vec::new();
    if save.content_version != content.version {
        notes.push(format!(
            "content changed since the save (version {} -> {}); state mapped by id",
            save.content_version, content.version
        ));
    }
    let top = map_stack(save, content, &mut notes)?;
    map_offered(save, content, top, &mut notes);
    map_progress(save, content, &mut notes);
    map_cooldowns(save, content, &mut notes);
    map_playback(save, content, top, &mut notes);
    Ok(notes)
}

/// The call stack: every frame's scene and node still exist, callers still call their
/// callee, the current node can resume the wait, arguments fit the parameters. Returns the
/// index of the top frame.
fn map_stack(
    save: &mut SessionSave,
    content: &Content,
    notes: &mut Vec<String>,
) -> Result<usize, SaveError> {
    let inc = |m: String| Err(SaveError::Incompatible(m));
    let Some(top) = save.stack.len().checked_sub(1) else {
        return inc("empty call stack".into());
    };
    for i in 0..save.stack.len() {
        let frame = &save.stack[i];
        let Some(scene) = content.scene(&frame.scene) else {
            return inc(format!("scene '{}' no longer exists", frame.scene));
        };
        let Some(node) = content.node(&frame.scene, &frame.node) else {
            return inc(format!(
                "scene '{}' no longer has node '{}'",
                frame.scene, frame.node
            ));
        };
        if i < top {
            let callee = &save.stack[i + 1].scene;
            if node.kind.callee() != Some(callee.as_str()) {
                return inc(format!(
                    "node '{}' in scene '{}' no longer calls scene '{callee}'",
                    frame.node, frame.scene
                ));
            }
        } else {
            if !resumes(&save.wait, &node.kind, save.playback.step) {
                return inc(format!(
                    "node '{}' in scene '{}' is now a {} node and cannot resume the saved wait",
                    frame.node,
                    frame.scene,
                    node.kind.name()
                ));
            }
        }
        let params = scene.params.clone();
        let frame = &mut save.stack[i];
        for (p, ty) in &params {
            match frame.args.get(p) {
                Some(v) if v.fits(ty) => {}
                _ => {
                    return inc(format!(
                        "scene '{}' now takes parameter '{p}' ({ty}) that the saved call did not bind",
                        frame.scene
                    ));
                }
            }
        }
        frame.args.retain(|k, _| {
            let keep = params.contains_key(k);
            if !keep {
                notes.push(format!("dropped argument '{k}' of scene '{}'", frame.scene));
            }
            keep
        });
    }
    Ok(top)
}

/// The offered choices that are still edges leaving the current node.
fn map_offered(save: &mut SessionSave, content: &Content, top: usize, notes: &mut Vec<String>) {
    let (cur_scene, cur_node) = (save.stack[top].scene.clone(), save.stack[top].node.clone());
    if let SavedWait::Choices { offered } = &mut save.wait {
        offered.retain(|e| {
            let keep = content
                .edge(&cur_scene, e)
                .is_some_and(|edge| edge.from == cur_node);
            if !keep {
                notes.push(format!("dropped offered choice '{e}'"));
            }
            keep
        });
    }
}

/// Variables, items, quests and stats that still exist (stats clamped to their bounds).
fn map_progress(save: &mut SessionSave, content: &Content, notes: &mut Vec<String>) {
    let w = &content.world;
    save.vars.0.retain(|k, v| {
        let keep = w.variables.get(k).is_some_and(|d| v.fits(&d.ty));
        if !keep {
            notes.push(format!("dropped variable '{k}'"));
        }
        keep
    });
    save.progress.items.retain(|k, _| {
        let keep = w.items.contains_key(k);
        if !keep {
            notes.push(format!("dropped item '{k}'"));
        }
        keep
    });
    save.progress.quests.retain(|k, q| {
        let Some(def) = w.quests.get(k) else {
            notes.push(format!("dropped quest '{k}'"));
            return false;
        };
        q.objectives
            .retain(|o, _| def.objectives.iter().any(|d| d.id == *o));
        true
    });
    let stats = std::mem::take(&mut save.progress.stats);
    for (key, v) in stats {
        let parts: Vec<&str> = key.splitn(3, '.').collect();
        let def = match parts.as_slice() {
            [s, e, a] => w
                .stats
                .get(*s)
                .filter(|d| d.has_entity(w, e))
                .and_then(|d| d.axes.get(*a)),
            _ => None,
        };
        match def {
            Some(d) => {
                let c = d.clamp(v);
                if c != v {
                    notes.push(format!("clamped stat '{key}' from {v} to {c}"));
                }
                if c != d.default {
                    save.progress.stats.insert(key, c);
                }
            }
            None => notes.push(format!("dropped stat '{key}'")),
        }
    }
    save.progress.level = w.xp.level(save.progress.xp);
}

/// Cooldowns of edges that still exist.
fn map_cooldowns(save: &mut SessionSave, content: &Content, notes: &mut Vec<String>) {
    save.cooldowns.retain(|k, _| {
        let keep = k
            .split_once('/')
            .is_some_and(|(s, e)| content.edge(s, e).is_some());
        if !keep {
            notes.push(format!("dropped cooldown '{k}'"));
        }
        keep
    });
}

/// The media index and step still within the current node's media and steps (else
/// the first media, and every step played).
fn map_playback(save: &mut SessionSave, content: &Content, top: usize, notes: &mut Vec<String>) {
    let frame = &save.stack[top];
    let Some(NodeKind::Media {
        media, playback, ..
    }) = content.node(&frame.scene, &frame.node).map(|n| &n.kind)
    else {
        save.playback = SavedPlayback::default();
        return;
    };
    let p = &mut save.playback;
    if p.media as usize >= media.len().max(1) {
        notes.push(format!(
            "media {} no longer exists; showing the first",
            p.media
        ));
        p.media = 0;
    }
    let steps = playback.steps().len() as u32;
    if p.step > steps {
        notes.push(format!(
            "step {} no longer exists; every step has played",
            p.step
        ));
        p.step = steps;
    }
    if save.wait == SavedWait::Continue && p.step >= steps {
        // Only reached when steps were removed: resume as a node whose steps have played.
        save.wait = SavedWait::Choices {
            offered: Vec::new(),
        };
    }
}

/// Whether a node of `kind` can resume `wait` with its steps playback at `step`: a
/// mini-game runs in a minigame node, or in a media node's step that names one.
/// Exhaustive over both, with no wildcard: a new node kind or wait does not build until
/// it decides here.
fn resumes(wait: &SavedWait, kind: &NodeKind, step: u32) -> bool {
    let (offers_choices, is_minigame, has_steps) = match kind {
        NodeKind::Media { playback, .. } => {
            let steps = playback.steps();
            let step_game = steps
                .get(step as usize)
                .is_some_and(|s| s.minigame.is_some());
            (true, step_game, !steps.is_empty())
        }
        NodeKind::Dialogue { .. } | NodeKind::Choice { .. } => (true, false, false),
        NodeKind::MiniGame(_) => (false, true, false),
        NodeKind::Condition {}
        | NodeKind::Action { .. }
        | NodeKind::Call { .. }
        | NodeKind::Return { .. }
        | NodeKind::End { .. } => (false, false, false),
    };
    match wait {
        SavedWait::Choices { .. } => offers_choices,
        SavedWait::MiniGame { .. } => is_minigame,
        // A node whose steps were removed resumes as a finished media node (map_playback).
        SavedWait::Continue => offers_choices || has_steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::narrative::MiniGameSpec;

    #[test]
    fn only_choice_nodes_resume_choices_and_only_minigames_resume_a_minigame() {
        let choices = SavedWait::Choices {
            offered: Vec::new(),
        };
        let choice_nodes = [
            NodeKind::Media {
                asset: None,
                clip: None,
                generate: None,
                branch: None,
                variant: None,
                auto: false,
                media: Vec::new(),
                select: Default::default(),
                pool: Vec::new(),
                playback: Default::default(),
                skippable: false,
                loopable: false,
                hotspots: Vec::new(),
            },
            NodeKind::Dialogue {
                lines: Vec::new(),
                auto: false,
            },
            NodeKind::Choice { prompt: None },
        ];
        for k in &choice_nodes {
            assert!(resumes(&choices, k, 0), "{}", k.name());
        }
        for k in [
            NodeKind::Condition {},
            NodeKind::Action {
                effects: Vec::new(),
            },
        ] {
            assert!(!resumes(&choices, &k, 0), "{}", k.name());
        }
        let minigame = SavedWait::MiniGame { round: 1, hits: 0 };
        for k in &choice_nodes {
            assert!(!resumes(&minigame, k, 0), "{}", k.name());
        }
    }

    #[test]
    fn a_media_node_resumes_a_minigame_only_at_a_step_that_runs_one() {
        use crate::narrative::media::{PlaybackSpec, StepSpec};
        let step = |game: Option<&str>| StepSpec {
            label: None,
            start_ms: 0,
            end_ms: 1000,
            minigame: game.map(|g| MiniGameSpec {
                game: g.into(),
                rounds: None,
                window_ms: None,
                need: None,
                stat: None,
                entity: None,
                axis: None,
                die: None,
                difficulty: None,
            }),
        };
        let media = NodeKind::Media {
            asset: Some("assets/a.mp4".into()),
            clip: None,
            generate: None,
            branch: None,
            variant: None,
            auto: false,
            media: Vec::new(),
            select: Default::default(),
            pool: Vec::new(),
            playback: PlaybackSpec::Steps {
                steps: vec![step(None), step(Some("reflex"))],
            },
            skippable: false,
            loopable: false,
            hotspots: Vec::new(),
        };
        let minigame = SavedWait::MiniGame { round: 1, hits: 0 };
        assert!(!resumes(&minigame, &media, 0));
        assert!(resumes(&minigame, &media, 1));
        assert!(!resumes(&minigame, &media, 2));
        assert!(resumes(&SavedWait::Continue, &media, 0));
    }
}
