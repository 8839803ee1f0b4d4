//! [`Player`]: the pure state machine of `pixsim-client play`. Server messages and
//! input lines go in; text to print, commands to send and the end come out as a
//! [`Step`]. It owns no clock: callers pass their estimate of the server's world
//! time (`now`, in world ms), which decides when a choice is revealed and what time a
//! reflex key press claims. Its text comes from [`super::render`].

use std::collections::HashMap;

use protocol::v2::{
    Change, Choice, ErrorCode, EventBody, GameCommand, GameEvent, Media, ServerMessage,
};
use uuid::Uuid;

use super::progress::Progress;
use super::render::{self, REFLEX_PROMPT};
use crate::Joined;
use crate::rest::SceneSummary;

/// What [`Player`] wants done after one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Lines to print, in order.
    pub text: Vec<String>,
    /// A command to send: request id and command.
    pub command: Option<(u64, GameCommand)>,
    /// The player is finished.
    pub done: Option<Done>,
}

impl Step {
    fn say(&mut self, line: impl Into<String>) {
        self.text.push(line.into());
    }
}

/// Why the player stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// The session ended, with this reason (`success`, `failure`, `left`...).
    Ended(String),
    /// The user quit; the session is kept and can be resumed.
    Quit,
}

/// An open reflex round.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Prompt {
    round: u32,
    nonce: u64,
}

/// The player's state machine. See the module documentation.
#[derive(Debug)]
pub struct Player {
    rest_base: String,
    titles: HashMap<String, String>,
    session: Option<Uuid>,
    last_seq: Option<u64>,
    scene: Option<String>,
    node: Option<String>,
    /// The rendering of the last node that showed something.
    view: Vec<String>,
    /// After `Resumed` at the node already shown: its re-presentation is not
    /// printed again.
    resumed_at: Option<(String, String)>,
    /// The seqs a reconnect missed, rendered from the snapshot: their resent events
    /// are not replayed, but a `Resumed` among them is still told.
    missed: std::ops::Range<u64>,
    offer: Vec<Choice>,
    /// Indices into `offer`, in the order their numbers were given (1-based).
    numbered: Vec<usize>,
    prompt: Option<Prompt>,
    /// The command in flight: request id.
    pending: Option<u64>,
    next_request: u64,
    progress: Progress,
    ended: Option<String>,
}

impl Player {
    /// A player whose asset links point at `rest_base`; `scenes` gives titles.
    pub fn new(rest_base: &str, scenes: &[SceneSummary]) -> Player {
        Player {
            rest_base: rest_base.trim_end_matches('/').to_owned(),
            titles: scenes
                .iter()
                .map(|s| (s.id.clone(), s.title.clone()))
                .collect(),
            session: None,
            last_seq: None,
            scene: None,
            node: None,
            view: Vec::new(),
            resumed_at: None,
            missed: 0..0,
            offer: Vec::new(),
            numbered: Vec::new(),
            prompt: None,
            pending: None,
            next_request: 1,
            progress: Progress::default(),
            ended: None,
        }
    }

    /// The session, once attached.
    pub fn session(&self) -> Option<Uuid> {
        self.session
    }

    /// The last event seq received (for `JoinSession`).
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Progression so far.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The session's end reason, once it ended.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// The connection is in the session: a new one, an existing one joined afresh,
    /// or the same one again after a reconnect (`reconnect`). Whatever this player has
    /// not seen is rendered from the join's snapshot, not replayed: the events the
    /// server may resend below `next_seq` are then dropped as seen.
    pub fn attach(&mut self, joined: &Joined, reconnect: bool) -> Step {
        let mut step = Step::default();
        let id = joined.session_id;
        if reconnect {
            step.say("(reconnected)");
            if self.pending.take().is_some() {
                step.say("(your last input may not have reached the server)");
            }
        } else if joined.next_seq > 0 {
            step.say(format!("resuming session {id}"));
        } else {
            step.say(format!(
                "session {id} (resume it later with --session {id})"
            ));
        }
        self.session = Some(id);
        let seen = self.last_seq.map_or(0, |s| s + 1);
        if joined.next_seq > seen {
            if reconnect {
                step.say("(the story went on meanwhile)");
                self.missed = seen..joined.next_seq;
            }
            self.restore(joined);
            step.text.extend(self.situation(None));
            if let Some(reason) = &self.ended {
                step.done = Some(Done::Ended(reason.clone()));
            }
        }
        step
    }

