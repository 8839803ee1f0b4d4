//! Protocol version 2 messages (`docs/protocol.md` is the normative description).
//!
//! # Compatibility rules
//!
//! The postcard encoding of an enum is its variant *index* followed by the
//! fields in declaration order, so:
//!
//! * variant order is the wire tag: **new variants are appended only**, never
//!   inserted, reordered or removed;
//! * a field may be **appended at the end** of a [`ServerMessage`] variant or of a
//!   [`GameEvent`] variant within a version: both are length-delimited (a message by its
//!   frame, an event by the byte string around it, [`EventBody`]) and a receiver ignores
//!   the bytes after the fields it knows ([`crate::decode_server_payload`]);
//! * a receiver skips a [`ServerMessage`] or a [`GameEvent`] whose tag it does not know;
//! * anything else (a field inserted, removed or retyped, a field appended to a nested
//!   struct such as [`Choice`], a new [`GameCommand`] the server must understand) needs a
//!   new [`crate::PROTOCOL_VERSION`];
//! * `ClientMessage::Hello` (tag 0), `ServerMessage::Welcome` (tag 0) and
//!   `ServerMessage::Error` (tag 2) are frozen across *all* versions, so a
//!   client and a server of different versions can still tell each other
//!   that they disagree.
//!
//! The server is strict with what it receives: a client message must be consumed
//! exactly.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::CloseCode;
pub use crate::presentation::{Hotspot, Playback, PlaybackStep, Presentation};

/// Client → server messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Tag 0. First message on a connection: the version handshake.
    Hello {
        /// The client's [`crate::PROTOCOL_VERSION`].
        protocol_version: u16,
        /// Free-form client identification, e.g. `pixsim-client 0.1.0`.
        client: String,
    },
    /// Tag 1. Round-trip probe, answered by [`ServerMessage::Pong`].
    Ping {
        /// Echoed back in the pong.
        nonce: u64,
        /// Client clock in microseconds (opaque to the server).
        client_time_us: u64,
    },
    /// Tag 2. Authenticates the connection with a JWT from the REST login;
    /// answered by [`ServerMessage::Authenticated`], or an `Error` and a
    /// close with [`CloseCode::Unauthenticated`].
    Authenticate {
        /// The access token.
        token: String,
    },
    /// Tag 3. Creates a new game session owned by the caller and joins it;
    /// answered by [`ServerMessage::SessionJoined`] (or a non-fatal `Error`).
    CreateSession {
        /// Start scene (the world's start scene when `None`).
        scene: Option<String>,
        /// World id (only the default world exists today; `None` or `"default"`).
        world: Option<String>,
    },
    /// Tag 4. Joins (or re-joins after a reconnect) one of the caller's
    /// sessions. Answered by [`ServerMessage::SessionJoined`] with a state snapshot;
    /// then the retained events with `last_seq < seq < next_seq` are sent again (none
    /// when `last_seq` is `None` or older than the resend window: the snapshot covers
    /// them), then live events follow.
    JoinSession {
        /// The session.
        session_id: Uuid,
        /// Last event sequence number the client has seen.
        last_seq: Option<u64>,
    },
    /// Tag 5. A command for the joined session, answered by
    /// [`ServerMessage::Ack`] or [`ServerMessage::Rejected`] once its effect
    /// is durable (after the events it caused).
    Command {
        /// Client-chosen id echoed in the answer.
        request_id: u64,
        /// The command.
        command: GameCommand,
    },
    /// Tag 6. Keep-alive; answered by [`ServerMessage::Heartbeat`].
    Heartbeat {
        /// Client clock in milliseconds (opaque to the server).
        client_time_ms: u64,
    },
    // New variants go here, appended only.
}

impl ClientMessage {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ClientMessage::Hello { .. } => "hello",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Authenticate { .. } => "authenticate",
            ClientMessage::CreateSession { .. } => "create_session",
            ClientMessage::JoinSession { .. } => "join_session",
            ClientMessage::Command { .. } => "command",
            ClientMessage::Heartbeat { .. } => "heartbeat",
        }
    }
}

