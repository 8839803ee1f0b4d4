//! Maps simulation events and commands to the wire types of `protocol`.

use protocol::v2::{
    Change, Choice, GameCommand, GameEvent, Hotspot, Line, Media, Playback, PlaybackStep,
    Presentation,
};
use sim::{EndReason, Event};

/// The wire form of a simulation event (moved, not copied: the tick hands every event
/// over once).
pub fn into_wire(event: Event) -> GameEvent {
    match event {
        Event::SessionStarted {
            scene,
            content_version,
        } => GameEvent::SessionStarted {
            scene,
            content_version,
        },
        Event::Resumed { scene, node, notes } => GameEvent::Resumed { scene, node, notes },
        Event::NodeEntered {
            scene,
            node,
            kind,
            media,
            lines,
            prompt,
            presentation,
        } => {
            let (media, media_pending) = match media.map(|m| media_into_wire(*m)) {
                Some(Some(m)) => (Some(m), false),
                Some(None) => (None, true),
                None => (None, false),
            };
            GameEvent::NodeEntered {
                scene,
                node,
                kind: kind.to_string(),
                media,
                media_pending,
                lines: lines.into_iter().map(line).collect(),
                prompt,
                presentation: presentation
                    .map_or_else(Presentation::default, |p| presentation_into_wire(*p)),
            }
        }
        Event::ChoicesOffered { node, choices } => GameEvent::ChoicesOffered {
            node,
            choices: choices.into_iter().map(choice).collect(),
        },
        Event::StateDelta { changes } => GameEvent::StateDelta {
            changes: changes.into_iter().map(change).collect(),
        },
        Event::MiniGamePrompt {
            game,
            round,
            rounds,
            nonce,
            opens_at_ms,
            closes_at_ms,
        } => GameEvent::MiniGamePrompt {
            game,
            round,
            rounds,
            nonce,
            opens_at_ms,
            closes_at_ms,
        },
        Event::MiniGameRound { round, hit, reason } => {
            GameEvent::MiniGameRound { round, hit, reason }
        }
        Event::MiniGameResult {
            game,
            outcome,
            score,
            detail,
        } => GameEvent::MiniGameResult {
            game,
            success: outcome == sim::Outcome::Success,
            score,
            detail,
        },
        Event::QuestUpdated { quest, status } => GameEvent::QuestUpdated {
            quest,
            status: status.as_str().to_owned(),
        },
        Event::ObjectiveUpdated {
            quest,
            objective,
            progress,
            target,
            completed,
        } => GameEvent::ObjectiveUpdated {
            quest,
            objective,
            progress,
            target,
            completed,
        },
        Event::LevelUp { level, xp } => GameEvent::LevelUp { level, xp },
        Event::SceneUnlocked { scene } => GameEvent::SceneUnlocked { scene },
        Event::Saved { .. } => unexpected_save(),
        Event::SessionEnded { reason } => GameEvent::SessionEnded {
            reason: end_reason(reason).to_owned(),
        },
        Event::Error {
            command,
            reason,
            message,
        } => GameEvent::Error {
            command,
            code: reason_code(&reason).to_owned(),
            message,
        },
        Event::PlaybackStep { node, step } => GameEvent::PlaybackStep { node, step },
        Event::MediaProgress {
            scene,
            node,
            progress,
            queue_position,
            estimated_start_unix_ms,
        } => GameEvent::MediaProgress {
            scene,
            node,
            progress,
            queue_position,
            estimated_start_unix_ms,
        },
        Event::MediaReady { scene, node, media } => GameEvent::MediaReady {
            scene,
            node,
            media: media_into_wire(*media).unwrap_or_else(|| Media {
                url: String::new(),
                media_type: String::new(),
            }),
        },
    }
}

/// `Saved` is the simulation's own, never sent (the tick drops it before encoding);
/// if one got here, the client sees an internal error rather than a save.
fn unexpected_save() -> GameEvent {
    GameEvent::Error {
        command: "save".into(),
        code: "internal".into(),
        message: "unexpected save event".into(),
    }
}

/// The wire form of a node's presentation (the same fields, field by field).
pub fn presentation_into_wire(p: sim::Presentation) -> Presentation {
    Presentation {
        playback: match p.playback {
            sim::Playback::Normal => Playback::Normal,
            sim::Playback::Loop { start_ms, end_ms } => Playback::Loop { start_ms, end_ms },
            sim::Playback::Steps { steps, current } => Playback::Steps {
                steps: steps
                    .into_iter()
                    .map(|s| PlaybackStep {
                        label: s.label,
                        start_ms: s.start_ms,
                        end_ms: s.end_ms,
                        minigame: s.minigame,
                    })
                    .collect(),
                current,
            },
        },
        skippable: p.skippable,
        loopable: p.loopable,
        hotspots: p
            .hotspots
            .into_iter()
            .map(|h| Hotspot {
                id: h.id,
                edge: h.edge,
                label: h.label,
                x: h.x,
                y: h.y,
                w: h.w,
                h: h.h,
            })
            .collect(),
        group: p.group,
    }
}

