//! The terminal scene player of `pixsim-client play`.
//!
//! [`Player`] is a pure state machine: server messages and input lines go in, text
//! to print and commands to send come out. It owns no clock: callers pass their
//! estimate of the server's world time (`now`, in world ms), which decides when a
//! choice is revealed and what time a reflex key press claims. [`run`] drives it:
//! REST login, scene choice, the QUIC session, and one loop over server messages,
//! input lines, reveal deadlines and heartbeats, reconnecting and resuming (join with
//! `last_seq`) when the connection drops.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::v1::{Change, Choice, GameCommand, GameEvent, Media, ServerMessage};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::rest::{Rest, RestError, SceneSummary};
use crate::{Client, ClientError, ConnectOptions, Joined, TimeSync, Trust};

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

/// Progression as seen through the session's events: shown by `s` / `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// `stat.entity.axis` → value.
    pub stats: BTreeMap<String, i64>,
    /// Item → count.
    pub items: BTreeMap<String, u32>,
    /// Variable → value (as text).
    pub vars: BTreeMap<String, String>,
    /// Quest → status.
    pub quests: BTreeMap<String, String>,
    /// (quest, objective) → (progress, target, completed).
    pub objectives: BTreeMap<(String, String), (u32, u32, bool)>,
    /// XP total.
    pub xp: i64,
    /// Level, once one was reported.
    pub level: Option<u32>,
    /// Unlocked scenes.
    pub unlocked: Vec<String>,
}

impl Progress {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Var { name, value } => {
                self.vars.insert(name.clone(), value.clone());
            }
            Change::Stat {
                stat,
                entity,
                axis,
                value,
            } => {
                self.stats.insert(format!("{stat}.{entity}.{axis}"), *value);
            }
            Change::Item { item, count } => {
                if *count == 0 {
                    self.items.remove(item);
                } else {
                    self.items.insert(item.clone(), *count);
                }
            }
            Change::Quest { quest, status } => {
                self.quests.insert(quest.clone(), status.clone());
            }
            Change::Objective {
                quest,
                objective,
                progress,
                target,
            } => {
                self.objectives.insert(
                    (quest.clone(), objective.clone()),
                    (*progress, *target, progress >= target),
                );
            }
            Change::Xp { xp } => self.xp = *xp,
            Change::Level { level } => self.level = Some(*level),
            Change::Unlocked { scene } => self.unlock(scene),
        }
    }

    fn unlock(&mut self, scene: &str) {
        if !self.unlocked.iter().any(|s| s == scene) {
            self.unlocked.push(scene.to_owned());
        }
    }

    /// The stats view.
    pub fn render(&self) -> Vec<String> {
        let mut out = vec!["── stats ──".to_owned()];
        let level = self.level.map_or("-".to_owned(), |l| l.to_string());
        out.push(format!("level {level} · xp {}", self.xp));
        for (k, v) in &self.stats {
            out.push(format!("  {k} = {v}"));
        }
        if !self.items.is_empty() {
            let items: Vec<String> = self
                .items
                .iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect();
            out.push(format!("items: {}", items.join(", ")));
        }
        for (quest, status) in &self.quests {
            out.push(format!("quest {quest}: {status}"));
            for ((q, objective), (progress, target, done)) in &self.objectives {
                if q == quest {
                    let mark = if *done { " ✓" } else { "" };
                    out.push(format!("  {objective} {progress}/{target}{mark}"));
                }
            }
        }
        if !self.vars.is_empty() {
            let vars: Vec<String> = self.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(format!("variables: {}", vars.join(", ")));
        }
        if !self.unlocked.is_empty() {
            out.push(format!("unlocked scenes: {}", self.unlocked.join(", ")));
        }
        out
    }
}

/// The footer printed after every menu; the line to wait for when scripting.
pub const MENU_FOOTER: &str = "choose a number (s: stats, q: quit, leave: end the session)";
/// Printed when a reflex round opens.
pub const REFLEX_PROMPT: &str = "press Enter now!";

