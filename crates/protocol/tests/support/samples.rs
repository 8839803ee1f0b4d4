//! The sample messages the golden vectors (`golden/v{N}.json`) are generated from: every
//! message, every event, every command, both datagrams, every nested type, `Option` none
//! and some, empty and non-empty sequences, negative `i64` (zigzag) and multi-byte
//! varints. Append new samples; never change an existing one within a protocol version.

use protocol::v2::{
    Choice, ClientDatagram, ClientMessage, ErrorCode, GameCommand, ItemCount, Line, Media,
    MiniGamePrompt, ObjectiveView, Position, ProgressionView, QuestView, ServerDatagram,
    ServerMessage, Snapshot, StatValue, VarValue,
};
use uuid::Uuid;

/// One sample: a value of one of the schema's roots.
#[derive(Clone, Debug, PartialEq)]
// Test data: a few hundred samples, built once; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Sample {
    Client(ClientMessage),
    Server(ServerMessage),
    ClientDatagram(ClientDatagram),
    ServerDatagram(ServerDatagram),
}

impl Sample {
    /// The root's name in the schema and the golden file.
    pub fn root(&self) -> &'static str {
        match self {
            Sample::Client(_) => "client",
            Sample::Server(_) => "server",
            Sample::ClientDatagram(_) => "client_datagram",
            Sample::ServerDatagram(_) => "server_datagram",
        }
    }
}

/// 2^53 − 1: the largest integer a JSON number (an IEEE double) holds exactly.
pub const MAX_SAFE: u64 = (1 << 53) - 1;

const SESSION: Uuid = Uuid::from_u128(0x0190_b0a4_9c3e_7d21_8f00_1234_5678_9abc);
const USER: Uuid = Uuid::from_u128(0x0190_b0a4_0000_7000_8000_0000_0000_0001);
/// A plausible wall clock (ms since the epoch): a 6-byte varint.
const NOW_MS: u64 = 1_765_000_000_000;

pub(crate) fn s(text: &str) -> String {
    text.to_string()
}

fn client(name: &str, msg: ClientMessage) -> (String, Sample) {
    (format!("client.{name}"), Sample::Client(msg))
}

pub(crate) fn server(name: &str, msg: ServerMessage) -> (String, Sample) {
    (format!("server.{name}"), Sample::Server(msg))
}

pub(crate) fn command(name: &str, request_id: u64, command: GameCommand) -> (String, Sample) {
    client(
        &format!("command.{name}"),
        ClientMessage::Command {
            request_id,
            command,
        },
    )
}

/// Every sample, by vector name, in file order.
pub fn samples() -> Vec<(String, Sample)> {
    let mut out = client_samples();
    out.extend(server_samples());
    out.extend(super::event_samples::event_samples());
    out.push((
        s("client_datagram.time_sync_request"),
        Sample::ClientDatagram(ClientDatagram::TimeSyncRequest {
            client_send_us: 81_234_567,
        }),
    ));
    out.push((
        s("server_datagram.time_sync_reply"),
        Sample::ServerDatagram(ServerDatagram::TimeSyncReply {
            client_send_us: 81_234_567,
            world_time_ms: 12_345,
            tick: 740,
        }),
    ));
    out.push((
        s("server_datagram.time_sync_reply.negative_world_time"),
        Sample::ServerDatagram(ServerDatagram::TimeSyncReply {
            client_send_us: 0,
            world_time_ms: -1,
            tick: 0,
        }),
    ));
    out.extend(super::revision1::samples());
    out.extend(super::revision2::samples());
    out
}

