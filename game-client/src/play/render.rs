//! The player's text: the views `pixsim-client play` prints (scene headings, menus,
//! media links, the scene list, mini-game and quest lines) are formatted here from
//! plain data, with no state of their own. The stats view is [`Progress::render`]
//! (`progress.rs`), next to the progression it shows. One-line notices
//! (`(reconnected)`...) stay next to the state change that prints them.
//!
//! [`Progress::render`]: super::Progress::render

use protocol::v2::{Choice, Media};

use crate::rest::SceneSummary;

/// The footer printed after every menu; the line to wait for when scripting.
pub const MENU_FOOTER: &str = "choose a number (s: stats, q: quit, leave: end the session)";
/// Printed when a reflex round opens.
pub const REFLEX_PROMPT: &str = "press Enter now!";

/// The answer to `h` / `help` / `?`.
pub(super) const HELP: &str = "a number takes that choice; Enter answers a reflex prompt; s \
                               shows stats and quests; q quits (the session is kept); leave \
                               ends the session";

/// The heading of a scene.
pub(super) fn scene_header(title: &str) -> String {
    format!("== {title} ==")
}

/// Whether `line` is a [`scene_header`].
pub(super) fn is_scene_header(line: &str) -> bool {
    line.starts_with("== ")
}

/// The line shown when the session ends.
pub(super) fn end_line(reason: &str) -> String {
    format!("=== the end: {reason} ===")
}

/// The menu of the `numbered` choices of `offer` (indices into it, numbered from 1).
pub(super) fn menu(offer: &[Choice], numbered: &[usize]) -> Vec<String> {
    let mut out = vec!["choices:".to_owned()];
    for (n, &i) in numbered.iter().enumerate() {
        if let Some(c) = offer.get(i) {
            out.push(format!("  {}) {}", n + 1, choice_label(c)));
        }
    }
    out.push(MENU_FOOTER.to_owned());
    out
}

/// The label of a choice (its edge when it has none).
pub(super) fn choice_label(c: &Choice) -> &str {
    c.label.as_deref().unwrap_or(&c.edge)
}

/// Where `media` can be seen: an asset's download link under `rest_base`, or what is
/// being generated.
pub(super) fn media_link(rest_base: &str, media: &Media) -> String {
    if media.url.starts_with('/') {
        format!("{rest_base}{}", media.url)
    } else {
        media.url.clone()
    }
}

/// The line of a node's media while it is being generated.
pub(super) fn media_pending_line() -> String {
    "[media] generating…".to_owned()
}

/// The line of a node's media.
pub(super) fn media_line(rest_base: &str, media: &Media) -> String {
    format!("[media] {}", media_link(rest_base, media))
}

/// The line of a media that became ready.
pub(super) fn media_ready_line(rest_base: &str, media: &Media) -> String {
    format!("[media ready] {}", media_link(rest_base, media))
}

/// The line of pending media's progress: its place in the queue, or how far it is.
pub(super) fn media_progress_line(progress: u8, queue_position: Option<u32>) -> String {
    match queue_position {
        Some(1) => "[media] queued: next to start".to_owned(),
        Some(p) => format!("[media] queued: place {p} in line"),
        None => format!("[media] generating… {progress}%"),
    }
}

/// The line of a reflex round's result.
pub(super) fn round_line(round: u32, hit: bool, reason: Option<&str>) -> String {
    match (hit, reason) {
        (true, _) => format!("[round {round}] hit!"),
        (false, Some(r)) => format!("[round {round}] miss: {r}"),
        (false, None) => format!("[round {round}] miss"),
    }
}

/// The line of a mini-game's result.
pub(super) fn result_line(game: &str, success: bool, score: i64, detail: &str) -> String {
    let outcome = if success { "success" } else { "failure" };
    format!("[{game}] {outcome} (score {score}): {detail}")
}

/// The line of an objective's progress.
pub(super) fn objective_line(
    quest: &str,
    objective: &str,
    progress: u32,
    target: u32,
    completed: bool,
) -> String {
    let mark = if completed { " ✓" } else { "" };
    format!("[objective] {quest}/{objective} {progress}/{target}{mark}")
}

/// The scene list of the scene picker.
pub(super) fn scene_list(scenes: &[SceneSummary]) -> Vec<String> {
    let mut text = vec!["scenes:".to_owned()];
    for (i, s) in scenes.iter().enumerate() {
        let mut tags = Vec::new();
        if s.start {
            tags.push("start");
        }
        if s.locked {
            tags.push("locked");
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", tags.join(", "))
        };
        text.push(format!("  {}) {} ({}){tags}", i + 1, s.title, s.id));
    }
    text.push("pick a scene by number (Enter: the start scene)".to_owned());
    text
}
