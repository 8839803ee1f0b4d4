//! A session's view (`sim::Sessions::view`) and the final progression of an ended one
//! (`sim::Outbox::ended`) agree with a fold of its events: every declared variable is
//! listed, and an end keeps the changes of its last tick.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::system::RunSystemOnce;
use domain::narrative::{Change, Content, Value};
use sim::{Command, Event, SessionId, SimCommand, SimConfig, SimEvent, ViewProgression};

fn demo() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenes");
    Arc::new(content::load_dir(dir).unwrap())
}

const ID: SessionId = SessionId(uuid::Uuid::from_u128(7));

fn cmd(command: Command) -> SimCommand {
    SimCommand {
        session: ID,
        command,
    }
}

/// What a client folding the events holds: the changes' last values.
#[derive(Default)]
struct Folded {
    vars: BTreeMap<String, Value>,
    stats: BTreeMap<(String, String, String), i64>,
    items: BTreeMap<String, u32>,
    xp: i64,
    level: u32,
    unlocked: Vec<String>,
}

impl Folded {
    fn new(content: &Content) -> Self {
        Folded {
            // A fresh session's view: every variable at its initial value.
            vars: content
                .world
                .variables
                .iter()
                .map(|(k, d)| (k.clone(), d.initial()))
                .collect(),
            // ... and every stat axis of every entity carrying it at its default.
            stats: content
                .world
                .stats
                .iter()
                .flat_map(|(stat, def)| {
                    let entities = if def.entities.is_empty() {
                        &content.world.entities
                    } else {
                        &def.entities
                    };
                    entities.iter().flat_map(move |entity| {
                        def.axes.iter().map(move |(axis, ax)| {
                            ((stat.clone(), entity.clone(), axis.clone()), ax.default)
                        })
                    })
                })
                .collect(),
            level: 1,
            ..Default::default()
        }
    }

    fn apply(&mut self, events: &[SimEvent]) {
        for e in events {
            let Event::StateDelta { changes } = &e.event else {
                continue;
            };
            for c in changes.clone() {
                match c {
                    Change::Var { name, value } => {
                        self.vars.insert(name, value);
                    }
                    Change::Stat {
                        stat,
                        entity,
                        axis,
                        value,
                    } => {
                        self.stats.insert((stat, entity, axis), value);
                    }
                    Change::Item { item, count } => {
                        self.items.insert(item, count);
                    }
                    Change::Xp { xp } => self.xp = xp,
                    Change::Level { level } => self.level = level,
                    Change::Unlocked { scene } => self.unlocked.push(scene),
                    Change::Quest { .. } | Change::Objective { .. } => {}
                }
            }
        }
    }

    /// The progression agrees with the fold: every variable and every stat axis.
    fn assert_agrees(&self, p: &ViewProgression) {
        let vars: BTreeMap<String, Value> = p.vars.iter().cloned().collect();
        assert_eq!(vars, self.vars, "vars");
        assert_eq!(p.vars.len(), vars.len(), "each variable once");
        let stats: BTreeMap<(String, String, String), i64> = p
            .stats
            .iter()
            .map(|(s, e, a, v)| ((s.clone(), e.clone(), a.clone()), *v))
            .collect();
        assert_eq!(stats, self.stats, "stats");
        assert_eq!(p.stats.len(), stats.len(), "each axis once");
        let items: Vec<(String, u32)> = self
            .items
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        assert_eq!(p.items, items, "items");
        assert_eq!((p.xp, p.level), (self.xp, self.level));
        let mut unlocked = self.unlocked.clone();
        unlocked.sort();
        assert_eq!(p.unlocked, unlocked);
    }
}

fn view(app: &mut App) -> Option<ViewProgression> {
    app.world_mut()
        .run_system_once(|s: sim::Sessions| s.view(ID).map(|v| v.progression))
        .unwrap()
}

/// Ticks until an event matches `what`, folding the events; returns that tick's.
fn until(app: &mut App, f: &mut Folded, what: impl Fn(&Event) -> bool) -> Vec<SimEvent> {
    for _ in 0..2000 {
        let events = sim::tick(app, []);
        f.apply(&events);
        if events.iter().any(|e| what(&e.event)) {
            return events;
        }
    }
    panic!("never happened");
}

fn offered(edge: &'static str) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::ChoicesOffered { choices, .. } if choices.iter().any(|c| c.edge == edge))
}

fn choose(app: &mut App, f: &mut Folded, edge: &str) -> Vec<SimEvent> {
    // Retried until revealed.
    for _ in 0..200 {
        let events = sim::tick(
            app,
            [cmd(Command::Choose {
                edge: edge.to_owned(),
            })],
        );
        f.apply(&events);
        if !events
            .iter()
            .any(|e| matches!(e.event, Event::Error { .. }))
        {
            return events;
        }
    }
    panic!("{edge} never taken");
}

#[test]
fn views_list_every_variable_and_an_end_hands_over_its_last_tick() {
    let content = demo();
    let mut app = sim::build_app(Arc::clone(&content), SimConfig::default());
    let mut f = Folded::new(&content);
    let events = sim::tick(
        &mut app,
        [cmd(Command::Start {
            scene: None,
            seed: 3,
        })],
    );
    f.apply(&events);
    let fresh = view(&mut app).unwrap();
    assert_eq!(fresh.vars.len(), content.world.variables.len());
    f.assert_agrees(&fresh);

    choose(&mut app, &mut f, "arrive_next");
    choose(&mut app, &mut f, "accept");
    f.assert_agrees(&view(&mut app).unwrap());
    // Sneaking without reacting fails twice: caught twice, the alarm reaches 2 and the
    // session ends as busted in the tick of the last miss.
    choose(&mut app, &mut f, "go_sneak");
    until(&mut app, &mut f, offered("go_sneak"));
    assert_eq!(f.vars.get("alarm"), Some(&Value::Int(1)));
    f.assert_agrees(&view(&mut app).unwrap());
    choose(&mut app, &mut f, "go_sneak");
    let last = until(&mut app, &mut f, |e| {
        matches!(e, Event::SessionEnded { .. })
    });
    assert!(
        last.iter()
            .any(|e| matches!(e.event, Event::StateDelta { .. })),
        "the last tick changed state"
    );
    assert_eq!(f.vars.get("alarm"), Some(&Value::Int(2)));
    assert_eq!(view(&mut app), None, "gone from the simulation");
    let ended = std::mem::take(&mut app.world_mut().resource_mut::<sim::Outbox>().ended);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].0, ID);
    f.assert_agrees(&ended[0].1);
    assert!(
        ended[0]
            .1
            .stats
            .iter()
            .any(|(s, e, a, v)| (s.as_str(), e.as_str(), a.as_str(), *v)
                == ("relationship", "guard", "tension", 40)),
        "{:?}",
        ended[0].1
    );
    // The next tick's output replaces the list.
    app.world_mut()
        .resource_mut::<sim::Outbox>()
        .ended
        .push((ID, ViewProgression::default()));
    sim::tick(&mut app, [cmd(Command::Leave)]);
    assert!(app.world().resource::<sim::Outbox>().ended.is_empty());
}