/// The player's state machine. See the module documentation.
#[derive(Debug)]
pub struct Player {
    rest_base: String,
    titles: HashMap<String, String>,
    session: Option<Uuid>,
    last_seq: Option<u64>,
    /// Events below this seq are history (an existing session joined afresh): they
    /// update the state silently, and the current situation is shown after the last.
    quiet_until: u64,
    scene: Option<String>,
    node: Option<String>,
    /// The rendering of the last node that showed something.
    view: Vec<String>,
    /// After `Resumed` at the node already shown: its re-presentation is not
    /// printed again.
    resumed_at: Option<(String, String)>,
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
            quiet_until: 0,
            scene: None,
            node: None,
            view: Vec::new(),
            resumed_at: None,
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
    /// or the same one again after a reconnect (`reconnect`).
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
            self.quiet_until = joined.next_seq;
        } else {
            step.say(format!(
                "session {id} (resume it later with --session {id})"
            ));
        }
        self.session = Some(id);
        step
    }

    /// The connection dropped (`why`); the caller reconnects.
    pub fn connection_lost(&mut self, why: &str) -> Step {
        let mut step = Step::default();
        step.say(format!("(connection lost: {why}; reconnecting…)"));
        step
    }

    fn quiet(&self) -> bool {
        self.last_seq.map_or(0, |s| s + 1) < self.quiet_until
    }

    /// One server message; `now` is the estimated world time (ms), if known.
    pub fn on_message(&mut self, msg: ServerMessage, now: Option<i64>) -> Step {
        let mut step = Step::default();
        match msg {
            ServerMessage::Event { seq, event, .. } => {
                if self.last_seq.is_some_and(|last| seq <= last) {
                    return step; // already seen (a replay overlap): never shown twice
                }
                let quiet = seq + 1 < self.quiet_until;
                self.last_seq = Some(seq);
                let mut text = Step::default();
                self.on_event(event, now, &mut text);
                if quiet {
                    step.done = text.done;
                } else if seq + 1 == self.quiet_until {
                    // The last event of the history: show where the story stands.
                    self.quiet_until = 0;
                    step.text.extend(self.situation(now));
                    step.done = text.done;
                } else {
                    step = text;
                }
            }
            ServerMessage::Ack { request_id, .. } if self.pending == Some(request_id) => {
                self.pending = None;
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
            ServerMessage::Error { code, message } => {
                step.say(format!("(server error {code:?}: {message})"));
            }
            _ => {}
        }
        step
    }

    /// The whole current situation: last node shown, menu or prompt, or the end.
    fn situation(&mut self, now: Option<i64>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(scene) = &self.scene
            && !self.view.first().is_some_and(|l| l.starts_with("== "))
        {
            out.push(format!("== {} ==", self.title(scene)));
        }
        out.extend(self.view.iter().cloned());
        if let Some(reason) = &self.ended {
            out.push(end_line(reason));
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
                step.say(format!("== {} ==", self.title(&scene)));
                self.scene = Some(scene);
            }
            GameEvent::Resumed { scene, node, notes } => {
                step.say(format!(
                    "(the server resumed the session at {scene}/{node})"
                ));
                for n in notes {
                    step.say(format!("(note: {n})"));
                }
                let same = self.scene.as_deref() == Some(scene.as_str())
                    && self.node.as_deref() == Some(node.as_str());
                self.resumed_at = same.then(|| (scene.clone(), node.clone()));
                self.prompt = None;
                self.offer.clear();
                self.numbered.clear();
            }
            GameEvent::NodeEntered {
                scene,
                node,
                media,
                lines,
                prompt,
                ..
            } => {
                self.offer.clear();
                self.numbered.clear();
                self.prompt = None;
                let again = self
                    .resumed_at
                    .take()
                    .is_some_and(|(s, n)| s == scene && n == node);
                if !again {
                    let mut view = Vec::new();
                    if self.scene.as_deref() != Some(scene.as_str()) {
                        view.push(format!("== {} ==", self.title(&scene)));
                    }
                    if let Some(m) = &media {
                        view.push(self.media_line(m));
                    }
                    for l in &lines {
                        view.push(format!("{}: {}", l.speaker, l.text));
                    }
                    if let Some(p) = &prompt {
                        view.push(p.clone());
                    }
                    if media.is_some() || !lines.is_empty() || prompt.is_some() {
                        self.view.clone_from(&view);
                    }
                    step.text.extend(view);
                }
                self.scene = Some(scene);
                self.node = Some(node);
            }
            GameEvent::MediaReady { scene, node, media } => {
                if self.scene.as_deref() == Some(scene.as_str())
                    && self.node.as_deref() == Some(node.as_str())
                {
                    let line = format!("[media ready] {}", self.media_link(&media));
                    self.view.push(line.clone());
                    step.say(line);
                }
            }
            GameEvent::ChoicesOffered { choices, .. } => {
                // A new menu: whatever was in flight has had its effect (its answer
                // may still be on the way), and the numbers now refer to this menu.
                self.pending = None;
                self.offer = choices;
                self.numbered.clear();
                if self.reveal(now) {
                    step.text.extend(self.menu());
                }
            }
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
                match (hit, reason) {
                    (true, _) => step.say(format!("[round {round}] hit!")),
                    (false, Some(r)) => step.say(format!("[round {round}] miss: {r}")),
                    (false, None) => step.say(format!("[round {round}] miss")),
                }
            }
            GameEvent::MiniGameResult {
                game,
                success,
                score,
                detail,
            } => {
                self.prompt = None;
                let outcome = if success { "success" } else { "failure" };
                step.say(format!("[{game}] {outcome} (score {score}): {detail}"));
            }
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
                let mark = if completed { " ✓" } else { "" };
                step.say(format!(
                    "[objective] {quest}/{objective} {progress}/{target}{mark}"
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
            GameEvent::SessionEnded { reason } => {
                self.offer.clear();
                self.numbered.clear();
                self.prompt = None;
                step.say(end_line(&reason));
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

    fn title(&self, scene: &str) -> String {
        self.titles
            .get(scene)
            .cloned()
            .unwrap_or_else(|| scene.to_owned())
    }

    fn media_link(&self, media: &Media) -> String {
        match media {
            Media::Asset { asset } => match Uuid::try_parse(asset) {
                Ok(id) => format!("{}/api/v1/assets/{id}/file", self.rest_base),
                Err(_) => asset.clone(),
            },
            Media::Generate {
                operation, prompt, ..
            } => format!("generating… ({operation}: {prompt})"),
        }
    }

    fn media_line(&self, media: &Media) -> String {
        format!("[media] {}", self.media_link(media))
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
        if !self.quiet() && self.pending.is_none() && self.reveal(Some(now)) {
            step.text.extend(self.menu());
        }
        step
    }

    fn menu(&self) -> Vec<String> {
        let mut out = vec!["choices:".to_owned()];
        for (n, &i) in self.numbered.iter().enumerate() {
            if let Some(c) = self.offer.get(i) {
                let label = c.label.as_deref().unwrap_or(&c.edge);
                out.push(format!("  {}) {label}", n + 1));
            }
        }
        out.push(MENU_FOOTER.to_owned());
        out
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
                step.say(
                    "a number takes that choice; Enter answers a reflex prompt; s shows \
                     stats and quests; q quits (the session is kept); leave ends the session",
                );
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
                step.say(format!("> {}", c.label.as_deref().unwrap_or(&edge)));
                self.request(GameCommand::Choose { edge }, &mut step);
            }
            None if self.numbered.is_empty() => step.say("(no choice to make right now)"),
            None => step.say(format!("(no choice {n}: 1-{})", self.numbered.len())),
        }
        step
    }
}

fn end_line(reason: &str) -> String {
    format!("=== the end: {reason} ===")
}

/// Login details of `pixsim-client play`.
#[derive(Clone, Debug)]
pub struct PlayConfig {
    /// REST base URL.
    pub http: String,
    /// QUIC address.
    pub quic: SocketAddr,
    /// TLS server name.
    pub server_name: String,
    /// Certificate trust.
    pub trust: Trust,
    /// Account email.
    pub email: String,
    /// Account password.
    pub password: String,
    /// Create the account first (an existing one is fine).
    pub register: bool,
    /// Start this scene instead of asking.
    pub scene: Option<String>,
    /// Resume this session instead of starting one.
    pub session: Option<Uuid>,
    /// Heartbeat period; the connection counts as dropped after three without any
    /// message from the server.
    pub heartbeat: Duration,
    /// Give up reconnecting after this long.
    pub reconnect_for: Duration,
}

/// Failures of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// A REST call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The QUIC side failed (and reconnecting did not help).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading input or writing output failed.
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
    /// Input ended before a scene was picked.
    #[error("input ended before a scene was chosen")]
    NoScene,
    /// Every reconnect attempt failed.
    #[error("could not reconnect within {0:?}: {1}")]
    Reconnect(Duration, ClientError),
}

