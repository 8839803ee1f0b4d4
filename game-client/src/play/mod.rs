//! The terminal scene player of `pixsim-client play`.
//!
//! [`Player`] (`player.rs`) is a pure state machine: server messages and input lines
//! go in, text to print and commands to send come out. It owns no clock: callers pass
//! their estimate of the server's world time (`now`, in world ms), which decides when
//! a choice is revealed and what time a reflex key press claims. Its views are made in
//! `render.rs`, the progression it tracks is [`Progress`] (`progress.rs`). [`run`]
//! (`terminal.rs`) drives it: REST login, scene choice, the game session, and one loop
//! over server messages, input lines, reveal deadlines and heartbeats, reconnecting and
//! resuming (join with `last_seq`) when the connection drops, with the world clock
//! estimate of `clock.rs`.

mod clock;
mod player;
mod progress;
mod render;
mod terminal;

pub use player::{Done, Player, Step};
pub use progress::Progress;
pub use render::{MENU_FOOTER, REFLEX_PROMPT};
pub use terminal::{PlayConfig, PlayError, run};
