//! The binary save against the real save function ([`snapshot`], what `Command::Save`
//! answers), on sessions built with every part of a save filled.

#![allow(clippy::unwrap_used)]

use bevy_ecs::prelude::*;
use domain::narrative::SessionSave;

use super::*;
use crate::components::{MiniGameRun, Offered, RoundPhase};

/// A save mid-story with every part filled: call frames with arguments, variables,
/// visits, progression (stats, items, quests), and cooldowns both running and over.
const SAVE: &str = r#"{"version":1,"content_version":"4cbf8d66f77b511f","rng":11400714819323198496,"stack":[{"scene":"gallery","node":"to_vault"},{"scene":"vault","node":"door","args":{"alarm":0,"who":"mara"}}],"elapsed_in_node_ms":150,"wait":{"type":"choices","offered":["try_crack","back_off"]},"vars":{"approach":"charm","clues":["patrol"],"met_mara":true},"visits":{"scenes":{"gallery":1,"vault":1},"nodes":{"gallery":{"arrive":1,"plan":2},"vault":{"door":1}}},"progress":{"stats":{"courage.player.value":4,"relationship.mara.trust":5},"items":{"coin":2,"keycard":1},"quests":{"heist":{"status":"active","objectives":{"get_keycard":1}}},"xp":20,"level":1},"cooldowns":{"gallery/go_study":9750}}"#;

fn spawn(world: &mut World, save: &SessionSave, now: i64, phase: Phase) -> Entity {
    let (bundle, _) = restore(save.clone(), now).unwrap();
    let minigame = (phase == Phase::MiniGame).then(|| MiniGameRun {
        game: "reflex".into(),
        round: 2,
        rounds: 3,
        hits: 1,
        need: 2,
        window_ms: 500,
        phase: RoundPhase::Waiting,
        timer: 7,
    });
    let offered = |edge: &str, reveal_at_ms| Offered {
        edge: edge.into(),
        reveal_at_ms,
    };
    let mut e = world.spawn(bundle);
    e.insert((
        PendingChoices(vec![
            offered("try_crack", now),
            offered("back_off", now + 500),
        ]),
        // One cooldown running (as saved), one over (dropped from saves).
        Cooldowns(
            [
                ("gallery/go_study".to_owned(), now + 9750),
                ("vault/old".to_owned(), now - 1),
            ]
            .into_iter()
            .collect(),
        ),
        ActiveMiniGame(minigame),
        phase,
    ));
    e.id()
}

#[test]
fn the_binary_save_decodes_to_exactly_the_save() {
    let save: SessionSave = serde_json::from_str(SAVE).unwrap();
    let now = 123_456;
    let version = save.content_version.as_str();
    let mut world = World::new();
    let choosing = spawn(&mut world, &save, now, Phase::Choosing);
    let minigame = spawn(&mut world, &save, now, Phase::MiniGame);
    let mut q = world.query::<SaveParts>();
    for e in [choosing, minigame] {
        let v = SaveView::from(q.get(&world, e).unwrap());
        let expected = snapshot(&v, now, version).unwrap();
        let bin = encode_binary(&v, now, version).unwrap();
        assert_eq!(SessionSave::decode_binary(&bin).unwrap(), expected);
    }
    // The choosing session's save is the one it came from (the expired cooldown is
    // dropped), and its JSON for the tables is that save's JSON.
    let v = SaveView::from(q.get(&world, choosing).unwrap());
    let bin = encode_binary(&v, now, version).unwrap();
    let decoded = SessionSave::decode_binary(&bin).unwrap();
    assert_eq!(decoded, save);
    assert_eq!(serde_json::to_string(&decoded).unwrap(), SAVE);
}

#[test]
fn no_save_while_starting_or_ended() {
    let save: SessionSave = serde_json::from_str(SAVE).unwrap();
    let now = 1_000;
    let mut world = World::new();
    let starting = spawn(&mut world, &save, now, Phase::Starting);
    let ended = spawn(&mut world, &save, now, Phase::Ended);
    // In a mini-game phase without a running game: nothing to save either.
    let broken = spawn(&mut world, &save, now, Phase::MiniGame);
    world.entity_mut(broken).insert(ActiveMiniGame(None));
    let mut q = world.query::<SaveParts>();
    for (e, phase) in [
        (starting, "the session is starting"),
        (ended, "the session has ended"),
        (broken, "a mini-game is running"),
    ] {
        let v = SaveView::from(q.get(&world, e).unwrap());
        let refused = ErrorReason::WrongState {
            command: "save".into(),
            state: phase.into(),
        };
        assert_eq!(snapshot(&v, now, "v").unwrap_err(), refused);
        assert_eq!(encode_binary(&v, now, "v").unwrap_err(), refused);
    }
}
