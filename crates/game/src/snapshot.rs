//! A join's snapshot ([`Joined`]): the session's state as of a sequence number, taken by
//! the tick (`sim::Sessions::view`) and released with the tick's batch, so every event it
//! reflects is committed; for a session that no longer runs (ended), how its log says it
//! ended and the final progression the tick handed over with the end (published to the
//! [`LiveSession`] and stored in `game_sessions.final_view`); for a session just
//! created, the initial progression.

use std::sync::Arc;

use protocol::v2::{
    GameEvent, ItemCount, MiniGamePrompt, ObjectiveView, Position, ProgressionView, QuestView,
    Snapshot, StatValue, VarValue,
};
use tokio::sync::oneshot;

use crate::inbound::SnapshotReply;
use crate::{GameError, GameHandle, Inbound, LiveSession, events};

/// What a client gets on joining: the state reflecting exactly the events with
/// `seq < next_seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// Seq of the next event; the snapshot reflects every event below it.
    pub next_seq: u64,
    /// The session has ended (no more commands).
    pub ended: bool,
    /// The state.
    pub snapshot: Snapshot,
}

impl GameHandle {
    /// The snapshot of a session just created: nothing happened yet (its first events
    /// follow, from 0), so no position, and the initial progression (every variable at
    /// its initial value), which those events then change.
    pub fn created_snapshot(&self) -> Joined {
        let content = self.content.get();
        let fresh = sim::progression_view(
            &domain::narrative::Progress::default(),
            &domain::narrative::Vars::default(),
            &content,
        );
        Joined {
            next_seq: 0,
            ended: false,
            snapshot: Snapshot {
                progression: progression_into_wire(fresh),
                ..Snapshot::default()
            },
        }
    }

    /// The session's snapshot: asked of the tick and answered once everything it
    /// reflects is durable; an ended session's from its log and stored row.
    pub async fn snapshot(&self, live: &Arc<LiveSession>) -> Result<Joined, GameError> {
        if !live.ended() {
            let (reply, rx) = oneshot::channel();
            self.send(Inbound::Snapshot {
                session: live.id,
                reply,
            })?;
            match rx.await.map_err(|_| GameError::ShuttingDown)? {
                SnapshotReply::Live { next_seq, view } => {
                    return Ok(Joined {
                        next_seq,
                        ended: false,
                        snapshot: view_into_wire(*view),
                    });
                }
                // Released after its tick's batch: an end in that tick is published.
                SnapshotReply::NotRunning if live.ended() => {}
                // Unloaded meanwhile (idle): the caller joins again.
                SnapshotReply::NotRunning => return Err(GameError::Busy),
            }
        }
        self.ended_snapshot(live).await
    }

    /// An ended session: how it ended (its `SessionEnded` event) and its final
    /// progression (published with the end, else stored with it; for a session ended
    /// before final progressions were stored, its last stored save's).
    async fn ended_snapshot(&self, live: &LiveSession) -> Result<Joined, GameError> {
        let next_seq = live.next_seq();
        let mut reason = live
            .events_from(0)
            .unwrap_or_default()
            .iter()
            .rev()
            .find_map(|d| end_reason(&d.encoded));
        if reason.is_none() && next_seq > 0 {
            let from = next_seq.saturating_sub(8) as i64;
            let rows = store::game::events_from(&self.pool, live.id, from, 8).await?;
            reason = rows.iter().rev().find_map(|r| end_reason(&r.event));
        }
        let progression = match live.final_view().and_then(|json| parse_final_view(&json)) {
            Some(p) => p,
            None => self.stored_final_progression(live.id).await?,
        };
        Ok(Joined {
            next_seq,
            ended: true,
            snapshot: Snapshot {
                progression,
                ended: Some(reason.unwrap_or_else(|| "aborted".to_owned())),
                ..Snapshot::default()
            },
        })
    }
}

impl GameHandle {
    /// An ended session's final progression as its row stores it (or, without one, the
    /// progression of its last stored save).
    async fn stored_final_progression(&self, id: uuid::Uuid) -> Result<ProgressionView, GameError> {
        let Some(row) = store::game::get(&self.pool, id).await? else {
            return Ok(ProgressionView::default());
        };
        if let Some(p) = row.final_view.as_deref().and_then(parse_final_view) {
            return Ok(p);
        }
        Ok(row
            .save
            .and_then(|json| serde_json::from_str::<domain::narrative::SessionSave>(&json).ok())
            .map(|save| {
                progression_into_wire(sim::progression_view(
                    &save.progress,
                    &save.vars,
                    &self.content.get(),
                ))
            })
            .unwrap_or_default())
    }
}

/// The stored form of a final progression: the JSON of its wire form.
pub(crate) fn final_view_json(p: sim::ViewProgression) -> Option<String> {
    match serde_json::to_string(&progression_into_wire(p)) {
        Ok(json) => Some(json),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a final progression");
            None
        }
    }
}

fn parse_final_view(json: &str) -> Option<ProgressionView> {
    match serde_json::from_str(json) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable final progression; using the last save");
            None
        }
    }
}

fn end_reason(encoded: &[u8]) -> Option<String> {
    if let Ok(GameEvent::SessionEnded { reason }) = postcard::from_bytes::<GameEvent>(encoded) {
        Some(reason)
    } else {
        None
    }
}

/// The wire form of a live session's view.
pub fn view_into_wire(v: sim::SessionView) -> Snapshot {
    let mut presentation = None;
    let position = v.position.map(|p| {
        presentation = Some(events::presentation_into_wire(p.presentation));
        let (media, media_pending) = match p.media.map(events::media_into_wire) {
            Some(Some(m)) => (Some(m), false),
            Some(None) => (None, true),
            None => (None, false),
        };
        Position {
            scene: p.scene,
            node: p.node,
            kind: p.kind.to_owned(),
            media,
            media_pending,
            lines: p.lines.into_iter().map(events::line).collect(),
            prompt: p.prompt,
        }
    });
    Snapshot {
        position,
        choices: v.choices.into_iter().map(events::choice).collect(),
        minigame: v.minigame.map(|r| MiniGamePrompt {
            game: r.game,
            round: r.round,
            rounds: r.rounds,
            nonce: r.nonce,
            opens_at_ms: r.opens_at_ms,
            closes_at_ms: r.closes_at_ms,
        }),
        progression: progression_into_wire(v.progression),
        ended: None,
        presentation,
    }
}

fn progression_into_wire(p: sim::ViewProgression) -> ProgressionView {
    ProgressionView {
        stats: p
            .stats
            .into_iter()
            .map(|(stat, entity, axis, value)| StatValue {
                stat,
                entity,
                axis,
                value,
            })
            .collect(),
        items: p
            .items
            .into_iter()
            .map(|(item, count)| ItemCount { item, count })
            .collect(),
        quests: p
            .quests
            .into_iter()
            .map(|q| QuestView {
                quest: q.quest,
                status: q.status.as_str().to_owned(),
                objectives: q
                    .objectives
                    .into_iter()
                    .map(|(objective, progress, target)| ObjectiveView {
                        objective,
                        progress,
                        target,
                        completed: progress >= target,
                    })
                    .collect(),
            })
            .collect(),
        vars: p
            .vars
            .into_iter()
            .map(|(name, value)| VarValue {
                name,
                value: value.to_string(),
            })
            .collect(),
        xp: p.xp,
        level: p.level,
        unlocked: p.unlocked,
    }
}