pub(crate) fn line(l: domain::narrative::Line) -> Line {
    Line {
        id: l.id,
        speaker: l.speaker,
        text: l.text,
    }
}

pub(crate) fn choice(c: sim::Choice) -> Choice {
    Choice {
        edge: c.edge,
        label: c.label,
        available_at_ms: c.available_at_ms,
    }
}

/// The wire form of a node's media: a URL on the server's HTTP origin, or `None` while
/// it is being generated. A library asset or clip (named by its id) is served by
/// `/api/v1/assets/{id}/file` and is a video (every generation operation makes one; a
/// clip is cut from a video), or by `/api/v1/assets/{id}/variants/{name}` when the node
/// prefers a rendition (`poster` is an image); a
/// scene's file (`assets/door.mp4`) by its own path, its type read from its extension.
pub fn media_into_wire(m: sim::Media) -> Option<Media> {
    match m {
        sim::Media::Asset { asset, variant } => Some(match uuid::Uuid::try_parse(&asset) {
            Ok(id) => match variant {
                // A rendition of the library asset (made on first request, cached).
                Some(v) => Media {
                    media_type: if v == "poster" { "image" } else { "video" }.into(),
                    url: format!("/api/v1/assets/{id}/variants/{v}"),
                },
                None => Media {
                    url: format!("/api/v1/assets/{id}/file"),
                    media_type: "video".into(),
                },
            },
            Err(_) => Media {
                media_type: media_type_of(&asset).into(),
                url: if asset.starts_with("https://") || asset.starts_with("http://") {
                    asset
                } else {
                    format!("/{}", asset.trim_start_matches('/'))
                },
            },
        }),
        sim::Media::Generate { .. } => None,
    }
}

/// `video`, `image` or `audio`, by a file name's extension (`video` when unknown).
pub fn media_type_of(path: &str) -> &'static str {
    let ext = path
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "avif" => "image",
        "mp3" | "ogg" | "oga" | "wav" | "flac" | "m4a" | "opus" => "audio",
        _ => "video",
    }
}

/// `success`, `failure`, `neutral`, `returned`, `left`, `aborted`.
pub fn end_reason(r: EndReason) -> &'static str {
    match r {
        EndReason::End(domain::narrative::EndOutcome::Success) => "success",
        EndReason::End(domain::narrative::EndOutcome::Failure) => "failure",
        EndReason::End(domain::narrative::EndOutcome::Neutral) => "neutral",
        EndReason::Returned => "returned",
        EndReason::Left => "left",
        EndReason::Aborted => "aborted",
    }
}

/// Machine-readable code of a rejection.
pub fn reason_code(r: &sim::ErrorReason) -> &'static str {
    use sim::ErrorReason::*;
    match r {
        UnknownSession => "unknown_session",
        SessionExists => "session_exists",
        UnknownScene { .. } => "unknown_scene",
        SceneLocked { .. } => "scene_locked",
        EdgeNotOffered { .. } => "edge_not_offered",
        ConditionFalse { .. } => "condition_false",
        NotRevealed { .. } => "not_revealed",
        Cooldown { .. } => "cooldown",
        WrongState { .. } => "wrong_state",
        StaleInput { .. } => "stale_input",
        SaveRejected { .. } => "save_rejected",
        Runtime { .. } => "runtime",
    }
}

fn change(c: domain::narrative::Change) -> Change {
    use domain::narrative::Change as C;
    match c {
        C::Var { name, value } => Change::Var {
            name,
            value: value.to_string(),
        },
        C::Stat {
            stat,
            entity,
            axis,
            value,
        } => Change::Stat {
            stat,
            entity,
            axis,
            value,
        },
        C::Item { item, count } => Change::Item { item, count },
        C::Quest { quest, status } => Change::Quest {
            quest,
            status: status.as_str().to_owned(),
        },
        C::Objective {
            quest,
            objective,
            progress,
            target,
        } => Change::Objective {
            quest,
            objective,
            progress,
            target,
        },
        C::Xp { xp } => Change::Xp { xp },
        C::Level { level } => Change::Level { level },
        C::Unlocked { scene } => Change::Unlocked { scene },
    }
}

/// The simulation command for a wire command.
pub fn to_sim(c: GameCommand) -> sim::Command {
    match c {
        GameCommand::Choose { edge } => sim::Command::Choose { edge },
        GameCommand::MiniGameInput {
            round,
            nonce,
            client_time_ms,
        } => sim::Command::MiniGameInput {
            round,
            nonce,
            client_time_ms,
        },
        GameCommand::Leave => sim::Command::Leave,
        GameCommand::Continue => sim::Command::Continue,
    }
}