/// The client's estimate of the server's world clock: a time sync when one
/// succeeded, else the world time of the latest live event plus the time since it
/// arrived (a lower bound: events arrive after they happen).
#[derive(Debug, Default)]
struct WorldClock {
    sync: Option<TimeSync>,
    anchor: Option<(i64, Instant)>,
}

impl WorldClock {
    fn now(&self) -> Option<i64> {
        self.at(Instant::now())
    }

    fn at(&self, t: Instant) -> Option<i64> {
        if let Some(s) = &self.sync {
            return Some(s.server_ms_at(t));
        }
        self.anchor.map(|(ms, at)| {
            ms + i64::try_from(t.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX)
        })
    }

    /// A live event happened at world time `at_ms`.
    fn saw(&mut self, at_ms: i64) {
        let now = Instant::now();
        if self.at(now).is_none_or(|est| at_ms > est) {
            self.anchor = Some((at_ms, now));
        }
    }

    /// The local instant when the world clock reads `ms`.
    fn instant_of(&self, ms: i64) -> Option<Instant> {
        let now = Instant::now();
        let current = self.at(now)?;
        let ahead = u64::try_from(ms.saturating_sub(current)).unwrap_or(0);
        Some(now + Duration::from_millis(ahead + 1))
    }
}

/// The claimed world time of a key press at `pressed`: the one place input time
/// stamps are made.
fn stamp(clock: &WorldClock, pressed: Instant) -> i64 {
    clock.at(pressed).unwrap_or(0)
}

