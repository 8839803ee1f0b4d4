//! Maps simulation events and commands to the wire types of `protocol`.

use protocol::v1::{Change, Choice, GameCommand, GameEvent, Line, Media};
use sim::{EndReason, Event};

/// The wire form of a simulation event.
pub fn to_wire(event: &Event) -> GameEvent {
    match event {
        Event::SessionStarted {
            scene,
            content_version,
        } => GameEvent::SessionStarted {
            scene: scene.clone(),
            content_version: content_version.clone(),
        },
        Event::Resumed { scene, node, notes } => GameEvent::Resumed {
            scene: scene.clone(),
            node: node.clone(),
            notes: notes.clone(),
        },
        Event::NodeEntered {
            scene,
            node,
            kind,
            media,
            lines,
            prompt,
        } => GameEvent::NodeEntered {
            scene: scene.clone(),
            node: node.clone(),
            kind: kind.to_string(),
            media: media.as_deref().map(media_to_wire),
            lines: lines
                .iter()
                .map(|l| Line {
                    id: l.id.clone(),
                    speaker: l.speaker.clone(),
                    text: l.text.clone(),
                })
                .collect(),
            prompt: prompt.clone(),
        },
        Event::ChoicesOffered { node, choices } => GameEvent::ChoicesOffered {
            node: node.clone(),
            choices: choices
                .iter()
                .map(|c| Choice {
                    edge: c.edge.clone(),
                    label: c.label.clone(),
                    available_at_ms: c.available_at_ms,
                })
                .collect(),
        },
        Event::StateDelta { changes } => GameEvent::StateDelta {
            changes: changes.iter().map(change).collect(),
        },
        Event::MiniGamePrompt {
            game,
            round,
            rounds,
            nonce,
            opens_at_ms,
            closes_at_ms,
        } => GameEvent::MiniGamePrompt {
            game: game.clone(),
            round: *round,
            rounds: *rounds,
            nonce: *nonce,
            opens_at_ms: *opens_at_ms,
            closes_at_ms: *closes_at_ms,
        },
        Event::MiniGameRound { round, hit, reason } => GameEvent::MiniGameRound {
            round: *round,
            hit: *hit,
            reason: reason.clone(),
        },
        Event::MiniGameResult {
            game,
            outcome,
            score,
            detail,
        } => GameEvent::MiniGameResult {
            game: game.clone(),
            success: *outcome == sim::Outcome::Success,
            score: *score,
            detail: detail.clone(),
        },
        Event::QuestUpdated { quest, status } => GameEvent::QuestUpdated {
            quest: quest.clone(),
            status: status.as_str().to_owned(),
        },
        Event::ObjectiveUpdated {
            quest,
            objective,
            progress,
            target,
            completed,
        } => GameEvent::ObjectiveUpdated {
            quest: quest.clone(),
            objective: objective.clone(),
            progress: *progress,
            target: *target,
            completed: *completed,
        },
        Event::LevelUp { level, xp } => GameEvent::LevelUp {
            level: *level,
            xp: *xp,
        },
        Event::SceneUnlocked { scene } => GameEvent::SceneUnlocked {
            scene: scene.clone(),
        },
        Event::Saved { .. } => GameEvent::Error {
            command: "save".into(),
            code: "internal".into(),
            message: "unexpected save event".into(),
        },
        Event::SessionEnded { reason } => GameEvent::SessionEnded {
            reason: end_reason(*reason).to_owned(),
        },
        Event::Error {
            command,
            reason,
            message,
        } => GameEvent::Error {
            command: command.clone(),
            code: reason_code(reason).to_owned(),
            message: message.clone(),
        },
        Event::MediaReady { scene, node, media } => GameEvent::MediaReady {
            scene: scene.clone(),
            node: node.clone(),
            media: media_to_wire(media),
        },
    }
}

fn media_to_wire(m: &sim::Media) -> Media {
    match m {
        sim::Media::Asset { asset } => Media::Asset {
            asset: asset.clone(),
        },
        sim::Media::Generate {
            operation,
            prompt,
            params,
        } => Media::Generate {
            operation: operation.clone(),
            prompt: prompt.clone(),
            params: params.clone(),
        },
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

fn change(c: &domain::narrative::Change) -> Change {
    use domain::narrative::Change as C;
    match c {
        C::Var { name, value } => Change::Var {
            name: name.clone(),
            value: value.to_string(),
        },
        C::Stat {
            stat,
            entity,
            axis,
            value,
        } => Change::Stat {
            stat: stat.clone(),
            entity: entity.clone(),
            axis: axis.clone(),
            value: *value,
        },
        C::Item { item, count } => Change::Item {
            item: item.clone(),
            count: *count,
        },
        C::Quest { quest, status } => Change::Quest {
            quest: quest.clone(),
            status: status.as_str().to_owned(),
        },
        C::Objective {
            quest,
            objective,
            progress,
            target,
        } => Change::Objective {
            quest: quest.clone(),
            objective: objective.clone(),
            progress: *progress,
            target: *target,
        },
        C::Xp { xp } => Change::Xp { xp: *xp },
        C::Level { level } => Change::Level { level: *level },
        C::Unlocked { scene } => Change::Unlocked {
            scene: scene.clone(),
        },
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
    }
}