/// Server → client messages.
// `SessionJoined` carries a whole snapshot and the others a few fields; a message lives
// only between its construction and its encoding (once per join), so boxing the snapshot
// would buy nothing but an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// Tag 0. Successful answer to `Hello`.
    Welcome {
        /// The protocol version the server speaks on this connection.
        protocol_version: u16,
        /// Server identification, e.g. `pixsim-server 0.1.0`.
        server_version: String,
        /// Server wall clock, milliseconds since the Unix epoch.
        server_time_ms: u64,
    },
    /// Tag 1. Answer to `Ping`.
    Pong {
        /// The nonce of the ping.
        nonce: u64,
        /// Server wall clock, milliseconds since the Unix epoch.
        server_time_ms: u64,
        /// The simulation's world time when the pong was made (ms), the clock of
        /// mini-game windows and inputs: a transport without datagrams (WebSocket) syncs
        /// its clock with pings. `None` when no simulation runs.
        world_time_ms: Option<i64>,
    },
    /// Tag 2. Something went wrong; a fatal error is followed by a close.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    /// Tag 3. The connection is authenticated as this user.
    Authenticated {
        /// User id.
        user_id: Uuid,
    },
    /// Tag 4. The connection is in this session. The snapshot reflects every event
    /// with `seq < next_seq`; resent events (seq below `next_seq`, already reflected)
    /// and then live events (from `next_seq`) follow.
    SessionJoined {
        /// The session.
        session_id: Uuid,
        /// Start scene as requested at creation.
        scene: Option<String>,
        /// Sequence number of the next event the session will produce.
        next_seq: u64,
        /// True when the session has ended (no more commands).
        ended: bool,
        /// The session's state as of `next_seq`: what a client renders.
        snapshot: Snapshot,
    },
    /// Tag 5. One simulation event of the joined session, sent only after
    /// the state it reflects is committed to the database.
    Event {
        /// Per-session sequence number, dense, from 0.
        seq: u64,
        /// World time of the event (ms, server clock).
        at_ms: i64,
        /// The event: length-delimited, so a client skips one it does not know.
        event: EventBody,
    },
    /// Tag 6. The command took effect and is durable; every event it caused
    /// (up to `through_seq`) has been sent before this message.
    Ack {
        /// From the command.
        request_id: u64,
        /// Last event seq of the tick that processed the command.
        through_seq: Option<u64>,
    },
    /// Tag 7. The command was refused and changed nothing.
    Rejected {
        /// From the command.
        request_id: u64,
        /// Machine-readable reason (`docs/protocol.md` lists them all).
        code: String,
        /// Human-readable detail.
        message: String,
    },
    /// Tag 8. Answer to a client heartbeat.
    Heartbeat {
        /// Server wall clock, milliseconds since the Unix epoch.
        server_time_ms: u64,
    },
    // New variants go here, appended only.
}

/// Client → server **datagrams** (unreliable, unordered; see
/// [`crate::MAX_DATAGRAM_LEN`]). Only for traffic whose loss is harmless. Legal
/// once the version handshake is done ([`crate::state::verify_datagram`]).
/// Same compatibility rules as the messages: variants are appended only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientDatagram {
    /// Tag 0. Time-sync probe, answered by [`ServerDatagram::TimeSyncReply`].
    TimeSyncRequest {
        /// The client's send stamp (its own monotonic clock, microseconds;
        /// opaque to the server, echoed back).
        client_send_us: u64,
    },
    // New variants go here, appended only.
}

impl ClientDatagram {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            ClientDatagram::TimeSyncRequest { .. } => "time_sync_request",
        }
    }
}

/// Server → client **datagrams**. Same rules as [`ClientDatagram`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerDatagram {
    /// Tag 0. Answer to [`ClientDatagram::TimeSyncRequest`].
    TimeSyncReply {
        /// The request's `client_send_us`, unchanged.
        client_send_us: u64,
        /// The simulation's world time when the reply was made, in ms: the
        /// clock that reflex inputs (`GameCommand::MiniGameInput::client_time_ms`)
        /// and prompt windows are expressed in. Between two ticks it is the
        /// last tick's world time plus the (scaled) time since that tick began.
        world_time_ms: i64,
        /// The simulation tick the world time belongs to.
        tick: u64,
    },
    // New variants go here, appended only.
}

impl ServerDatagram {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            ServerDatagram::TimeSyncReply { .. } => "time_sync_reply",
        }
    }
}

/// A player command inside a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameCommand {
    /// Tag 0. Takes an offered choice.
    Choose {
        /// Edge id from `ChoicesOffered`.
        edge: String,
    },
    /// Tag 1. Reflex input for the open mini-game round.
    MiniGameInput {
        /// Round from the prompt.
        round: u32,
        /// Nonce from the prompt.
        nonce: u64,
        /// Claimed press time in server world-clock ms.
        client_time_ms: i64,
    },
    /// Tag 2. Leaves (ends) the session.
    Leave,
    /// Tag 3 (revision 1). Moves a `Steps` playback to its next step (answered by
    /// [`GameEvent::PlaybackStep`]); refused with `wrong_state` where no step waits. A
    /// client sends it only for a `Steps` playback, which only a revision-1 server sends.
    Continue,
}

impl GameCommand {
    /// Short name (matches the simulation's command names).
    pub fn name(&self) -> &'static str {
        match self {
            GameCommand::Choose { .. } => "choose",
            GameCommand::MiniGameInput { .. } => "minigame_input",
            GameCommand::Leave => "leave",
            GameCommand::Continue => "continue",
        }
    }
}