fn client_samples() -> Vec<(String, Sample)> {
    vec![
        client(
            "hello",
            ClientMessage::Hello {
                protocol_version: 2,
                client: s("pixsim-client 0.1.0"),
            },
        ),
        client(
            "ping",
            ClientMessage::Ping {
                nonce: 7,
                client_time_us: 300,
            },
        ),
        client(
            "ping.max_safe",
            ClientMessage::Ping {
                nonce: MAX_SAFE,
                client_time_us: 0,
            },
        ),
        client(
            "authenticate",
            ClientMessage::Authenticate {
                token: s("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
            },
        ),
        client(
            "create_session.defaults",
            ClientMessage::CreateSession {
                scene: None,
                world: None,
            },
        ),
        client(
            "create_session.scene",
            ClientMessage::CreateSession {
                scene: Some(s("prologue")),
                world: Some(s("default")),
            },
        ),
        client(
            "join_session.fresh",
            ClientMessage::JoinSession {
                session_id: SESSION,
                last_seq: None,
            },
        ),
        client(
            "join_session.resume",
            ClientMessage::JoinSession {
                session_id: SESSION,
                last_seq: Some(1_000),
            },
        ),
        command("choose", 1, GameCommand::Choose { edge: s("e_left") }),
        command(
            "minigame_input",
            128,
            GameCommand::MiniGameInput {
                round: 2,
                nonce: 4_503_599_627_370_495,
                client_time_ms: 15_250,
            },
        ),
        command("leave", 3, GameCommand::Leave),
        client(
            "heartbeat",
            ClientMessage::Heartbeat {
                client_time_ms: NOW_MS,
            },
        ),
    ]
}

fn server_samples() -> Vec<(String, Sample)> {
    vec![
        server(
            "welcome",
            ServerMessage::Welcome {
                protocol_version: 2,
                server_version: s("pixsim-server 0.1.0"),
                server_time_ms: NOW_MS,
            },
        ),
        server(
            "pong",
            ServerMessage::Pong {
                nonce: 7,
                server_time_ms: NOW_MS,
                world_time_ms: Some(12_345),
            },
        ),
        server(
            "pong.no_simulation",
            ServerMessage::Pong {
                nonce: 8,
                server_time_ms: NOW_MS,
                world_time_ms: None,
            },
        ),
        server(
            "error.version_mismatch",
            ServerMessage::Error {
                code: ErrorCode::VersionMismatch,
                message: s("server speaks protocol version 2"),
            },
        ),
        server(
            "error.session_taken_over",
            ServerMessage::Error {
                code: ErrorCode::SessionTakenOver,
                message: s("session taken over by another connection"),
            },
        ),
        server(
            "error.session_not_found",
            ServerMessage::Error {
                code: ErrorCode::SessionNotFound,
                message: s("no such session"),
            },
        ),
        server(
            "authenticated",
            ServerMessage::Authenticated { user_id: USER },
        ),
        server(
            "session_joined.new",
            ServerMessage::SessionJoined {
                session_id: SESSION,
                scene: None,
                next_seq: 0,
                ended: false,
                snapshot: Snapshot::default(),
            },
        ),
        server(
            "session_joined.snapshot",
            ServerMessage::SessionJoined {
                session_id: SESSION,
                scene: Some(s("prologue")),
                next_seq: 1_234,
                ended: false,
                snapshot: full_snapshot(),
            },
        ),
        server(
            "session_joined.ended",
            ServerMessage::SessionJoined {
                session_id: SESSION,
                scene: Some(s("prologue")),
                next_seq: 57,
                ended: true,
                snapshot: Snapshot {
                    ended: Some(s("success")),
                    ..Snapshot::default()
                },
            },
        ),
        server(
            "ack",
            ServerMessage::Ack {
                request_id: 1,
                through_seq: Some(41),
            },
        ),
        server(
            "ack.no_events",
            ServerMessage::Ack {
                request_id: 2,
                through_seq: None,
            },
        ),
        server(
            "rejected",
            ServerMessage::Rejected {
                request_id: 3,
                code: s("edge_not_offered"),
                message: s("edge e_nowhere is not offered"),
            },
        ),
        server(
            "heartbeat",
            ServerMessage::Heartbeat {
                server_time_ms: NOW_MS,
            },
        ),
    ]
}

pub(crate) fn full_snapshot() -> Snapshot {
    Snapshot {
        position: Some(Position {
            scene: s("prologue"),
            node: s("crossroads"),
            kind: s("choice"),
            media: Some(Media {
                url: s("/api/v1/assets/0190b0a4-1111-7000-8000-00000000000a/file"),
                media_type: s("video"),
            }),
            media_pending: false,
            lines: vec![Line {
                id: s("l1"),
                speaker: s("mara"),
                text: s("Left or right? Ça dépend."),
            }],
            prompt: Some(s("Which way?")),
        }),
        choices: vec![
            Choice {
                edge: s("e_left"),
                label: Some(s("Left")),
                available_at_ms: 0,
            },
            Choice {
                edge: s("e_wait"),
                label: None,
                available_at_ms: 30_000,
            },
        ],
        minigame: Some(MiniGamePrompt {
            game: s("reflex"),
            round: 1,
            rounds: 3,
            nonce: 9_007_199_254_740_991,
            opens_at_ms: 15_000,
            closes_at_ms: 15_800,
        }),
        progression: ProgressionView {
            stats: vec![StatValue {
                stat: s("trust"),
                entity: s("mara"),
                axis: s("warmth"),
                value: -3,
            }],
            items: vec![ItemCount {
                item: s("lantern"),
                count: 1,
            }],
            quests: vec![
                QuestView {
                    quest: s("find_the_well"),
                    status: s("active"),
                    objectives: vec![ObjectiveView {
                        objective: s("ask_around"),
                        progress: 1,
                        target: 3,
                        completed: false,
                    }],
                },
                QuestView {
                    quest: s("tutorial"),
                    status: s("completed"),
                    objectives: vec![],
                },
            ],
            vars: vec![VarValue {
                name: s("met_mara"),
                value: s("true"),
            }],
            xp: 250,
            level: 2,
            unlocked: vec![s("chapter_two")],
        },
        ended: None,
        presentation: None,
    }
}
