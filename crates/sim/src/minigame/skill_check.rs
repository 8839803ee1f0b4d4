//! The built-in skill check: a stat axis plus a die roll against a difficulty, resolved
//! when the node is entered.

use domain::narrative::MiniGameSpec;
use domain::narrative::minigame::{MiniGameRules, SKILL_CHECK, SkillCheckRules};
use domain::narrative::state::SceneTypes;

use super::{Input, MiniGame, Play, Turn};
use crate::protocol::{Event, Outcome};
use crate::resources::Timer;

/// The skill check (`game = "skill_check"`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SkillCheck;

impl MiniGameRules for SkillCheck {
    fn id(&self) -> &str {
        SKILL_CHECK
    }
    fn check(&self, spec: &MiniGameSpec, env: &SceneTypes<'_>) -> Vec<String> {
        SkillCheckRules.check(spec, env)
    }
}

impl MiniGame for SkillCheck {
    /// Rolls and reports at once.
    fn start(&self, play: &mut Play<'_, '_, '_, '_>, spec: &MiniGameSpec) -> Result<Turn, String> {
        let stat = spec.stat.clone().unwrap_or_default();
        let entity = spec.entity.clone().unwrap_or_else(|| "player".into());
        let axis = spec.axis.clone().unwrap_or_else(|| "value".into());
        let die = i64::from(spec.die.unwrap_or(20).max(1));
        let difficulty = spec.difficulty.unwrap_or(0);
        let value = play.stat(&stat, &entity, &axis)?;
        let roll = play.rng().range(1, die);
        let total = value.saturating_add(roll);
        let outcome = if total >= difficulty {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        play.emit(Event::MiniGameResult {
            game: SKILL_CHECK.into(),
            outcome,
            score: total,
            detail: format!(
                "{stat} {value} + d{die} roll {roll} = {total} vs difficulty {difficulty}"
            ),
        });
        Ok(Turn::Done(outcome))
    }

    /// Resolved on entry: it never schedules a timer.
    fn on_timer(&self, _: &mut Play<'_, '_, '_, '_>, _: Timer) -> Result<Turn, String> {
        Ok(Turn::Wait)
    }

    /// Resolved on entry: no input ever waits.
    fn on_input(&self, _: &mut Play<'_, '_, '_, '_>, _: Input) -> Result<Turn, String> {
        Ok(Turn::Wait)
    }
}