/// Events of a game session (a protocol-owned mirror of the simulation's
/// events). Appended only, like the messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameEvent {
    /// Tag 0. The session started.
    SessionStarted {
        /// Scene.
        scene: String,
        /// Content version.
        content_version: String,
    },
    /// Tag 1. The session was resumed from its last durable state (after a server
    /// restart, or after it was unloaded while idle): timers restart from here.
    Resumed {
        /// Scene.
        scene: String,
        /// Node.
        node: String,
        /// Notes about state dropped by a content change.
        notes: Vec<String>,
    },
    /// Tag 2. A node was entered (or re-presented).
    NodeEntered {
        /// Scene.
        scene: String,
        /// Node.
        node: String,
        /// Node kind.
        kind: String,
        /// Media to show, when it exists.
        media: Option<Media>,
        /// The node's media is being generated: a [`GameEvent::MediaReady`] follows.
        media_pending: bool,
        /// Dialogue lines.
        lines: Vec<Line>,
        /// Choice prompt.
        prompt: Option<String>,
        /// How the media plays and its hotspots (revision 1).
        presentation: Presentation,
    },
    /// Tag 3. Choices offered at the current node.
    ChoicesOffered {
        /// Node.
        node: String,
        /// Choices.
        choices: Vec<Choice>,
    },
    /// Tag 4. State changes (stats, items, variables, XP...).
    StateDelta {
        /// Changes in application order.
        changes: Vec<Change>,
    },
    /// Tag 5. A reflex round is open.
    MiniGamePrompt {
        /// Game.
        game: String,
        /// Round (1-based).
        round: u32,
        /// Rounds in total.
        rounds: u32,
        /// Nonce to echo.
        nonce: u64,
        /// Window start (world ms).
        opens_at_ms: i64,
        /// Window end (world ms).
        closes_at_ms: i64,
    },
    /// Tag 6. A reflex round result.
    MiniGameRound {
        /// Round.
        round: u32,
        /// Hit or miss.
        hit: bool,
        /// Why a miss.
        reason: Option<String>,
    },
    /// Tag 7. A mini-game finished.
    MiniGameResult {
        /// Game.
        game: String,
        /// Success or failure.
        success: bool,
        /// Score.
        score: i64,
        /// Detail.
        detail: String,
    },
    /// Tag 8. Quest status changed.
    QuestUpdated {
        /// Quest.
        quest: String,
        /// `inactive`, `active`, `completed`, `failed`.
        status: String,
    },
    /// Tag 9. Objective progress.
    ObjectiveUpdated {
        /// Quest.
        quest: String,
        /// Objective.
        objective: String,
        /// Progress.
        progress: u32,
        /// Target.
        target: u32,
        /// Done.
        completed: bool,
    },
    /// Tag 10. Level up.
    LevelUp {
        /// Level.
        level: u32,
        /// XP.
        xp: i64,
    },
    /// Tag 11. Scene unlocked.
    SceneUnlocked {
        /// Scene.
        scene: String,
    },
    /// Tag 12. The session ended.
    SessionEnded {
        /// `success`, `failure`, `neutral`, `returned`, `left`, `aborted`.
        reason: String,
    },
    /// Tag 13. A runtime error (a content fault) aborted the session; a
    /// `SessionEnded { reason: "aborted" }` follows. A rejected command is not an event:
    /// it is answered by [`ServerMessage::Rejected`].
    Error {
        /// Command name.
        command: String,
        /// Machine-readable reason.
        code: String,
        /// Human message.
        message: String,
    },
    /// Tag 14. The asset generated for the current node's media spec is ready (sent to
    /// sessions that entered the node before it was; later entrants get it in
    /// `NodeEntered`).
    MediaReady {
        /// Scene.
        scene: String,
        /// Node.
        node: String,
        /// The media.
        media: Media,
    },
    /// Tag 15 (revision 1). A `Steps` playback moved to step `step` (0-based) after a
    /// `Continue`; `step` equal to the number of steps means every step has played.
    PlaybackStep {
        /// Node.
        node: String,
        /// The step now playing.
        step: u32,
    },
    /// Tag 16 (revision 2). How far the generation of the current node's pending media
    /// has come (`media_pending`); sent as it moves (at most about once a second), until
    /// [`GameEvent::MediaReady`].
    MediaProgress {
        /// Scene.
        scene: String,
        /// Node.
        node: String,
        /// Percent done, 0 to 100 (0 while queued).
        progress: u8,
        /// While queued: the place in the queue, 1 = the next job to start.
        queue_position: Option<u32>,
        /// While queued: when it is expected to start, Unix time in ms (server clock).
        estimated_start_unix_ms: Option<i64>,
    },
}

