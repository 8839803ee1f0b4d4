//! The hand-over between the tick and the persister: what a tick leaves to write
//! ([`Pending`]), what waits in hand-over order ([`Waiting`], urgent part first) and the
//! [`Slot`] holding it, with the counters of ticks handed over and done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::inbound::SnapshotReply;
use crate::{CommandOutcome, Delivered};

/// What the persister still has to write, filled by the tick.
#[derive(Default)]
pub(crate) struct Pending {
    pub sessions: HashMap<Uuid, store::game::SessionWrite>,
    pub events: Vec<store::game::EventWrite>,
    pub trim: Vec<(Uuid, i64)>,
    pub deliveries: Vec<(Uuid, Arc<Delivered>)>,
    pub ended: Vec<Uuid>,
    /// Answers to commands, by session.
    pub acks: Vec<(Uuid, oneshot::Sender<CommandOutcome>, CommandOutcome)>,
    /// Snapshot answers, released after everything before them is committed.
    pub snapshots: Vec<(oneshot::Sender<SnapshotReply>, SnapshotReply)>,
    /// Sessions the tick unloaded (their last save is in `sessions`).
    pub unloaded: Vec<Uuid>,
    /// Sessions the tick refused to unload (they were busy).
    pub unload_refused: Vec<Uuid>,
    /// When the oldest hand-over in here was made.
    pub handed_at: Option<std::time::Instant>,
    /// The ticks handed over in all (`Slot::pushed`) once the last tick in here was
    /// complete: committed, this is how far `Slot::done` may go. `None` for a tick's
    /// urgent part, which completes no tick.
    pub completes: Option<u64>,
}

impl Pending {
    /// Appends `later` (handed over after everything in here).
    pub(crate) fn merge(&mut self, mut later: Pending) {
        for (id, w) in later.sessions {
            match self.sessions.get_mut(&id) {
                Some(old) => {
                    if w.save.is_some() {
                        old.save = w.save;
                    }
                    old.ended |= w.ended;
                    if w.final_view.is_some() {
                        old.final_view = w.final_view;
                    }
                    old.next_seq = old.next_seq.max(w.next_seq);
                }
                None => {
                    self.sessions.insert(id, w);
                }
            }
        }
        self.events.append(&mut later.events);
        self.trim.append(&mut later.trim);
        self.deliveries.append(&mut later.deliveries);
        self.ended.append(&mut later.ended);
        self.acks.append(&mut later.acks);
        self.snapshots.append(&mut later.snapshots);
        self.unloaded.append(&mut later.unloaded);
        self.unload_refused.append(&mut later.unload_refused);
        self.handed_at = self.handed_at.or(later.handed_at);
        self.completes = self.completes.max(later.completes);
    }

    /// Nothing to write (snapshot answers need no write: they are released in order).
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.events.is_empty()
            && self.acks.is_empty()
            && self.trim.is_empty()
            && self.unloaded.is_empty()
            && self.unload_refused.is_empty()
    }
}

/// What waits for the persister, in hand-over order: the urgent part of a tick, kept
/// apart while the persister has nothing older to write, then everything handed over
/// after it, merged (group commit).
#[derive(Default)]
pub(crate) struct Waiting {
    urgent: Option<Pending>,
    rest: Pending,
}

impl Waiting {
    /// Takes the oldest hand-over: the urgent one alone, else all the rest.
    pub(crate) fn take(&mut self) -> Option<Pending> {
        self.urgent.take().or_else(|| {
            self.rest
                .handed_at
                .is_some()
                .then(|| std::mem::take(&mut self.rest))
        })
    }

    /// Nothing to write (snapshot answers need no write: they are released in order).
    pub(crate) fn is_empty(&self) -> bool {
        self.urgent.is_none() && self.rest.handed_at.is_none()
    }

