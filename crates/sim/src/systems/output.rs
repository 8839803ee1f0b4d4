//! Output systems: state deltas from the effect journal, progression events, and
//! sequencing into the [`Outbox`] (ended sessions handed over with their final
//! progression, then despawned).

use bevy_ecs::prelude::*;

use crate::components::{Position, Progression, Session, Variables};
use crate::present;
use crate::protocol::{Event, SessionId, SimEvent};
use crate::resources::{Outbox, SessionIndex, SimContent, Staging};
use crate::worlds::WorldTime;

pub(super) fn emit_state_deltas(mut staging: ResMut<Staging>) {
    let staging = &mut *staging;
    staging.deltas.clear();
    if staging.journal.is_empty() {
        return;
    }
    // One delta per run of consecutive changes of a session (a session's work in a tick is
    // processed contiguously), in application order. Changes are moved, not copied.
    let mut journal = std::mem::take(&mut staging.journal).into_iter().peekable();
    while let Some((id, first)) = journal.next() {
        let mut changes = vec![first];
        while let Some((_, c)) = journal.next_if(|(next, _)| *next == id) {
            changes.push(c);
        }
        staging.deltas.push(staging.events.len());
        staging.events.push((id, Event::StateDelta { changes }));
    }
}

pub(super) fn emit_progression(mut staging: ResMut<Staging>) {
    use domain::narrative::Change;
    let staging = &mut *staging;
    let mut out = Vec::new();
    for &i in &staging.deltas {
        let Some((id, Event::StateDelta { changes })) = staging.events.get(i) else {
            continue;
        };
        let mut xp = 0;
        for c in changes {
            let ev = match c {
                Change::Quest { quest, status } => Event::QuestUpdated {
                    quest: quest.clone(),
                    status: *status,
                },
                Change::Objective {
                    quest,
                    objective,
                    progress,
                    target,
                } => Event::ObjectiveUpdated {
                    quest: quest.clone(),
                    objective: objective.clone(),
                    progress: *progress,
                    target: *target,
                    completed: progress >= target,
                },
                Change::Xp { xp: total } => {
                    xp = *total;
                    continue;
                }
                Change::Level { level } => Event::LevelUp { level: *level, xp },
                Change::Unlocked { scene } => Event::SceneUnlocked {
                    scene: scene.clone(),
                },
                Change::Var { .. } | Change::Stat { .. } | Change::Item { .. } => continue,
            };
            out.push((*id, ev));
        }
    }
    staging.events.extend(out);
    staging.deltas.clear();
}

pub(super) fn flush_outbox(
    mut commands: Commands,
    mut staging: ResMut<Staging>,
    mut outbox: ResMut<Outbox>,
    mut index: ResMut<SessionIndex>,
    mut sessions: Query<(&mut Session, &Position)>,
    time: WorldTime,
    finals: (Query<(&Progression, &Variables)>, Res<SimContent>),
) {
    // Last tick's ends were read after it.
    outbox.ended.clear();
    if staging.events.is_empty() && staging.ended.is_empty() {
        return;
    }
    // An event is stamped with its session's world time (the default world's for an
    // error to no live session).
    let default_now = time.default_now();
    // A session's `session_ended` comes after its other events of the tick.
    let staging = &mut *staging;
    let mut ends = Vec::new();
    let mut push = |id: SessionId, event: Event, outbox: &mut Outbox| {
        let (seq, at_ms) = match index.0.get(&id).and_then(|e| sessions.get_mut(*e).ok()) {
            Some((mut s, pos)) => {
                let seq = s.next_seq;
                s.next_seq += 1;
                (seq, time.at(&pos.scene).1)
            }
            None => (0, default_now),
        };
        outbox.events.push(SimEvent {
            session: id,
            seq,
            at_ms,
            event,
        });
    };
    outbox.events.reserve(staging.events.len());
    for (id, event) in staging.events.drain(..) {
        if matches!(event, Event::SessionEnded { .. }) {
            ends.push((id, event));
        } else {
            push(id, event, &mut outbox);
        }
    }
    for (id, event) in ends {
        push(id, event, &mut outbox);
    }
    let (parts, content) = finals;
    for (id, e) in staging.ended.drain(..) {
        // Its final progression, from its components before they go.
        if let Ok((progress, vars)) = parts.get(e) {
            let last = present::progression(&progress.0, &vars.0, &content.0);
            outbox.ended.push((id, last));
        }
        if index.0.get(&id) == Some(&e) {
            index.0.remove(&id);
        }
        if let Ok(mut ec) = commands.get_entity(e) {
            ec.despawn();
        }
    }
}