impl GameEvent {
    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            GameEvent::SessionStarted { .. } => "session_started",
            GameEvent::Resumed { .. } => "resumed",
            GameEvent::NodeEntered { .. } => "node_entered",
            GameEvent::ChoicesOffered { .. } => "choices_offered",
            GameEvent::StateDelta { .. } => "state_delta",
            GameEvent::MiniGamePrompt { .. } => "minigame_prompt",
            GameEvent::MiniGameRound { .. } => "minigame_round",
            GameEvent::MiniGameResult { .. } => "minigame_result",
            GameEvent::QuestUpdated { .. } => "quest_updated",
            GameEvent::ObjectiveUpdated { .. } => "objective_updated",
            GameEvent::LevelUp { .. } => "level_up",
            GameEvent::SceneUnlocked { .. } => "scene_unlocked",
            GameEvent::SessionEnded { .. } => "session_ended",
            GameEvent::Error { .. } => "error",
            GameEvent::MediaReady { .. } => "media_ready",
            GameEvent::PlaybackStep { .. } => "playback_step",
            GameEvent::MediaProgress { .. } => "media_progress",
        }
    }
}

/// Media of a node: always a file a client can fetch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Where to fetch it: a path on the server's HTTP origin (e.g.
    /// `/api/v1/assets/{id}/file`), resolved against the base URL the client logged in
    /// with, or an absolute `https://` URL.
    pub url: String,
    /// `video`, `image` or `audio`.
    pub media_type: String,
}

/// A session's state as a client renders it, sent on every join
/// ([`ServerMessage::SessionJoined`]): a client needs no event history to draw the
/// current screen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Where the player stands; `None` before the first node or after the end.
    pub position: Option<Position>,
    /// The choices offered now (empty when none).
    pub choices: Vec<Choice>,
    /// The open reflex round, if one is.
    pub minigame: Option<MiniGamePrompt>,
    /// Stats, inventory, quests, visible variables, XP and level.
    pub progression: ProgressionView,
    /// How the session ended (`SessionEnded.reason`), once it has.
    pub ended: Option<String>,
    /// How the current node's media plays (revision 1); `None` when `position` is.
    pub presentation: Option<Presentation>,
}

/// The node the player stands at, as its `NodeEntered` event presented it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Scene.
    pub scene: String,
    /// Node.
    pub node: String,
    /// Node kind.
    pub kind: String,
    /// Media to show, when it exists.
    pub media: Option<Media>,
    /// The media is being generated (a `MediaReady` event follows).
    pub media_pending: bool,
    /// Dialogue lines.
    pub lines: Vec<Line>,
    /// Choice prompt.
    pub prompt: Option<String>,
}

/// An open reflex round, as its `MiniGamePrompt` event announced it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniGamePrompt {
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

/// A player's progression as a snapshot carries it; each list is sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressionView {
    /// Every declared stat axis of every entity carrying it, with its value (the axis's
    /// default when never moved).
    pub stats: Vec<StatValue>,
    /// Items held (count above zero).
    pub items: Vec<ItemCount>,
    /// Quests that are not `inactive`, with their objectives.
    pub quests: Vec<QuestView>,
    /// Every declared world variable with its current value (its initial value when
    /// never set, or set back to it), rendered as text. The snapshot sent on create
    /// lists them all at their initial values, so a client that starts from it and
    /// applies each `StateDelta`'s `Var` changes holds exactly the variables of any
    /// later snapshot.
    pub vars: Vec<VarValue>,
    /// XP total.
    pub xp: i64,
    /// Level.
    pub level: u32,
    /// Scenes unlocked.
    pub unlocked: Vec<String>,
}

/// One stat axis value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatValue {
    /// Stat.
    pub stat: String,
    /// Entity.
    pub entity: String,
    /// Axis.
    pub axis: String,
    /// Value.
    pub value: i64,
}

/// An item count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCount {
    /// Item.
    pub item: String,
    /// Count.
    pub count: u32,
}

/// A quest and its objectives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestView {
    /// Quest.
    pub quest: String,
    /// `active`, `completed` or `failed`.
    pub status: String,
    /// Objectives, in the quest's order.
    pub objectives: Vec<ObjectiveView>,
}

/// One objective's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectiveView {
    /// Objective.
    pub objective: String,
    /// Progress.
    pub progress: u32,
    /// Target.
    pub target: u32,
    /// Done.
    pub completed: bool,
}

/// A variable's value, rendered as text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarValue {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A dialogue line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Line id.
    pub id: String,
    /// Speaker.
    pub speaker: String,
    /// Text.
    pub text: String,
}

/// An offered choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Edge id.
    pub edge: String,
    /// Label.
    pub label: Option<String>,
    /// World time from which it may be taken.
    pub available_at_ms: i64,
}

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Variable set (value rendered as text).
    Var {
        /// Name.
        name: String,
        /// Value.
        value: String,
    },
    /// Stat axis.
    Stat {
        /// Stat.
        stat: String,
        /// Entity.
        entity: String,
        /// Axis.
        axis: String,
        /// Value.
        value: i64,
    },
    /// Item count.
    Item {
        /// Item.
        item: String,
        /// Count.
        count: u32,
    },
    /// Quest status.
    Quest {
        /// Quest.
        quest: String,
        /// Status.
        status: String,
    },
    /// Objective progress.
    Objective {
        /// Quest.
        quest: String,
        /// Objective.
        objective: String,
        /// Progress.
        progress: u32,
        /// Target.
        target: u32,
    },
    /// XP total.
    Xp {
        /// XP.
        xp: i64,
    },
    /// Level.
    Level {
        /// Level.
        level: u32,
    },
    /// Scene unlocked.
    Unlocked {
        /// Scene.
        scene: String,
    },
}