    /// Queues a hand-over of the tick. `urgent`: the tick's first part (its sessions'
    /// commands waited longest); it stays a batch of its own unless something older
    /// than it is waiting, after which it must be written.
    pub(crate) fn hand_over(&mut self, mut pending: Pending, urgent: bool) {
        let now = std::time::Instant::now();
        let into = if urgent && self.rest.handed_at.is_none() {
            match &mut self.urgent {
                Some(u) => u,
                None => {
                    pending.handed_at = Some(now);
                    self.urgent = Some(pending);
                    return;
                }
            }
        } else {
            &mut self.rest
        };
        // Empty (the usual case; every hand-over sets `handed_at`): this one moves in
        // whole, with no second copy of its vectors.
        if into.handed_at.is_none() {
            pending.handed_at = Some(now);
            *into = pending;
        } else {
            into.merge(pending);
        }
    }
}

/// Hand-over point between the tick (producer) and the persister (consumer).
pub(crate) struct Slot {
    pub(crate) pending: Mutex<Waiting>,
    pub(crate) notify: tokio::sync::Notify,
    /// Ticks handed over / committed and published.
    pub(crate) pushed: AtomicU64,
    pub(crate) done: AtomicU64,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Slot {
            pending: Mutex::new(Waiting::default()),
            notify: tokio::sync::Notify::new(),
            pushed: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn backlog(&self) -> u64 {
        self.pushed
            .load(Ordering::Acquire)
            .saturating_sub(self.done.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A hand-over holding one event of `session` with `seq`.
    fn part(session: u128, seq: i64) -> Pending {
        Pending {
            events: vec![store::game::EventWrite {
                session: Uuid::from_u128(session),
                seq,
                at_ms: 0,
                event: bytes::Bytes::new(),
            }],
            ..Pending::default()
        }
    }

    fn seqs(p: &Pending) -> Vec<(u128, i64)> {
        p.events
            .iter()
            .map(|e| (e.session.as_u128(), e.seq))
            .collect()
    }

    fn completing(mut p: Pending, ticks: u64) -> Pending {
        p.completes = Some(ticks);
        p
    }

    #[test]
    fn an_urgent_part_handed_to_an_idle_persister_is_a_batch_of_its_own() {
        let mut w = Waiting::default();
        assert!(w.is_empty() && w.take().is_none());
        w.hand_over(part(1, 7), true);
        w.hand_over(completing(part(2, 3), 1), false);
        let first = w.take().unwrap();
        assert_eq!(seqs(&first), [(1, 7)]);
        assert_eq!(first.completes, None, "the urgent part completes no tick");
        assert!(first.handed_at.is_some());
        let second = w.take().unwrap();
        assert_eq!(seqs(&second), [(2, 3)]);
        assert_eq!(second.completes, Some(1));
        assert!(w.is_empty() && w.take().is_none());
    }

    #[test]
    fn behind_the_persister_hand_overs_merge_in_order() {
        let mut w = Waiting::default();
        // Tick 1: urgent part apart, the rest waiting.
        w.hand_over(part(1, 0), true);
        w.hand_over(completing(part(2, 0), 1), false);
        // Tick 2 comes before the persister took anything: its urgent part goes after
        // tick 1's rest (session 2 again: its events stay in order), then its own rest.
        w.hand_over(part(2, 1), true);
        w.hand_over(completing(part(3, 0), 2), false);
        assert_eq!(seqs(&w.take().unwrap()), [(1, 0)]);
        let merged = w.take().unwrap();
        assert_eq!(seqs(&merged), [(2, 0), (2, 1), (3, 0)]);
        assert_eq!(merged.completes, Some(2));
        assert!(w.take().is_none());
    }

    #[test]
    fn an_urgent_part_never_overtakes_an_older_rest() {
        let mut w = Waiting::default();
        // The persister took tick 1's urgent part; its rest waits.
        w.hand_over(part(1, 0), true);
        w.hand_over(completing(part(1, 1), 1), false);
        assert_eq!(seqs(&w.take().unwrap()), [(1, 0)]);
        // Tick 2's urgent part comes while tick 1's rest still waits: after it.
        w.hand_over(part(1, 2), true);
        let next = w.take().unwrap();
        assert_eq!(seqs(&next), [(1, 1), (1, 2)]);
        assert_eq!(next.completes, Some(1));
        // Once all is taken, an urgent part is apart again.
        w.hand_over(part(4, 0), true);
        w.hand_over(completing(Pending::default(), 2), false);
        assert_eq!(seqs(&w.take().unwrap()), [(4, 0)]);
        assert_eq!(w.take().unwrap().completes, Some(2));
    }
}