    /// Takes the state of a join's snapshot: position, choices, open round,
    /// progression and end, as of `next_seq`.
    fn restore(&mut self, joined: &Joined) {
        let s = &joined.snapshot;
        self.last_seq = joined.next_seq.checked_sub(1);
        self.pending = None;
        self.resumed_at = None;
        self.clear_choices();
        self.view.clear();
        self.scene = None;
        self.node = None;
        if let Some(p) = &s.position {
            let media = match &p.media {
                Some(m) => Some(render::media_line(&self.rest_base, m)),
                None => p.media_pending.then(render::media_pending_line),
            };
            self.node_view(&p.scene, media, &p.lines, p.prompt.as_deref());
            self.scene = Some(p.scene.clone());
            self.node = Some(p.node.clone());
        }
        self.offer = s.choices.clone();
        self.prompt = s.minigame.as_ref().map(|m| Prompt {
            round: m.round,
            nonce: m.nonce,
        });
        self.progress = Progress::from_view(&s.progression);
        self.ended = s
            .ended
            .clone()
            .or_else(|| joined.ended.then(|| "ended".to_owned()));
    }

    /// The connection dropped (`why`); the caller reconnects.
    pub fn connection_lost(&mut self, why: &str) -> Step {
        let mut step = Step::default();
        step.say(format!("(connection lost: {why}; reconnecting…)"));
        step
    }

