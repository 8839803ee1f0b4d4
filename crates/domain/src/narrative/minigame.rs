//! The rules half of a mini-game: its id and the check of a node's parameters
//! ([`MiniGameRules`]), for the validator. The play half (what entering the node, a timer
//! and an input do) is `sim::MiniGame`, which extends this trait; the simulation's
//! registry (`sim::MiniGames`) hands its games' rules to the validator, so a game
//! plugged in there is known to validation too. [`builtin_rules`] are the rules of the
//! built-in games, for a validator given no registry.

use std::sync::Arc;

use super::expr::{Path, TypeEnv};
use super::scene::{MiniGameSpec, REFLEX_DEFAULT_ROUNDS};
use super::state::SceneTypes;

/// A mini-game's id and parameter rules.
pub trait MiniGameRules: Send + Sync {
    /// The id scenes name it by (`game = "..."`).
    fn id(&self) -> &str;
    /// What is wrong with a node's parameters, one message each (empty: valid). `env`
    /// types references to the world's variables and stats.
    fn check(&self, spec: &MiniGameSpec, env: &SceneTypes<'_>) -> Vec<String>;
}

/// The reflex game's id.
pub const REFLEX: &str = "reflex";
/// The skill check's id.
pub const SKILL_CHECK: &str = "skill_check";

/// The reflex game's rules: rounds, window and hits needed.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReflexRules;

impl MiniGameRules for ReflexRules {
    fn id(&self) -> &str {
        REFLEX
    }
    fn check(&self, spec: &MiniGameSpec, _: &SceneTypes<'_>) -> Vec<String> {
        let mut out = Vec::new();
        let rounds = spec.rounds.unwrap_or(REFLEX_DEFAULT_ROUNDS);
        if rounds == 0 {
            out.push("reflex: rounds must be at least 1".to_owned());
        }
        if spec.window_ms == Some(0) {
            out.push("reflex: window_ms must be positive".to_owned());
        }
        if let Some(need) = spec.need
            && (need == 0 || need > rounds)
        {
            out.push(format!("reflex: need must be in 1..={rounds}"));
        }
        out
    }
}

/// The skill check's rules: a stat axis the world declares, a difficulty, a die.
#[derive(Clone, Copy, Debug, Default)]
pub struct SkillCheckRules;

impl MiniGameRules for SkillCheckRules {
    fn id(&self) -> &str {
        SKILL_CHECK
    }
    fn check(&self, spec: &MiniGameSpec, env: &SceneTypes<'_>) -> Vec<String> {
        let mut out = Vec::new();
        match &spec.stat {
            Some(stat) => {
                let p = Path::Stat {
                    stat: stat.clone(),
                    entity: spec.entity.clone().unwrap_or_else(|| "player".into()),
                    axis: spec.axis.clone().unwrap_or_else(|| "value".into()),
                };
                if let Err(e) = env.path_type(&p) {
                    out.push(format!("skill_check: {e}"));
                }
            }
            None => out.push("skill_check: missing 'stat'".to_owned()),
        }
        if spec.difficulty.is_none() {
            out.push("skill_check: missing 'difficulty'".to_owned());
        }
        if spec.die == Some(0) {
            out.push("skill_check: die must have at least 1 face".to_owned());
        }
        out
    }
}

/// The built-in games' rules, by id.
pub fn builtin_rules() -> Vec<Arc<dyn MiniGameRules>> {
    vec![Arc::new(ReflexRules), Arc::new(SkillCheckRules)]
}