impl ServerMessage {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Authenticated { .. } => "authenticated",
            ServerMessage::SessionJoined { .. } => "session_joined",
            ServerMessage::Event { .. } => "event",
            ServerMessage::Ack { .. } => "ack",
            ServerMessage::Rejected { .. } => "rejected",
            ServerMessage::Heartbeat { .. } => "heartbeat",
        }
    }
}

/// Variant index of [`ServerMessage::Event`] (its tag on the wire).
const EVENT_TAG: u32 = 5;

/// The [`ServerMessage`] variants by tag (a receiver skips a tag beyond them).
pub const SERVER_MESSAGE_VARIANTS: [&str; 9] = [
    "Welcome",
    "Pong",
    "Error",
    "Authenticated",
    "SessionJoined",
    "Event",
    "Ack",
    "Rejected",
    "Heartbeat",
];

/// The [`GameEvent`] variants by tag (a receiver skips a tag beyond them).
pub const GAME_EVENT_VARIANTS: [&str; 17] = [
    "SessionStarted",
    "Resumed",
    "NodeEntered",
    "ChoicesOffered",
    "StateDelta",
    "MiniGamePrompt",
    "MiniGameRound",
    "MiniGameResult",
    "QuestUpdated",
    "ObjectiveUpdated",
    "LevelUp",
    "SceneUnlocked",
    "SessionEnded",
    "Error",
    "MediaReady",
    "PlaybackStep",
    "MediaProgress",
];

/// A [`GameEvent`] as [`ServerMessage::Event`] carries it. On the binary wire it is a
/// byte string (varint length, then the event's own encoding), so a receiver can skip
/// an event it does not know and ignore fields appended to one it does; in the JSON
/// encoding it is the event object itself.
// `Unknown` is a client's rare case (a newer server's event); boxing the known event,
// which a server builds once per send, would add an allocation to every event.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// An event this build knows.
    Known(GameEvent),
    /// An event of a newer server, to be skipped: its tag (`#15`) on the binary wire,
    /// its name in JSON. Never sent.
    Unknown(String),
}

impl From<GameEvent> for EventBody {
    fn from(e: GameEvent) -> Self {
        EventBody::Known(e)
    }
}

impl EventBody {
    /// The event, when this build knows it.
    pub fn known(&self) -> Option<&GameEvent> {
        match self {
            EventBody::Known(e) => Some(e),
            EventBody::Unknown(_) => None,
        }
    }

    /// Decodes an event's own bytes (the content of the byte string): a tag beyond
    /// [`GAME_EVENT_VARIANTS`] is [`EventBody::Unknown`]; bytes after a known event's
    /// fields are ignored (fields a newer server appended).
    pub fn decode(bytes: &[u8]) -> Result<EventBody, postcard::Error> {
        let tag =
            crate::codec::read_varint_u32(bytes).ok_or(postcard::Error::DeserializeBadVarint)?;
        if tag as usize >= GAME_EVENT_VARIANTS.len() {
            return Ok(EventBody::Unknown(format!("#{tag}")));
        }
        postcard::take_from_bytes::<GameEvent>(bytes).map(|(e, _)| EventBody::Known(e))
    }
}

impl Serialize for EventBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        match self {
            EventBody::Known(e) if s.is_human_readable() => e.serialize(s),
            EventBody::Known(e) => {
                let bytes = postcard::to_stdvec(e).map_err(S::Error::custom)?;
                s.serialize_bytes(&bytes)
            }
            EventBody::Unknown(v) => Err(S::Error::custom(format!(
                "an unknown event ({v}) cannot be encoded"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for EventBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if d.is_human_readable() {
            let v = serde_json::Value::deserialize(d)?;
            let name = match &v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(m) if m.len() == 1 => {
                    m.keys().next().cloned().unwrap_or_default()
                }
                _ => return Err(D::Error::custom("an event is an object with one key")),
            };
            if !GAME_EVENT_VARIANTS.contains(&name.as_str()) {
                return Ok(EventBody::Unknown(name));
            }
            return serde_json::from_value(v)
                .map(EventBody::Known)
                .map_err(D::Error::custom);
        }
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = EventBody;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an encoded game event")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<EventBody, E> {
                EventBody::decode(v).map_err(E::custom)
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// [`ServerMessage::Event`] around an event that is already encoded (postcard, as
/// [`GameEvent`] serialises, e.g. the bytes a server logged): framed byte for byte as
/// the owned message with the decoded event, without encoding the event again (nor
/// cloning it per subscriber). The bytes are not checked here; the receiver decodes them
/// as a [`GameEvent`].
#[derive(Debug, Clone, Copy)]
pub struct EncodedEventRef<'a> {
    /// Per-session sequence number.
    pub seq: u64,
    /// World time of the event (ms).
    pub at_ms: i64,
    /// The event, postcard-encoded.
    pub event: &'a [u8],
}

impl Serialize for EncodedEventRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        /// The event's bytes as a byte string, as [`EventBody`] encodes them.
        struct Raw<'a>(&'a [u8]);
        impl Serialize for Raw<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let mut v = s.serialize_struct_variant("ServerMessage", EVENT_TAG, "Event", 3)?;
        v.serialize_field("seq", &self.seq)?;
        v.serialize_field("at_ms", &self.at_ms)?;
        v.serialize_field("event", &Raw(self.event))?;
        v.end()
    }
}