    /// One server message; `now` is the estimated world time (ms), if known.
    pub fn on_message(&mut self, msg: ServerMessage, now: Option<i64>) -> Step {
        let mut step = Step::default();
        match msg {
            ServerMessage::Event { seq, event, .. } => return self.on_seq_event(seq, event, now),
            ServerMessage::Ack { request_id, .. } => {
                if self.pending == Some(request_id) {
                    self.pending = None;
                }
            }
            ServerMessage::Rejected {
                request_id,
                code,
                message,
            } => {
                let mine = self.pending == Some(request_id);
                if mine {
                    self.pending = None;
                }
                match code.as_str() {
                    "not_revealed" => step.say("(that choice is not available yet)"),
                    _ => step.say(format!("(not accepted: {message})")),
                }
                // The choices still stand: show them again, with any revealed meanwhile.
                if mine && !self.offer.is_empty() {
                    self.reveal(now);
                    step.text.extend(self.menu());
                }
            }
            ServerMessage::Error {
                code: ErrorCode::SessionTakenOver,
                ..
            } => {
                step.say("(another connection took this session over; it is kept there)");
                step.done = Some(Done::Quit);
            }
            ServerMessage::Error { code, message } => {
                step.say(format!("(server error {code:?}: {message})"));
            }
            // Connection-level traffic: nothing for the player.
            ServerMessage::Welcome { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::Authenticated { .. }
            | ServerMessage::SessionJoined { .. }
            | ServerMessage::Heartbeat { .. } => {}
        }
        step
    }

    /// Event `seq`: dropped when already seen (a resend the snapshot covered, or a
    /// replay overlap), shown otherwise.
    fn on_seq_event(&mut self, seq: u64, event: EventBody, now: Option<i64>) -> Step {
        let mut step = Step::default();
        if self.last_seq.is_some_and(|last| seq <= last) {
            // Already seen (never shown twice), or missed and shown by the snapshot:
            // the server's restart meanwhile is still worth telling, once.
            if self.missed.contains(&seq)
                && let Some(GameEvent::Resumed { scene, node, notes }) = event.known()
            {
                say_resumed(scene, node, notes, &mut step);
                self.missed = seq + 1..self.missed.end;
            }
            return step;
        }
        self.last_seq = Some(seq);
        // An event of a newer server is skipped (its seq still counts).
        if let EventBody::Known(event) = event {
            self.on_event(event, now, &mut step);
        }
        step
    }

    /// The whole current situation: last node shown, menu or prompt, or the end.
    fn situation(&mut self, now: Option<i64>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(scene) = &self.scene
            && !self
                .view
                .first()
                .is_some_and(|l| render::is_scene_header(l))
        {
            out.push(render::scene_header(&self.title(scene)));
        }
        out.extend(self.view.iter().cloned());
        if let Some(reason) = &self.ended {
            out.push(render::end_line(reason));
            return out;
        }
        if self.prompt.is_some() {
            out.push(format!("[reflex] {REFLEX_PROMPT}"));
        }
        self.numbered.clear();
        self.reveal(now);
        if !self.numbered.is_empty() {
            out.extend(self.menu());
        }
        out
    }

    fn on_event(&mut self, event: GameEvent, now: Option<i64>, step: &mut Step) {
        match event {
            GameEvent::SessionStarted { scene, .. } => {
                step.say(render::scene_header(&self.title(&scene)));
                self.scene = Some(scene);
            }
            GameEvent::Resumed { scene, node, notes } => self.resumed(scene, node, &notes, step),
            GameEvent::NodeEntered {
                scene,
                node,
                media,
                media_pending,
                lines,
                prompt,
                ..
            } => {
                let media = match media {
                    Some(m) => Some(render::media_line(&self.rest_base, &m)),
                    None => media_pending.then(render::media_pending_line),
                };
                self.enter_node(scene, node, media, &lines, prompt.as_deref(), step);
            }
            GameEvent::MediaReady { scene, node, media } => {
                self.media_ready(&scene, &node, &media, step);
            }
            GameEvent::MediaProgress {
                scene,
                node,
                progress,
                queue_position,
                ..
            } => {
                if self.scene.as_deref() == Some(scene.as_str())
                    && self.node.as_deref() == Some(node.as_str())
                {
                    step.say(render::media_progress_line(progress, queue_position));
                }
            }
            GameEvent::ChoicesOffered { choices, .. } => self.offered(choices, now, step),
            GameEvent::StateDelta { changes } => {
                for c in &changes {
                    self.progress.apply(c);
                    if let Change::Item { item, count } = c {
                        step.say(format!("[item] {item} ×{count}"));
                    }
                }
            }
            GameEvent::MiniGamePrompt {
                game,
                round,
                rounds,
                nonce,
                ..
            } => {
                self.pending = None;
                self.prompt = Some(Prompt { round, nonce });
                step.say(format!("[{game} {round}/{rounds}] {REFLEX_PROMPT}"));
            }
            GameEvent::MiniGameRound { round, hit, reason } => {
                if self.prompt.as_ref().is_some_and(|p| p.round == round) {
                    self.prompt = None;
                }
                step.say(render::round_line(round, hit, reason.as_deref()));
            }
            GameEvent::MiniGameResult {
                game,
                success,
                score,
                detail,
            } => {
                self.prompt = None;
                step.say(render::result_line(&game, success, score, &detail));
            }
            GameEvent::QuestUpdated { .. }
            | GameEvent::ObjectiveUpdated { .. }
            | GameEvent::LevelUp { .. }
            | GameEvent::SceneUnlocked { .. } => self.on_progress_event(event, step),
            GameEvent::PlaybackStep { step: n, .. } => {
                step.say(format!("[playback] step {}", n + 1));
            }
            GameEvent::SessionEnded { reason } => {
                self.clear_choices();
                step.say(render::end_line(&reason));
                self.ended = Some(reason.clone());
                step.done = Some(Done::Ended(reason));
            }
            GameEvent::Error {
                command,
                code,
                message,
            } => {
                step.say(format!("(error in {command}: {code}: {message})"));
            }
        }
    }

    /// The server resumed the session (after a restart) at `scene`/`node`.
    fn resumed(&mut self, scene: String, node: String, notes: &[String], step: &mut Step) {
        say_resumed(&scene, &node, notes, step);
        let same = self.scene.as_deref() == Some(scene.as_str())
            && self.node.as_deref() == Some(node.as_str());
        self.resumed_at = same.then_some((scene, node));
        self.clear_choices();
    }

    /// The session is at `scene`/`node`: shown unless it is the node a resume
    /// re-presents.
    fn enter_node(
        &mut self,
        scene: String,
        node: String,
        media: Option<String>,
        lines: &[protocol::v2::Line],
        prompt: Option<&str>,
        step: &mut Step,
    ) {
        self.clear_choices();
        let again = self
            .resumed_at
            .take()
            .is_some_and(|(s, n)| s == scene && n == node);
        if !again {
            let view = self.node_view(&scene, media, lines, prompt);
            step.text.extend(view);
        }
        self.scene = Some(scene);
        self.node = Some(node);
    }

    /// A generated media of `scene`/`node` is ready: shown if the player is still there.
    fn media_ready(&mut self, scene: &str, node: &str, media: &Media, step: &mut Step) {
        if self.scene.as_deref() == Some(scene) && self.node.as_deref() == Some(node) {
            let line = render::media_ready_line(&self.rest_base, media);
            self.view.push(line.clone());
            step.say(line);
        }
    }

    /// A new menu: whatever was in flight has had its effect (its answer may still be
    /// on the way), and the numbers now refer to this menu.
    fn offered(&mut self, choices: Vec<Choice>, now: Option<i64>, step: &mut Step) {
        self.pending = None;
        self.offer = choices;
        self.numbered.clear();
        if self.reveal(now) {
            step.text.extend(self.menu());
        }
    }

    /// No choice, no reflex prompt open.
    fn clear_choices(&mut self) {
        self.offer.clear();
        self.numbered.clear();
        self.prompt = None;
    }

    /// A node's text (heading when the scene changes, media, lines, prompt); kept as
    /// the view shown again on a resume when it shows anything.
    fn node_view(
        &mut self,
        scene: &str,
        media: Option<String>,
        lines: &[protocol::v2::Line],
        prompt: Option<&str>,
    ) -> Vec<String> {
        let mut view = Vec::new();
        if self.scene.as_deref() != Some(scene) {
            view.push(render::scene_header(&self.title(scene)));
        }
        let shows_media = media.is_some();
        view.extend(media);
        for l in lines {
            view.push(format!("{}: {}", l.speaker, l.text));
        }
        if let Some(p) = prompt {
            view.push(p.to_owned());
        }
        if shows_media || !lines.is_empty() || prompt.is_some() {
            self.view.clone_from(&view);
        }
        view
    }

    /// Quests, objectives, levels and unlocks: shown, and kept in [`Progress`].
    fn on_progress_event(&mut self, event: GameEvent, step: &mut Step) {
        match event {
            GameEvent::QuestUpdated { quest, status } => {
                step.say(format!("[quest] {quest}: {status}"));
                self.progress.quests.insert(quest, status);
            }
            GameEvent::ObjectiveUpdated {
                quest,
                objective,
                progress,
                target,
                completed,
            } => {
                step.say(render::objective_line(
                    &quest, &objective, progress, target, completed,
                ));
                self.progress
                    .objectives
                    .insert((quest, objective), (progress, target, completed));
            }
            GameEvent::LevelUp { level, xp } => {
                step.say(format!("[level up] level {level} (xp {xp})"));
                self.progress.level = Some(level);
                self.progress.xp = xp;
            }
            GameEvent::SceneUnlocked { scene } => {
                step.say(format!("[unlocked] {}", self.title(&scene)));
                self.progress.unlock(&scene);
            }
            GameEvent::SessionStarted { .. }
            | GameEvent::Resumed { .. }
            | GameEvent::NodeEntered { .. }
            | GameEvent::PlaybackStep { .. }
            | GameEvent::MediaReady { .. }
            | GameEvent::MediaProgress { .. }
            | GameEvent::ChoicesOffered { .. }
            | GameEvent::StateDelta { .. }
            | GameEvent::MiniGamePrompt { .. }
            | GameEvent::MiniGameRound { .. }
            | GameEvent::MiniGameResult { .. }
            | GameEvent::SessionEnded { .. }
            | GameEvent::Error { .. } => {}
        }
    }

    fn title(&self, scene: &str) -> String {
        self.titles
            .get(scene)
            .cloned()
            .unwrap_or_else(|| scene.to_owned())
    }

    /// Numbers the offered choices revealed by `now` (all when the time is unknown);
    /// true when a new one got a number.
    fn reveal(&mut self, now: Option<i64>) -> bool {
        let mut any = false;
        for (i, c) in self.offer.iter().enumerate() {
            let due = now.is_none_or(|t| c.available_at_ms <= t);
            if due && !self.numbered.contains(&i) {
                self.numbered.push(i);
                any = true;
            }
        }
        any
    }

    /// World time of the next reveal, if a choice is still hidden. None while a
    /// command is in flight: a menu printed then could be answered after it is gone.
    pub fn next_reveal(&self) -> Option<i64> {
        if self.pending.is_some() {
            return None;
        }
        self.offer
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.numbered.contains(i))
            .map(|(_, c)| c.available_at_ms)
            .min()
    }

