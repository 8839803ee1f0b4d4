//! Narrative definitions: scenes, nodes, edges, expressions, effects, progression.
//!
//! Pure data and rules, no I/O:
//! - [`scene`]: the scene graph format (`scenes/*.toml`),
//! - [`world`]: the world config (`scenes/world.toml`): variables, stats, XP, items, quests,
//! - [`expr`]: the typed condition language (parser, type checker, evaluator),
//! - [`effect`]: effects, applied by [`state::Ctx::apply`],
//! - `quest`: [`QuestStatus`], set by effects and kept in the state,
//! - [`ident`]: the identifier pattern every id follows,
//! - [`media`]: a media node's media features (several media, playback, hotspots) and
//!   node groups,
//! - [`minigame`]: a mini-game's parameter rules ([`minigame::MiniGameRules`]),
//! - [`state`]: per-session state (sparse, defaults come from the world config),
//! - [`content`]: an indexed content set,
//! - [`save`]: the versioned save format and its mapping onto changed content,
//! - [`save_bin`]: the saves' compact binary form (for the game state log),
//! - [`rng`]: the deterministic per-session PRNG,
//! - `schema` (feature `schema`): the JSON Schemas of the content format.

pub mod content;
pub mod effect;
pub mod expr;
pub mod ident;
pub mod media;
pub mod minigame;
mod quest;
pub mod rng;
pub mod save;
pub mod save_bin;
pub mod scene;
#[cfg(feature = "schema")]
pub mod schema;
pub mod state;
pub mod world;

pub use content::Content;
pub use effect::{Effect, ValueSrc};
pub use expr::{Expr, ExprText, Type, Value};
pub use rng::Rng;
pub use save::{Frame, SAVE_VERSION, SaveError, SavedPlayback, SavedWait, SessionSave};
pub use scene::{Edge, EndOutcome, Line, MiniGameSpec, Node, NodeKind, Scene};
pub use state::{Change, Ctx, Progress, QuestStatus, Vars, Visits};
pub use world::WorldConfig;