impl EncodedEventRef<'_> {
    /// Appends the framed message to `out` (on error `out` is left as it was).
    pub fn encode_frame(&self, out: &mut Vec<u8>) -> Result<(), crate::codec::CodecError> {
        crate::codec::encode_frame(self, out)
    }
}

/// Decodes one server message payload as a client should: a message tag this build does
/// not know gives `Ok(None)` (skip it: a newer server added it), and bytes after a known
/// message's fields are ignored (fields a newer server appended).
pub fn decode_server_payload(
    payload: &[u8],
) -> Result<Option<ServerMessage>, crate::codec::CodecError> {
    if payload.len() > crate::MAX_FRAME_LEN {
        return Err(crate::codec::CodecError::FrameTooLarge {
            len: payload.len() as u64,
            max: crate::MAX_FRAME_LEN,
        });
    }
    let tag = crate::codec::read_varint_u32(payload).ok_or(crate::codec::CodecError::Malformed(
        postcard::Error::DeserializeBadVarint,
    ))?;
    if tag as usize >= SERVER_MESSAGE_VARIANTS.len() {
        return Ok(None);
    }
    postcard::take_from_bytes(payload)
        .map(|(msg, _)| Some(msg))
        .map_err(crate::codec::CodecError::Malformed)
}

/// Error codes carried by [`ServerMessage::Error`], encoded as a `u16`.
///
/// Codes `0..=0xFF` mirror [`CloseCode`] numerically (the error that
/// precedes a close of that code). Unknown codes decode to
/// [`ErrorCode::Other`] so a newer peer never breaks decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub enum ErrorCode {
    /// Undecodable or illegal message.
    ProtocolError,
    /// The client's protocol version is not supported.
    VersionMismatch,
    /// Frame above the maximum length.
    FrameTooLarge,
    /// Authentication required or failed.
    Unauthenticated,
    /// The server is shutting down.
    ServerShutdown,
    /// The server is full.
    ServerFull,
    /// Internal server error.
    Internal,
    /// Another connection took the session over (11).
    SessionTakenOver,
    /// No such session, or not the caller's (256).
    SessionNotFound,
    /// The server is saturated; retry later (257).
    Busy,
    /// The request is invalid, e.g. an unknown scene (258).
    InvalidRequest,
    /// The session is already joined on another connection (259).
    SessionBusy,
    /// A code this version does not know.
    Other(u16),
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        match code {
            ErrorCode::ProtocolError => CloseCode::ProtocolError.as_u32() as u16,
            ErrorCode::VersionMismatch => CloseCode::VersionMismatch.as_u32() as u16,
            ErrorCode::FrameTooLarge => CloseCode::FrameTooLarge.as_u32() as u16,
            ErrorCode::Unauthenticated => CloseCode::Unauthenticated.as_u32() as u16,
            ErrorCode::ServerShutdown => CloseCode::ServerShutdown.as_u32() as u16,
            ErrorCode::ServerFull => CloseCode::ServerFull.as_u32() as u16,
            ErrorCode::Internal => CloseCode::InternalError.as_u32() as u16,
            ErrorCode::SessionTakenOver => CloseCode::SessionTakenOver.as_u32() as u16,
            ErrorCode::SessionNotFound => 256,
            ErrorCode::Busy => 257,
            ErrorCode::InvalidRequest => 258,
            ErrorCode::SessionBusy => 259,
            ErrorCode::Other(other) => other,
        }
    }
}

impl From<u16> for ErrorCode {
    fn from(value: u16) -> ErrorCode {
        match value {
            256 => return ErrorCode::SessionNotFound,
            257 => return ErrorCode::Busy,
            258 => return ErrorCode::InvalidRequest,
            259 => return ErrorCode::SessionBusy,
            _ => {}
        }
        match CloseCode::from_u32(u32::from(value)) {
            Some(CloseCode::ProtocolError) => ErrorCode::ProtocolError,
            Some(CloseCode::VersionMismatch) => ErrorCode::VersionMismatch,
            Some(CloseCode::FrameTooLarge) => ErrorCode::FrameTooLarge,
            Some(CloseCode::Unauthenticated) => ErrorCode::Unauthenticated,
            Some(CloseCode::ServerShutdown) => ErrorCode::ServerShutdown,
            Some(CloseCode::ServerFull) => ErrorCode::ServerFull,
            Some(CloseCode::InternalError) => ErrorCode::Internal,
            Some(CloseCode::SessionTakenOver) => ErrorCode::SessionTakenOver,
            _ => ErrorCode::Other(value),
        }
    }
}