struct Conn {
    client: Client,
    clock: WorldClock,
    /// Events from this seq on are live on this connection.
    live_from: u64,
}

async fn write_lines<W: AsyncWrite + Unpin>(out: &mut W, lines: &[String]) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    out.write_all(buf.as_bytes()).await?;
    out.flush().await
}

/// Connects, authenticates (logging in again when the token is refused) and
/// creates or joins the session.
async fn open(
    cfg: &PlayConfig,
    rest: &Rest,
    token: &mut String,
    target: Target<'_>,
    timeout: Duration,
) -> Result<(Conn, Joined), PlayError> {
    let opts = ConnectOptions {
        timeout,
        ..ConnectOptions::default()
    };
    let mut client =
        Client::connect_with(cfg.quic, &cfg.server_name, cfg.trust.clone(), opts).await?;
    if let Err(e) = client.authenticate(token).await {
        if e.close_code() != Some(protocol::CloseCode::Unauthenticated) {
            return Err(e.into());
        }
        // The token expired or was revoked: log in again on a new connection.
        *token = rest
            .login_patiently(&cfg.email, &cfg.password, Duration::from_secs(60))
            .await?;
        let opts = ConnectOptions {
            timeout,
            ..ConnectOptions::default()
        };
        client = Client::connect_with(cfg.quic, &cfg.server_name, cfg.trust.clone(), opts).await?;
        client.authenticate(token).await?;
    }
    let joined = match target {
        Target::Create(scene) => client.create_session(scene).await?,
        Target::Join(id, last_seq) => client.join_session(id, last_seq).await?,
    };
    let clock = WorldClock {
        sync: client.time_sync(5).await.ok(),
        anchor: None,
    };
    let live_from = joined.next_seq;
    Ok((
        Conn {
            client,
            clock,
            live_from,
        },
        joined,
    ))
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Create(Option<&'a str>),
    Join(Uuid, Option<u64>),
}

/// Reads one line; `None` at the end of input.
async fn read_line<R: AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> Result<Option<String>, PlayError> {
    Ok(lines.next_line().await?)
}

/// Asks for a scene by number; `None` picks the world's start scene.
async fn pick_scene<R: AsyncBufRead + Unpin, W: AsyncWrite + Unpin>(
    scenes: &[SceneSummary],
    lines: &mut tokio::io::Lines<R>,
    out: &mut W,
) -> Result<Option<String>, PlayError> {
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
    write_lines(out, &text).await?;
    loop {
        let Some(line) = read_line(lines).await? else {
            return Err(PlayError::NoScene);
        };
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        match line
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| scenes.get(i))
        {
            Some(s) if s.locked => {
                write_lines(out, &[format!("{} is locked; pick another", s.title)]).await?;
            }
            Some(s) => return Ok(Some(s.id.clone())),
            None => {
                write_lines(out, &[format!("pick 1-{}", scenes.len())]).await?;
            }
        }
    }
}

/// Runs the player on `input` and `output` until the session ends or the user
/// quits; returns why it stopped.
pub async fn run<R, W>(cfg: PlayConfig, input: R, mut out: W) -> Result<Done, PlayError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let rest = Rest::new(&cfg.http)?;
    if cfg.register && rest.register(&cfg.email, &cfg.password).await? {
        write_lines(&mut out, &[format!("registered {}", cfg.email)]).await?;
    }
    let mut token = rest
        .login_patiently(&cfg.email, &cfg.password, Duration::from_secs(30))
        .await?;
    let scenes = rest.scenes(&token).await?;
    let mut lines = input.lines();
    let mut player = Player::new(rest.base(), &scenes);
    let scene = match (&cfg.session, &cfg.scene) {
        (Some(_), _) => None,
        (None, Some(s)) => Some(s.clone()),
        (None, None) => pick_scene(&scenes, &mut lines, &mut out).await?,
    };
    let target = match cfg.session {
        Some(id) => Target::Join(id, None),
        None => Target::Create(scene.as_deref()),
    };
    let (mut conn, joined) = open(&cfg, &rest, &mut token, target, Duration::from_secs(10)).await?;
    write_lines(&mut out, &player.attach(&joined, false).text).await?;
    if joined.ended && joined.next_seq == 0 {
        return Ok(Done::Ended("ended".into()));
    }
    let mut input_open = true;
    loop {
        match session_loop(
            &cfg,
            &mut player,
            &mut conn,
            &mut lines,
            &mut input_open,
            &mut out,
        )
        .await?
        {
            Ok(done) => {
                conn.client.close().await;
                return Ok(done);
            }
            Err(why) => {
                write_lines(&mut out, &player.connection_lost(&why).text).await?;
                let (c, joined) = reconnect(&cfg, &rest, &mut token, &player).await?;
                conn = c;
                write_lines(&mut out, &player.attach(&joined, true).text).await?;
            }
        }
    }
}

