//! A bot's behaviour: what it knows of its session ([`State`]: the offered choices,
//! an open reflex prompt, the command in flight), what it does next ([`Plan`]: a
//! random revealed choice after a think time, a reflex press after a reaction time, a
//! new session at an ending), and its world clock estimate for reflex stamps.

use std::time::{Duration, Instant};

use protocol::v2::{EventBody, GameEvent, ServerMessage};
use rand::Rng;

use super::BotConfig;
use super::report::BotStats;
use crate::TimeSync;

/// What a bot knows of its session.
#[derive(Default)]
pub(super) struct State {
    /// Offered choices: edge and the local instant it is revealed.
    choices: Vec<(String, Instant)>,
    pub(super) prompt: Option<(u32, u64, Instant)>,
    pub(super) ended: bool,
    pub(super) inflight: Option<Inflight>,
    pub(super) next_request: u64,
    pub(super) last_sent: Option<Instant>,
}

impl State {
    pub(super) fn on_message(
        &mut self,
        msg: ServerMessage,
        clock: &mut Clock,
        stats: &mut BotStats,
    ) {
        let received = Instant::now();
        match msg {
            ServerMessage::Event { at_ms, event, .. } => {
                clock.saw(at_ms);
                self.timed(at_ms, received, clock, stats);
                // An event of a newer server is skipped.
                if let EventBody::Known(event) = event {
                    self.on_event(event, at_ms, received, stats);
                }
            }
            ServerMessage::Ack { request_id, .. } => self.answered(request_id, None, stats),
            ServerMessage::Rejected {
                request_id, code, ..
            } => self.answered(request_id, Some(code), stats),
            ServerMessage::Welcome { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::Error { .. }
            | ServerMessage::Authenticated { .. }
            | ServerMessage::SessionJoined { .. }
            | ServerMessage::Heartbeat { .. } => {}
        }
    }

    /// The first event after a command: its command→event latency, and where the time
    /// went on the server's clock when the bot is time-synced.
    fn timed(&mut self, at_ms: i64, received: Instant, clock: &Clock, stats: &mut BotStats) {
        if let Some(f) = self.inflight.as_mut()
            && !f.evented
        {
            f.evented = true;
            stats.to_event.push(micros(received - f.sent));
            if let Some(sync) = &clock.sync {
                stats
                    .until_tick
                    .push((at_ms - sync.server_ms_at(f.sent)) * 1000);
                stats
                    .tick_to_event
                    .push((sync.server_ms_at(received) - at_ms) * 1000);
            }
        }
    }

    /// What an event changes in the bot's view of its session.
    fn on_event(&mut self, event: GameEvent, at_ms: i64, received: Instant, stats: &mut BotStats) {
        match event {
            GameEvent::NodeEntered { .. } => {
                self.choices.clear();
                self.prompt = None;
            }
            GameEvent::ChoicesOffered { choices, .. } => {
                self.choices = choices
                    .into_iter()
                    .map(|ch| {
                        let wait = ch.available_at_ms.saturating_sub(at_ms).max(0);
                        let wait = u64::try_from(wait).unwrap_or(0);
                        (ch.edge, received + Duration::from_millis(wait))
                    })
                    .collect();
            }
            GameEvent::MiniGamePrompt { round, nonce, .. } => {
                self.prompt = Some((round, nonce, received));
            }
            GameEvent::MiniGameRound { hit, .. } => {
                self.prompt = None;
                if hit {
                    stats.reflex.1 += 1;
                }
            }
            GameEvent::SessionEnded { .. } => {
                self.ended = true;
                self.choices.clear();
                self.prompt = None;
                stats.finished += 1;
            }
            GameEvent::SessionStarted { .. }
            | GameEvent::Resumed { .. }
            | GameEvent::PlaybackStep { .. }
            | GameEvent::MediaReady { .. }
            | GameEvent::MediaProgress { .. }
            | GameEvent::StateDelta { .. }
            | GameEvent::MiniGameResult { .. }
            | GameEvent::QuestUpdated { .. }
            | GameEvent::ObjectiveUpdated { .. }
            | GameEvent::LevelUp { .. }
            | GameEvent::SceneUnlocked { .. }
            | GameEvent::Error { .. } => {}
        }
    }

    fn answered(&mut self, request_id: u64, rejected: Option<String>, stats: &mut BotStats) {
        let Some(f) = self.inflight.take_if(|f| f.id == request_id) else {
            return;
        };
        let took = micros(f.sent.elapsed());
        if !f.evented {
            // Nothing was caused (a rejection): the answer is the first news.
            stats.to_event.push(took);
        }
        stats.to_ack.push(took);
        stats.commands += 1;
        if f.reflex {
            stats.reflex.0 += 1;
        }
        if let Some(code) = rejected {
            *stats.rejected.entry(code).or_default() += 1;
        }
    }

    /// The next thing to do and when, unless waiting on the server.
    pub(super) fn plan(&self, cfg: &BotConfig) -> Option<(Plan, Instant)> {
        if self.inflight.is_some() {
            return None;
        }
        if self.ended {
            return Some((Plan::NewSession, Instant::now()));
        }
        if let Some((round, nonce, at)) = self.prompt {
            return Some((Plan::React(round, nonce), at + uniform(cfg.reaction)));
        }
        if self.choices.is_empty() {
            return None;
        }
        let i = rand::rng().random_range(0..self.choices.len());
        let (edge, revealed) = &self.choices[i];
        let base = (*revealed).max(Instant::now());
        Some((Plan::Choose(edge.clone()), base + uniform(cfg.think)))
    }
}

/// Whether `event` changes what the bot plans to do (a planned action is dropped).
pub(super) fn replans(event: &GameEvent) -> bool {
    match event {
        GameEvent::NodeEntered { .. }
        | GameEvent::ChoicesOffered { .. }
        | GameEvent::MiniGamePrompt { .. }
        | GameEvent::MiniGameRound { .. }
        | GameEvent::SessionEnded { .. } => true,
        GameEvent::SessionStarted { .. }
        | GameEvent::Resumed { .. }
        | GameEvent::PlaybackStep { .. }
        | GameEvent::MediaReady { .. }
        | GameEvent::MediaProgress { .. }
        | GameEvent::StateDelta { .. }
        | GameEvent::MiniGameResult { .. }
        | GameEvent::QuestUpdated { .. }
        | GameEvent::ObjectiveUpdated { .. }
        | GameEvent::LevelUp { .. }
        | GameEvent::SceneUnlocked { .. }
        | GameEvent::Error { .. } => false,
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn uniform(range: (Duration, Duration)) -> Duration {
    let (lo, hi) = range;
    if hi <= lo {
        return lo;
    }
    rand::rng().random_range(lo..=hi)
}

/// The bot's estimate of the server's world clock (for reflex input stamps).
#[derive(Default)]
pub(super) struct Clock {
    pub(super) sync: Option<TimeSync>,
    anchor: Option<(i64, Instant)>,
}

impl Clock {
    /// A clock from a time sync, if one succeeded.
    pub(super) fn new(sync: Option<TimeSync>) -> Clock {
        Clock { sync, anchor: None }
    }

    pub(super) fn now(&self) -> i64 {
        if let Some(s) = &self.sync {
            return s.server_now_ms();
        }
        self.anchor.map_or(0, |(ms, at)| {
            ms + i64::try_from(at.elapsed().as_millis()).unwrap_or(0)
        })
    }

    fn saw(&mut self, at_ms: i64) {
        if self.sync.is_none() && self.anchor.is_none_or(|_| at_ms > self.now()) {
            self.anchor = Some((at_ms, Instant::now()));
        }
    }
}

/// What the bot will do next, and when.
pub(super) enum Plan {
    Choose(String),
    React(u32, u64),
    NewSession,
}

/// A command waiting for its answer.
pub(super) struct Inflight {
    pub(super) id: u64,
    pub(super) sent: Instant,
    pub(super) evented: bool,
    pub(super) reflex: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use protocol::v2::Choice;

    use super::*;
    use crate::{Target, Trust};

    fn event(at_ms: i64, event: GameEvent) -> ServerMessage {
        ServerMessage::Event {
            seq: 0,
            at_ms,
            event: event.into(),
        }
    }

    #[test]
    fn a_bot_chooses_an_offered_edge_and_times_its_answer() {
        let target = Target::Quic {
            addr: "127.0.0.1:1".parse().unwrap(),
            server_name: "localhost".into(),
            trust: Trust::Fingerprint(String::new()),
        };
        let mut cfg = BotConfig::new("http://h", target);
        cfg.think = (Duration::ZERO, Duration::ZERO);
        let (mut state, mut clock, mut stats) =
            (State::default(), Clock::new(None), BotStats::default());
        assert!(state.plan(&cfg).is_none());
        let offer = GameEvent::ChoicesOffered {
            node: "n".into(),
            choices: vec![Choice {
                edge: "go".into(),
                label: None,
                available_at_ms: 100,
            }],
        };
        state.on_message(event(100, offer), &mut clock, &mut stats);
        let Some((Plan::Choose(edge), _)) = state.plan(&cfg) else {
            panic!("expected a choice");
        };
        assert_eq!(edge, "go");
        state.inflight = Some(Inflight {
            id: 7,
            sent: Instant::now(),
            evented: false,
            reflex: false,
        });
        assert!(state.plan(&cfg).is_none(), "one command at a time");
        let node = GameEvent::SessionEnded {
            reason: "success".into(),
        };
        state.on_message(event(200, node), &mut clock, &mut stats);
        state.on_message(
            ServerMessage::Ack {
                request_id: 7,
                through_seq: None,
            },
            &mut clock,
            &mut stats,
        );
        assert_eq!(
            (stats.commands, stats.finished, stats.to_event.len()),
            (1, 1, 1)
        );
        assert_eq!(stats.to_ack.len(), 1);
        assert!(matches!(state.plan(&cfg), Some((Plan::NewSession, _))));
        // Without a time sync the clock follows the events.
        assert!(clock.now() >= 200);
    }

    #[test]
    fn only_events_that_change_the_options_replan() {
        assert!(replans(&GameEvent::SessionEnded {
            reason: "left".into()
        }));
        assert!(!replans(&GameEvent::LevelUp { level: 2, xp: 10 }));
    }
}
