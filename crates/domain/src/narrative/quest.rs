//! [`QuestStatus`]: the statuses a quest moves through. Set by effects
//! ([`super::effect::Effect::Quest`]), kept in [`super::state`], read in expressions
//! (`quest.ID`) and saved. Also at `narrative::state::QuestStatus`.

use serde::{Deserialize, Serialize};

/// Quest status.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum QuestStatus {
    /// Not started.
    #[default]
    Inactive,
    /// In progress.
    Active,
    /// Done.
    Completed,
    /// Failed.
    Failed,
    /// Hidden from the quest log.
    Hidden,
}

impl QuestStatus {
    /// Name used in expressions.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestStatus::Inactive => "inactive",
            QuestStatus::Active => "active",
            QuestStatus::Completed => "completed",
            QuestStatus::Failed => "failed",
            QuestStatus::Hidden => "hidden",
        }
    }
}