impl From<CloseCode> for ErrorCode {
    fn from(code: CloseCode) -> ErrorCode {
        ErrorCode::from(code.as_u32() as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_u16_round_trip() {
        for v in 0..=300u16 {
            assert_eq!(u16::from(ErrorCode::from(v)), v);
        }
        assert_eq!(
            ErrorCode::from(CloseCode::VersionMismatch),
            ErrorCode::VersionMismatch
        );
    }

    /// Pins the wire layout of the time-sync datagrams.
    #[test]
    fn datagram_wire_layout() {
        let req = ClientDatagram::TimeSyncRequest {
            client_send_us: 300,
        };
        assert_eq!(
            postcard::to_stdvec(&req).unwrap_or_default(),
            vec![0, 0xAC, 0x02]
        );
        let reply = ServerDatagram::TimeSyncReply {
            client_send_us: 1,
            world_time_ms: -1,
            tick: 2,
        };
        // i64 is zigzag encoded: -1 is 1.
        assert_eq!(
            postcard::to_stdvec(&reply).unwrap_or_default(),
            vec![0, 1, 1, 2]
        );
    }

    /// An event framed from its encoded bytes is byte-identical to the owned message.
    #[test]
    fn encoded_event_ref_frames_as_the_event_message() {
        let events = [
            GameEvent::NodeEntered {
                scene: "s".into(),
                node: "n".into(),
                kind: "scene".into(),
                media: None,
                media_pending: true,
                lines: vec![Line {
                    id: "l1".into(),
                    speaker: "mara".into(),
                    text: "hello".into(),
                }],
                prompt: Some("?".into()),
                presentation: Presentation::default(),
            },
            GameEvent::LevelUp { level: 3, xp: 250 },
            GameEvent::SessionEnded {
                reason: "success".into(),
            },
        ];
        for (i, event) in events.iter().enumerate() {
            let (seq, at_ms) = (u64::MAX - i as u64, -(i as i64) * 1000);
            let owned = crate::codec::frame(&ServerMessage::Event {
                seq,
                at_ms,
                event: event.clone().into(),
            })
            .unwrap_or_default();
            assert!(!owned.is_empty());
            let encoded = postcard::to_stdvec(event).unwrap_or_default();
            let mut pre = vec![7];
            EncodedEventRef {
                seq,
                at_ms,
                event: &encoded,
            }
            .encode_frame(&mut pre)
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(pre[0], 7, "appends");
            assert_eq!(pre[1..], owned[..]);
        }
    }

    /// A client skips an event of a newer server, and ignores fields appended to one
    /// it knows; both in the binary and the JSON encoding.
    #[test]
    fn unknown_events_and_appended_fields_are_skipped() {
        // Binary: an event tag beyond the known ones, inside a known message.
        let mut frame = Vec::new();
        EncodedEventRef {
            seq: 3,
            at_ms: 4,
            event: &[99, 1, 2, 3],
        }
        .encode_frame(&mut frame)
        .unwrap_or_else(|e| panic!("{e}"));
        let msg = crate::decode_server_payload(&frame[crate::FRAME_HEADER_LEN..])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            msg,
            Some(ServerMessage::Event {
                seq: 3,
                at_ms: 4,
                event: EventBody::Unknown("#99".into()),
            })
        );
        // Binary: a known event with a field appended after its own.
        let mut event =
            postcard::to_stdvec(&GameEvent::LevelUp { level: 2, xp: 9 }).unwrap_or_default();
        event.extend_from_slice(&[0x05, 0x77]);
        let mut frame = Vec::new();
        EncodedEventRef {
            seq: 0,
            at_ms: 0,
            event: &event,
        }
        .encode_frame(&mut frame)
        .unwrap_or_else(|e| panic!("{e}"));
        // ... and a field appended to the message itself.
        frame.push(0x2A);
        let msg = crate::decode_server_payload(&frame[crate::FRAME_HEADER_LEN..])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            msg,
            Some(ServerMessage::Event {
                event: EventBody::Known(GameEvent::LevelUp { level: 2, xp: 9 }),
                ..
            })
        ));
        // Binary: a message tag beyond the known ones.
        assert_eq!(crate::decode_server_payload(&[40, 1, 2]).ok(), Some(None));
        // The server stays strict with what it receives.
        assert!(crate::decode_payload::<ServerMessage>(&frame[crate::FRAME_HEADER_LEN..]).is_err());

