//! Input systems: content reloads, generated media. (The world clocks and due timers are
//! in `crate::worlds`, command routing in `routing`.)

use bevy_ecs::prelude::*;

use crate::components::{Phase, Position, SessionQuery};
use crate::cx::{Cx, abort};
use crate::minigame::MiniGames;
use crate::protocol::{Event, Media, SessionId};
use crate::resources::{
    Inbox, MediaLibrary, SessionIndex, SimConfig, SimContent, Staging, StepKind, Timers,
};
use crate::worlds::WorldTime;
use crate::{choices, nodes, save};

/// Records generated media and pushes it to the sessions standing in a node with that
/// spec; passes a pending spec's progress to them too.
///
/// Media becomes ready rarely (once per spec) and progress is throttled by the sender,
/// so this scans the sessions when there is some; on every other tick it returns at once.
pub(super) fn deliver_media(
    mut inbox: ResMut<Inbox>,
    mut library: ResMut<MediaLibrary>,
    content: Res<SimContent>,
    index: Res<SessionIndex>,
    sessions: Query<(&Position, &Phase)>,
    mut staging: ResMut<Staging>,
) {
    if inbox.media.is_empty() && inbox.media_progress.is_empty() {
        return;
    }
    let ready = std::mem::take(&mut inbox.media);
    let progress = std::mem::take(&mut inbox.media_progress);
    // Live sessions in id order (deterministic output), listed only if some node shows a
    // spec concerned.
    let mut ids: Option<Vec<(SessionId, Entity)>> = None;
    let mut push = |targets: &[(&str, &str)], event: &dyn Fn(&str, &str) -> Event| {
        let ids = ids.get_or_insert_with(|| {
            let mut v: Vec<_> = index.0.iter().map(|(id, e)| (*id, *e)).collect();
            v.sort();
            v
        });
        for (id, entity) in ids.iter() {
            let Ok((pos, phase)) = sessions.get(*entity) else {
                continue;
            };
            if *phase != Phase::Ended && targets.contains(&(pos.scene.as_str(), pos.node.as_str()))
            {
                staging.events.push((*id, event(&pos.scene, &pos.node)));
            }
        }
    };
    for m in ready {
        let key = (m.operation.clone(), m.prompt.clone(), m.params.clone());
        if library.0.get(&key) == Some(&m.asset) {
            continue;
        }
        library.0.insert(key, m.asset.clone());
        let targets = spec_nodes(&content, &m.operation, &m.prompt, &m.params);
        if targets.is_empty() {
            continue;
        }
        push(&targets, &|scene, node| Event::MediaReady {
            scene: scene.to_owned(),
            node: node.to_owned(),
            media: Box::new(Media::Asset {
                asset: m.asset.clone(),
                // The node's preferred rendition of its generated media.
                variant: match content.0.node(scene, node).map(|n| &n.kind) {
                    Some(domain::narrative::NodeKind::Media { variant, .. }) => variant.clone(),
                    _ => None,
                },
            }),
        });
    }
    for p in progress {
        // Progress of a spec already shown is stale.
        if library.get(&p.operation, &p.prompt, &p.params).is_some() {
            continue;
        }
        let targets = spec_nodes(&content, &p.operation, &p.prompt, &p.params);
        if targets.is_empty() {
            continue;
        }
        push(&targets, &|scene, node| Event::MediaProgress {
            scene: scene.to_owned(),
            node: node.to_owned(),
            progress: p.progress.min(100),
            queue_position: p.queue_position,
            estimated_start_unix_ms: p.estimated_start_unix_ms,
        });
    }
}

/// The (scene, node) pairs whose media is this spec (content is small; sessions may be
/// many).
fn spec_nodes<'c>(
    content: &'c SimContent,
    operation: &str,
    prompt: &str,
    params: &str,
) -> Vec<(&'c str, &'c str)> {
    content
        .0
        .scenes
        .values()
        .flat_map(|scene| scene.nodes.iter().map(move |n| (scene, n)))
        .filter(|(_, n)| {
            nodes::kind(&n.kind, |b| b.generates()).is_some_and(|g| {
                g.operation == operation
                    && g.prompt == prompt
                    && crate::protocol::spec_params(g) == params
            })
        })
        .map(|(scene, n)| (scene.id.as_str(), n.id.as_str()))
        .collect()
}

/// Swaps content; live sessions whose position no longer maps are aborted with a reason.
#[allow(clippy::too_many_arguments)]
pub(super) fn reload_content(
    mut inbox: ResMut<Inbox>,
    mut content: ResMut<SimContent>,
    mut q: Query<SessionQuery>,
    index: Res<SessionIndex>,
    mut staging: ResMut<Staging>,
    mut timers: ResMut<Timers>,
    cfg: Res<SimConfig>,
    time: WorldTime,
    (media, games, step): (Res<MediaLibrary>, Res<MiniGames>, Res<StepKind>),
) {
    let Some(new) = inbox.reload.take() else {
        return;
    };
    let old = std::mem::replace(&mut content.0, new);
    let mut ids: Vec<_> = index.0.iter().map(|(id, e)| (*id, *e)).collect();
    ids.sort();
    for (id, entity) in ids {
        let Ok(mut s) = q.get_mut(entity) else {
            continue;
        };
        let (world, now) = time.at(&s.pos.scene);
        let mut cx = Cx {
            content: &old,
            cfg: &cfg,
            now,
            ahead_ms: step.ahead_ms(cfg.tick_ms),
            world,
            games: &games,
            id,
            entity,
            staging: &mut staging,
            timers: &mut timers,
            media: &media,
        };
        if let Some(reason) = moved_world(&old, &content.0, &s.pos.scene) {
            abort(
                &mut s,
                &mut cx,
                "reload",
                format!("content reloaded: {reason}"),
            );
            continue;
        }
        let Ok(save) = save::snapshot(&save::SaveView::from(&s), cx.now, &old.version) else {
            continue;
        };
        match save::check_save(&save, &content.0) {
            // Keep live state; drop offered choices whose edges disappeared.
            Ok((mapped, _notes)) => match &mapped.wait {
                domain::narrative::SavedWait::Choices { offered } => {
                    let before = s.choices.0.len();
                    s.choices.0.retain(|o| offered.contains(&o.edge));
                    if s.choices.0.len() != before {
                        // Re-offer from the new content so the client sees the current choices.
                        cx.content = &content.0;
                        if let Err(e) = choices::offer(&mut s, &mut cx) {
                            abort(&mut s, &mut cx, "reload", e);
                        }
                    }
                }
                // A running mini-game goes on as it is.
                domain::narrative::SavedWait::MiniGame { .. } => {}
                // A steps playback goes on as it is.
                domain::narrative::SavedWait::Continue => {}
            },
            Err(reason) => {
                let detail = format!("content reloaded: {reason}");
                abort(&mut s, &mut cx, "reload", detail);
            }
        }
    }
}

/// Why a session at `scene` cannot go on after a reload because its world changed (the
/// scene now belongs to another world, whose clock it cannot jump to).
fn moved_world(
    old: &domain::narrative::Content,
    new: &domain::narrative::Content,
    scene: &str,
) -> Option<String> {
    use domain::narrative::world::scene_world;
    let before = old.scene(scene).map(scene_world)?;
    let after = new.scene(scene).map(scene_world)?;
    (before != after)
        .then(|| format!("scene '{scene}' moved from world '{before}' to world '{after}'"))
}
