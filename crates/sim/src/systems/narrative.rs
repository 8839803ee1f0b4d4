//! The narrative step (the `Narrative` set): each session with work this tick runs it, in
//! routing order. A runtime failure aborts the session.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use crate::components::{Phase, SessionQuery};
use crate::cx::{Cx, Res as StepRes, S, abort, wrong_state};
use crate::minigame::MiniGames;
use crate::protocol::{Command, EndReason, ErrorReason, Event};
use crate::resources::{Job, MediaLibrary, SimConfig, SimContent, Staging, StepKind, Timers, Work};
use crate::worlds::WorldTime;
use crate::{advance, choices, minigame, playback, save};

#[allow(clippy::too_many_arguments)]
pub(super) fn step_sessions(
    mut work: ResMut<Work>,
    mut q: Query<SessionQuery>,
    mut staging: ResMut<Staging>,
    mut timers: ResMut<Timers>,
    content: Res<SimContent>,
    cfg: Res<SimConfig>,
    time: WorldTime,
    (media, games, step): (Res<MediaLibrary>, Res<MiniGames>, Res<StepKind>),
) {
    let content = Arc::clone(&content.0);
    for (entity, _, job) in work.0.drain(..) {
        let Ok(mut s) = q.get_mut(entity) else {
            continue;
        };
        let (world, now) = time.at(&s.pos.scene);
        let mut cx = Cx {
            content: &content,
            cfg: &cfg,
            now,
            ahead_ms: step.ahead_ms(cfg.tick_ms),
            world,
            games: &games,
            id: s.session.id,
            entity,
            staging: &mut staging,
            timers: &mut timers,
            media: &media,
        };
        let s = &mut s;
        if *s.phase == Phase::Ended {
            if let Job::Command(c) = &job {
                cx.reject(c.name(), wrong_state(c.name(), Phase::Ended));
            }
            continue;
        }
        let (label, result) = run_job(s, &mut cx, job);
        if let Err(detail) = result {
            abort(s, &mut cx, label, detail);
        }
    }
}

/// Runs one unit of work; returns its label (for a runtime error) and its result.
fn run_job(s: S<'_, '_, '_>, cx: &mut Cx<'_>, job: Job) -> (&'static str, StepRes<()>) {
    match job {
        Job::Begin => {
            cx.emit(Event::SessionStarted {
                scene: s.pos.scene.clone(),
                content_version: cx.content.version.clone(),
            });
            ("start", advance::run(s, cx, true))
        }
        Job::Resumed { notes, wait } => ("resume", save::resumed(s, cx, notes, wait)),
        Job::Timer { token, timer } => {
            let next = minigame::on_timer(s, cx, token, timer);
            ("timer", next.and_then(|next| advance::after(s, cx, next)))
        }
        Job::Command(Command::Choose { edge }) => {
            let next = choices::choose(s, cx, &edge);
            ("choose", next.and_then(|next| advance::after(s, cx, next)))
        }
        Job::Command(Command::MiniGameInput {
            round,
            nonce,
            client_time_ms,
        }) => {
            let next = minigame::on_input(s, cx, round, nonce, client_time_ms);
            (
                "minigame_input",
                next.and_then(|next| advance::after(s, cx, next)),
            )
        }
        Job::Command(Command::Continue) => {
            let next = playback::proceed(s, cx);
            (
                "continue",
                next.and_then(|next| advance::after(s, cx, next)),
            )
        }
        Job::Command(Command::Save) => {
            let view = save::SaveView::from(&*s);
            match save::snapshot(&view, cx.now, &cx.content.version) {
                Ok(save) => cx.emit(Event::Saved {
                    save: Box::new(save),
                }),
                Err(reason) => cx.reject("save", reason),
            }
            ("save", Ok(()))
        }
        Job::Command(Command::Leave) => {
            *s.phase = Phase::Ended;
            s.minigame.0 = None;
            cx.emit(Event::SessionEnded {
                reason: EndReason::Left,
            });
            cx.staging.ended.push((cx.id, cx.entity));
            ("leave", Ok(()))
        }
        // Routing answers these itself; a session never gets them as work.
        Job::Command(c @ (Command::Start { .. } | Command::Resume { .. })) => {
            cx.reject(c.name(), ErrorReason::SessionExists);
            ("start", Ok(()))
        }
    }
}