    /// The world time is now `now`: shows choices revealed since.
    pub fn on_time(&mut self, now: i64) -> Step {
        let mut step = Step::default();
        if self.pending.is_none() && self.reveal(Some(now)) {
            step.text.extend(self.menu());
        }
        step
    }

    fn menu(&self) -> Vec<String> {
        render::menu(&self.offer, &self.numbered)
    }

    fn request(&mut self, command: GameCommand, step: &mut Step) {
        let id = self.next_request;
        self.next_request += 1;
        self.pending = Some(id);
        step.command = Some((id, command));
    }

    /// One input line. `stamp` is the world time (ms) the line counts as typed at:
    /// the claimed press time of a reflex input.
    pub fn on_input(&mut self, line: &str, stamp: i64) -> Step {
        let mut step = Step::default();
        let input = line.trim();
        match input.to_ascii_lowercase().as_str() {
            "s" | "stats" => {
                step.text = self.progress.render();
                return step;
            }
            "q" | "quit" => {
                if let Some(id) = self.session {
                    step.say(format!(
                        "bye: the session is kept; resume it with --session {id}"
                    ));
                }
                step.done = Some(Done::Quit);
                return step;
            }
            "h" | "help" | "?" => {
                step.say(render::HELP);
                return step;
            }
            _ => {}
        }
        if self.ended.is_some() {
            step.say("(the session has ended)");
            return step;
        }
        if input.eq_ignore_ascii_case("leave") {
            step.say("> leave");
            self.request(GameCommand::Leave, &mut step);
            return step;
        }
        // During a reflex round, Enter (any line) is the key press.
        if let Some(p) = self.prompt.take() {
            self.request(
                GameCommand::MiniGameInput {
                    round: p.round,
                    nonce: p.nonce,
                    client_time_ms: stamp,
                },
                &mut step,
            );
            return step;
        }
        if input.is_empty() {
            if !self.numbered.is_empty() {
                step.text = self.menu();
            }
            return step;
        }
        let Ok(n) = input.parse::<usize>() else {
            step.say(format!("(unknown input {input:?}; h for help)"));
            return step;
        };
        if self.pending.is_some() {
            step.say("(still waiting for the server's answer to your last choice)");
            return step;
        }
        match n
            .checked_sub(1)
            .and_then(|k| self.numbered.get(k))
            .and_then(|&i| self.offer.get(i))
        {
            Some(c) => {
                let edge = c.edge.clone();
                step.say(format!("> {}", render::choice_label(c)));
                self.request(GameCommand::Choose { edge }, &mut step);
            }
            None if self.numbered.is_empty() => step.say("(no choice to make right now)"),
            None => step.say(format!("(no choice {n}: 1-{})", self.numbered.len())),
        }
        step
    }
}

/// Tells that the server resumed the session (after a restart) at `scene`/`node`.
fn say_resumed(scene: &str, node: &str, notes: &[String], step: &mut Step) {
    step.say(format!(
        "(the server resumed the session at {scene}/{node})"
    ));
    for n in notes {
        step.say(format!("(note: {n})"));
    }
}

#[cfg(test)]
mod tests;