/// Reconnects with exponential backoff and rejoins the session after `last_seq`.
async fn reconnect(
    cfg: &PlayConfig,
    rest: &Rest,
    token: &mut String,
    player: &Player,
) -> Result<(Conn, Joined), PlayError> {
    let Some(id) = player.session() else {
        return Err(PlayError::Client(ClientError::Unexpected("no session")));
    };
    let deadline = Instant::now() + cfg.reconnect_for;
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::time::sleep(backoff).await;
        let target = Target::Join(id, player.last_seq());
        match open(cfg, rest, token, target, Duration::from_secs(3)).await {
            Ok(ok) => return Ok(ok),
            Err(PlayError::Client(e)) if Instant::now() < deadline && !permanent(&e) => {
                tracing::debug!(error = %e, ?backoff, "reconnect failed");
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
            Err(PlayError::Rest(RestError::Unreachable { .. })) if Instant::now() < deadline => {
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
            Err(PlayError::Client(e)) => return Err(PlayError::Reconnect(cfg.reconnect_for, e)),
            Err(other) => return Err(other),
        }
    }
}

/// Failures that another attempt would meet again.
fn permanent(e: &ClientError) -> bool {
    use protocol::v1::ErrorCode;
    matches!(
        e,
        ClientError::Config(_)
            | ClientError::UntrustedCertificate(_)
            | ClientError::Rejected {
                code: ErrorCode::SessionNotFound
                    | ErrorCode::InvalidRequest
                    | ErrorCode::VersionMismatch,
                ..
            }
    )
}

/// Plays on one connection. `Ok(Ok(done))` when finished, `Ok(Err(why))` when the
/// connection dropped.
async fn session_loop<R, W>(
    cfg: &PlayConfig,
    player: &mut Player,
    conn: &mut Conn,
    lines: &mut tokio::io::Lines<R>,
    input_open: &mut bool,
    out: &mut W,
) -> Result<Result<Done, String>, PlayError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut heartbeat = tokio::time::interval(cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        let reveal_at = player
            .next_reveal()
            .and_then(|ms| conn.clock.instant_of(ms))
            .map(tokio::time::Instant::from_std);
        let step = tokio::select! {
            msg = conn.client.recv() => match msg {
                Ok(msg) => {
                    last_heard = Instant::now();
                    if let ServerMessage::Event { seq, at_ms, .. } = &msg
                        && *seq >= conn.live_from
                    {
                        conn.clock.saw(*at_ms);
                    }
                    player.on_message(msg, conn.clock.now())
                }
                Err(e) => return Ok(Err(e.to_string())),
            },
            line = lines.next_line(), if *input_open => {
                let pressed = Instant::now();
                match line? {
                    Some(line) => player.on_input(&line, stamp(&conn.clock, pressed)),
                    None => {
                        // Input closed: stop reading it and quit, keeping the session.
                        *input_open = false;
                        player.on_input("q", 0)
                    }
                }
            },
            () = sleep_until_opt(reveal_at) => {
                player.on_time(conn.clock.now().unwrap_or(i64::MAX))
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > cfg.heartbeat * 3 {
                    return Ok(Err("the server stopped answering".into()));
                }
                let beat = protocol::v1::ClientMessage::Heartbeat { client_time_ms: 0 };
                if let Err(e) = conn.client.send(&beat).await {
                    return Ok(Err(e.to_string()));
                }
                Step::default()
            },
        };
        write_lines(out, &step.text).await?;
        if let Some((id, command)) = step.command
            && let Err(e) = conn.client.command(id, command).await
        {
            return Ok(Err(e.to_string()));
        }
        if let Some(done) = step.done {
            return Ok(Ok(done));
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use protocol::v1::Line;

    fn event(seq: u64, event: GameEvent) -> ServerMessage {
        ServerMessage::Event {
            seq,
            at_ms: 0,
            event,
        }
    }

    fn node(scene: &str, node: &str, lines: &[(&str, &str)]) -> GameEvent {
        GameEvent::NodeEntered {
            scene: scene.into(),
            node: node.into(),
            kind: "dialogue".into(),
            media: None,
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, (speaker, text))| Line {
                    id: format!("l{i}"),
                    speaker: (*speaker).into(),
                    text: (*text).into(),
                })
                .collect(),
            prompt: None,
        }
    }

    fn offer(choices: &[(&str, &str, i64)]) -> GameEvent {
        GameEvent::ChoicesOffered {
            node: "n".into(),
            choices: choices
                .iter()
                .map(|(edge, label, at)| Choice {
                    edge: (*edge).into(),
                    label: Some((*label).into()),
                    available_at_ms: *at,
                })
                .collect(),
        }
    }

    fn joined(next_seq: u64) -> Joined {
        Joined {
            session_id: Uuid::nil(),
            scene: None,
            next_seq,
            ended: false,
        }
    }

    fn scenes() -> Vec<SceneSummary> {
        vec![SceneSummary {
            id: "gallery".into(),
            title: "The Midnight Gallery".into(),
            locked: false,
            start: true,
        }]
    }

    fn player() -> Player {
        let mut p = Player::new("http://h:1/", &scenes());
        p.attach(&joined(0), false);
        p
    }

    #[test]
    fn lines_media_and_numbered_choices() {
        let mut p = player();
        let id = Uuid::now_v7();
        let s = p.on_message(
            event(
                0,
                GameEvent::NodeEntered {
                    scene: "gallery".into(),
                    node: "arrive".into(),
                    kind: "media".into(),
                    media: Some(Media::Asset {
                        asset: id.to_string(),
                    }),
                    lines: vec![],
                    prompt: Some("Where to?".into()),
                },
            ),
            Some(0),
        );
        assert_eq!(
            s.text,
            vec![
                "== The Midnight Gallery ==".to_owned(),
                format!("[media] http://h:1/api/v1/assets/{id}/file"),
                "Where to?".to_owned(),
            ]
        );
        let s = p.on_message(event(1, node("gallery", "talk", &[("mara", "Hi.")])), None);
        assert_eq!(s.text, vec!["mara: Hi."]);
        let s = p.on_message(
            event(2, offer(&[("a", "Go", 0), ("b", "Stay", 0)])),
            Some(0),
        );
        assert_eq!(
            s.text,
            vec!["choices:", "  1) Go", "  2) Stay", MENU_FOOTER]
        );
        let s = p.on_input("2", 5);
        assert_eq!(s.text, vec!["> Stay"]);
        assert_eq!(
            s.command,
            Some((1, GameCommand::Choose { edge: "b".into() }))
        );
        // One choice at a time.
        assert!(p.on_input("1", 5).command.is_none());
        p.on_message(
            ServerMessage::Ack {
                request_id: 1,
                through_seq: None,
            },
            None,
        );
        assert!(p.on_input("1", 5).command.is_some());
        assert_eq!(p.on_input("7", 5).command, None);
    }

    #[test]
    fn generated_media_then_ready() {
        let mut p = player();
        let s = p.on_message(
            event(
                0,
                GameEvent::NodeEntered {
                    scene: "gallery".into(),
                    node: "arrive".into(),
                    kind: "media".into(),
                    media: Some(Media::Generate {
                        operation: "text_to_video".into(),
                        prompt: "rain".into(),
                        params: "{}".into(),
                    }),
                    lines: vec![],
                    prompt: None,
                },
            ),
            None,
        );
        assert!(
            s.text
                .contains(&"[media] generating… (text_to_video: rain)".to_owned())
        );
        let id = Uuid::now_v7();
        let s = p.on_message(
            event(
                1,
                GameEvent::MediaReady {
                    scene: "gallery".into(),
                    node: "arrive".into(),
                    media: Media::Asset {
                        asset: id.to_string(),
                    },
                },
            ),
            None,
        );
        assert_eq!(
            s.text,
            vec![format!("[media ready] http://h:1/api/v1/assets/{id}/file")]
        );
    }

    #[test]
    fn choices_appear_when_revealed_with_stable_numbers() {
        let mut p = player();
        p.on_message(event(0, node("gallery", "plan", &[])), Some(1000));
        let s = p.on_message(
            event(
                1,
                offer(&[
                    ("late", "Later", 3000),
                    ("now", "Now", 1000),
                    ("mid", "Mid", 2000),
                ]),
            ),
            Some(1000),
        );
        assert_eq!(s.text, vec!["choices:", "  1) Now", MENU_FOOTER]);
        assert_eq!(p.next_reveal(), Some(2000));
        assert!(p.on_time(1500).text.is_empty());
        // A hidden choice cannot be taken by guessing its number.
        assert!(p.on_input("2", 1500).command.is_none());
        let s = p.on_time(2000);
        assert_eq!(
            s.text,
            vec!["choices:", "  1) Now", "  2) Mid", MENU_FOOTER]
        );
        let s = p.on_time(3500);
        assert_eq!(
            s.text,
            vec![
                "choices:",
                "  1) Now",
                "  2) Mid",
                "  3) Later",
                MENU_FOOTER
            ]
        );
        assert_eq!(p.next_reveal(), None);
        assert_eq!(
            p.on_input("3", 3500).command,
            Some((
                1,
                GameCommand::Choose {
                    edge: "late".into()
                }
            ))
        );
        // A new menu ends the wait for the last answer; while a choice is in flight, no
        // menu is printed (it could be answered after it is gone).
        let s = p.on_message(
            event(2, offer(&[("x", "X", 0), ("y", "Y", 9000)])),
            Some(4000),
        );
        assert_eq!(s.text, vec!["choices:", "  1) X", MENU_FOOTER]);
        assert_eq!(p.next_reveal(), Some(9000));
        assert_eq!(p.on_input("1", 4000).text, vec!["> X"]);
        assert_eq!(p.next_reveal(), None);
        assert!(p.on_time(9500).text.is_empty());
    }

    #[test]
    fn unknown_clock_shows_every_choice() {
        let mut p = player();
        let s = p.on_message(event(0, offer(&[("a", "A", 99_999)])), None);
        assert_eq!(s.text, vec!["choices:", "  1) A", MENU_FOOTER]);
    }

    #[test]
    fn reflex_enter_sends_the_stamped_input_once() {
        let mut p = player();
        let s = p.on_message(
            event(
                0,
                GameEvent::MiniGamePrompt {
                    game: "reflex".into(),
                    round: 2,
                    rounds: 3,
                    nonce: 77,
                    opens_at_ms: 500,
                    closes_at_ms: 1500,
                },
            ),
            Some(500),
        );
        assert_eq!(s.text, vec![format!("[reflex 2/3] {REFLEX_PROMPT}")]);
        let s = p.on_input("", 640);
        assert_eq!(
            s.command,
            Some((
                1,
                GameCommand::MiniGameInput {
                    round: 2,
                    nonce: 77,
                    client_time_ms: 640
                }
            ))
        );
        // A second Enter is not another press.
        assert!(p.on_input("", 700).command.is_none());
        let s = p.on_message(
            event(
                1,
                GameEvent::MiniGameRound {
                    round: 2,
                    hit: true,
                    reason: None,
                },
            ),
            None,
        );
        assert_eq!(s.text, vec!["[round 2] hit!"]);
        let s = p.on_message(
            event(
                2,
                GameEvent::MiniGameResult {
                    game: "skill_check".into(),
                    success: false,
                    score: 9,
                    detail: "rolled 9 + 2 < 12".into(),
                },
            ),
            None,
        );
        assert_eq!(
            s.text,
            vec!["[skill_check] failure (score 9): rolled 9 + 2 < 12"]
        );
    }

    #[test]
    fn stats_and_quests_from_events() {
        let mut p = player();
        p.on_message(
            event(
                0,
                GameEvent::StateDelta {
                    changes: vec![
                        Change::Item {
                            item: "coin".into(),
                            count: 3,
                        },
                        Change::Stat {
                            stat: "courage".into(),
                            entity: "player".into(),
                            axis: "value".into(),
                            value: 4,
                        },
                        Change::Xp { xp: 20 },
                        Change::Var {
                            name: "met_mara".into(),
                            value: "true".into(),
                        },
                    ],
                },
            ),
            None,
        );
        let s = p.on_message(
            event(
                1,
                GameEvent::QuestUpdated {
                    quest: "heist".into(),
                    status: "active".into(),
                },
            ),
            None,
        );
        assert_eq!(s.text, vec!["[quest] heist: active"]);
        p.on_message(
            event(
                2,
                GameEvent::ObjectiveUpdated {
                    quest: "heist".into(),
                    objective: "get_keycard".into(),
                    progress: 1,
                    target: 1,
                    completed: true,
                },
            ),
            None,
        );
        p.on_message(event(3, GameEvent::LevelUp { level: 2, xp: 60 }), None);
        let s = p.on_input("s", 0);
        assert!(s.command.is_none());
        assert_eq!(
            s.text,
            vec![
                "── stats ──",
                "level 2 · xp 60",
                "  courage.player.value = 4",
                "items: coin ×3",
                "quest heist: active",
                "  get_keycard 1/1 ✓",
                "variables: met_mara=true",
            ]
        );
        assert_eq!(p.on_input("stats", 0).text, s.text);
    }

    #[test]
    fn duplicates_are_never_shown_and_a_resume_does_not_repeat_the_node() {
        let mut p = player();
        let talk = node("gallery", "talk", &[("mara", "You came.")]);
        assert_eq!(
            p.on_message(event(0, talk.clone()), None).text,
            vec!["== The Midnight Gallery ==", "mara: You came."]
        );
        p.on_message(event(1, offer(&[("a", "I'm in.", 0)])), Some(0));
        // A replay overlap after a reconnect is dropped.
        assert!(p.on_message(event(0, talk.clone()), None).text.is_empty());
        assert!(
            p.on_message(event(1, offer(&[("a", "I'm in.", 0)])), Some(0))
                .text
                .is_empty()
        );
        assert_eq!(p.last_seq(), Some(1));
        // A command in flight when the connection dropped.
        assert!(p.on_input("1", 0).command.is_some());
        p.connection_lost("reset");
        let s = p.attach(&joined(2), true);
        assert_eq!(
            s.text,
            vec![
                "(reconnected)",
                "(your last input may not have reached the server)"
            ]
        );
        // After a server restart the node is re-presented: the lines are not printed again,
        // the choices are.
        let s = p.on_message(
            event(
                2,
                GameEvent::Resumed {
                    scene: "gallery".into(),
                    node: "talk".into(),
                    notes: vec![],
                },
            ),
            None,
        );
        assert_eq!(
            s.text,
            vec!["(the server resumed the session at gallery/talk)"]
        );
        assert!(p.on_message(event(3, talk.clone()), None).text.is_empty());
        let s = p.on_message(event(4, offer(&[("a", "I'm in.", 0)])), Some(0));
        assert_eq!(s.text, vec!["choices:", "  1) I'm in.", MENU_FOOTER]);
        // A later visit of the same node is shown again.
        assert_eq!(
            p.on_message(event(5, talk), None).text,
            vec!["mara: You came."]
        );
    }

    #[test]
    fn joining_an_existing_session_shows_only_the_current_situation() {
        let mut p = Player::new("http://h", &scenes());
        let s = p.attach(&joined(4), false);
        assert_eq!(s.text, vec![format!("resuming session {}", Uuid::nil())]);
        let history = [
            node("gallery", "arrive", &[("mara", "Old line.")]),
            offer(&[("a", "Go", 0)]),
            node("gallery", "talk", &[("mara", "Current line.")]),
        ];
        for (i, e) in history.into_iter().enumerate() {
            assert!(p.on_message(event(i as u64, e), None).text.is_empty());
        }
        let s = p.on_message(event(3, offer(&[("b", "Stay", 0)])), None);
        assert_eq!(
            s.text,
            vec![
                "== The Midnight Gallery ==",
                "mara: Current line.",
                "choices:",
                "  1) Stay",
                MENU_FOOTER
            ]
        );
        // Live from here on.
        assert_eq!(
            p.on_message(event(4, node("gallery", "x", &[("p", "New.")])), None)
                .text,
            vec!["p: New."]
        );
    }

    #[test]
    fn the_end_rejections_quit_and_leave() {
        let mut p = player();
        p.on_message(event(0, offer(&[("a", "A", 0)])), Some(0));
        let s = p.on_input("1", 0);
        let (id, _) = s.command.unwrap();
        let s = p.on_message(
            ServerMessage::Rejected {
                request_id: id,
                code: "not_revealed".into(),
                message: "later".into(),
            },
            None,
        );
        assert_eq!(
            s.text,
            vec![
                "(that choice is not available yet)",
                "choices:",
                "  1) A",
                MENU_FOOTER
            ]
        );
        assert_eq!(
            p.on_input("leave", 0).command.unwrap().1,
            GameCommand::Leave
        );
        let s = p.on_message(
            event(
                1,
                GameEvent::SessionEnded {
                    reason: "left".into(),
                },
            ),
            None,
        );
        assert_eq!(s.text, vec!["=== the end: left ==="]);
        assert_eq!(s.done, Some(Done::Ended("left".into())));
        assert!(p.on_input("1", 0).command.is_none());
        assert_eq!(p.on_input("q", 0).done, Some(Done::Quit));
    }

    #[test]
    fn world_clock_estimates() {
        let mut c = WorldClock::default();
        assert_eq!(c.now(), None);
        c.saw(1000);
        let now = c.now().unwrap();
        assert!((1000..1100).contains(&now), "{now}");
        // An older event does not move the estimate back.
        c.saw(10);
        assert!(c.now().unwrap() >= 1000);
        let at = c.instant_of(1500).unwrap();
        assert!(at > Instant::now() + Duration::from_millis(300));
        assert_eq!(stamp(&WorldClock::default(), Instant::now()), 0);
    }
}