        // JSON: an unknown event, an unknown field, an unknown message.
        let text = r#"{"Event":{"seq":1,"at_ms":2,"event":{"Fireworks":{"n":1}},"later":true}}"#;
        assert_eq!(
            crate::server_from_json(text).ok().flatten(),
            Some(ServerMessage::Event {
                seq: 1,
                at_ms: 2,
                event: EventBody::Unknown("Fireworks".into()),
            })
        );
        let text =
            r#"{"Event":{"seq":1,"at_ms":2,"event":{"LevelUp":{"level":2,"xp":9,"extra":[1]}}}}"#;
        assert!(matches!(
            crate::server_from_json(text),
            Ok(Some(ServerMessage::Event {
                event: EventBody::Known(GameEvent::LevelUp { .. }),
                ..
            }))
        ));
        assert!(matches!(
            crate::server_from_json(r#"{"Confetti":{}}"#),
            Ok(None)
        ));
        assert!(crate::server_from_json("[1]").is_err());
    }

    /// The JSON encoding carries the same messages: events nested as objects, UUIDs as
    /// strings, error codes as numbers, unit variants as strings.
    #[test]
    fn json_encoding_round_trips() {
        let msgs = [
            ServerMessage::Event {
                seq: 7,
                at_ms: -1,
                event: GameEvent::SessionEnded {
                    reason: "success".into(),
                }
                .into(),
            },
            ServerMessage::Error {
                code: ErrorCode::SessionTakenOver,
                message: "x".into(),
            },
            ServerMessage::Authenticated {
                user_id: Uuid::from_u128(1),
            },
        ];
        let texts: Vec<String> = msgs
            .iter()
            .map(|m| crate::to_json(m).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(
            texts[0],
            r#"{"Event":{"seq":7,"at_ms":-1,"event":{"SessionEnded":{"reason":"success"}}}}"#
        );
        assert_eq!(texts[1], r#"{"Error":{"code":11,"message":"x"}}"#);
        assert_eq!(
            texts[2],
            r#"{"Authenticated":{"user_id":"00000000-0000-0000-0000-000000000001"}}"#
        );
        for (m, t) in msgs.iter().zip(&texts) {
            assert_eq!(crate::server_from_json(t).ok().flatten().as_ref(), Some(m));
        }
        let leave = ClientMessage::Command {
            request_id: 1,
            command: GameCommand::Leave,
        };
        let text = crate::to_json(&leave).unwrap_or_default();
        assert_eq!(text, r#"{"Command":{"request_id":1,"command":"Leave"}}"#);
        assert_eq!(crate::client_from_json(&text).ok(), Some(leave));
        assert!(crate::client_from_json(r#"{"Launch":{}}"#).is_err());
    }

    /// The variant name tables match the enums' tags.
    #[test]
    fn variant_tables_match_the_tags() {
        let ev = GameEvent::MediaProgress {
            scene: String::new(),
            node: String::new(),
            progress: 0,
            queue_position: None,
            estimated_start_unix_ms: None,
        };
        let bytes = postcard::to_stdvec(&ev).unwrap_or_default();
        assert_eq!(bytes[0] as usize, GAME_EVENT_VARIANTS.len() - 1);
        let json = crate::to_json(&ev).unwrap_or_default();
        assert!(json.starts_with(&format!("{{\"{}\"", GAME_EVENT_VARIANTS[16])));
        let msg = ServerMessage::Heartbeat { server_time_ms: 0 };
        let bytes = postcard::to_stdvec(&msg).unwrap_or_default();
        assert_eq!(bytes[0] as usize, SERVER_MESSAGE_VARIANTS.len() - 1);
        for (i, name) in SERVER_MESSAGE_VARIANTS.iter().enumerate() {
            assert_eq!(i == EVENT_TAG as usize, *name == "Event");
        }
    }

    /// An encoded event too large for a frame is refused, and nothing is appended.
    #[test]
    fn encoded_event_over_the_frame_limit_is_refused() {
        let event = vec![0u8; crate::MAX_FRAME_LEN];
        let mut out = vec![1, 2, 3];
        let r = EncodedEventRef {
            seq: 1,
            at_ms: 0,
            event: &event,
        }
        .encode_frame(&mut out);
        assert!(matches!(
            r,
            Err(crate::codec::CodecError::FrameTooLarge { .. })
        ));
        assert_eq!(out, vec![1, 2, 3]);
    }

    /// Pins the tags of the frozen handshake messages.
    #[test]
    fn frozen_wire_tags() {
        let hello = ClientMessage::Hello {
            protocol_version: 1,
            client: "c".into(),
        };
        assert_eq!(
            postcard::to_stdvec(&hello).unwrap_or_default(),
            vec![0, 1, 1, b'c']
        );
        let err = ServerMessage::Error {
            code: ErrorCode::VersionMismatch,
            message: String::new(),
        };
        assert_eq!(postcard::to_stdvec(&err).unwrap_or_default(), vec![2, 2, 0]);
        let welcome = ServerMessage::Welcome {
            protocol_version: 1,
            server_version: String::new(),
            server_time_ms: 300,
        };
        assert_eq!(
            postcard::to_stdvec(&welcome).unwrap_or_default(),
            vec![0, 1, 0, 0xAC, 0x02]
        );
    }
}
