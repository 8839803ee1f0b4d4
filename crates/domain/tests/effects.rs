//! Effect application against a small world: clamping, caps, quests, XP and levels.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use domain::narrative::effect::{Effect, ValueSrc};
use domain::narrative::state::{Change, Ctx, Progress, QuestStatus, Vars, Visits};
use domain::narrative::{ExprText, Rng, Value, WorldConfig};

fn world() -> WorldConfig {
    toml::from_str(
        r#"
start_scene = "s"
entities = ["player", "mara"]
[variables]
gold = { type = "int", default = 5 }
tags = { type = "list<string>" }
met = { type = "bool" }
[stats.courage]
entities = ["player"]
axes.value = { min = 0, max = 10, default = 3, tiers = [{ name = "timid", min = 0 }, { name = "bold", min = 6 }], levels = [5, 8] }
[stats.relationship]
entities = ["mara"]
axes.trust = { min = -5, max = 5 }
[xp]
thresholds = [10, 30]
[items]
key = { name = "Key", max = 1 }
coin = { name = "Coin" }
[quests.q]
title = "Q"
objectives = [{ id = "a", description = "A", target = 2 }, { id = "b", description = "B", optional = true }]
"#,
    )
    .unwrap()
}

struct St {
    vars: Vars,
    visits: Visits,
    progress: Progress,
    rng: Rng,
}

fn apply(w: &WorldConfig, st: &mut St, effects: &[Effect]) -> Vec<Change> {
    let args = BTreeMap::new();
    let mut ctx = Ctx {
        world: w,
        args: &args,
        vars: &mut st.vars,
        visits: &st.visits,
        progress: &mut st.progress,
        time_ms: 0,
        rng: &mut st.rng,
    };
    let mut out = Vec::new();
    for e in effects {
        ctx.apply(e, &mut out).unwrap();
    }
    out
}

fn new_state() -> St {
    St {
        vars: Vars::default(),
        visits: Visits::default(),
        progress: Progress::default(),
        rng: Rng::new(1),
    }
}

#[test]
fn variables_set_inc_dec_push_flag() {
    let w = world();
    let mut st = new_state();
    let out = apply(
        &w,
        &mut st,
        &[
            Effect::Inc {
                var: "gold".into(),
                by: 10,
            },
            Effect::Dec {
                var: "gold".into(),
                by: 3,
            },
            Effect::Set {
                var: "gold".into(),
                value: ValueSrc::Expr(ExprText::new("var.gold * 2")),
            },
            Effect::Push {
                var: "tags".into(),
                value: ValueSrc::Expr(ExprText::new("'x'")),
            },
            Effect::Flag {
                var: "met".into(),
                value: true,
            },
            Effect::Set {
                var: "gold".into(),
                value: ValueSrc::Int(5),
            },
        ],
    );
    let vals: Vec<(String, Value)> = out
        .into_iter()
        .map(|c| match c {
            Change::Var { name, value } => (name, value),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        vals,
        vec![
            ("gold".into(), Value::Int(15)),
            ("gold".into(), Value::Int(12)),
            ("gold".into(), Value::Int(24)),
            ("tags".into(), Value::List(vec![Value::Str("x".into())])),
            ("met".into(), Value::Bool(true)),
            ("gold".into(), Value::Int(5)),
        ]
    );
    // Back at its default: stored sparsely (not at all).
    assert!(!st.vars.0.contains_key("gold"));
}

#[test]
fn stats_clamp_and_relationships() {
    let w = world();
    let mut st = new_state();
    let out = apply(
        &w,
        &mut st,
        &[
            Effect::Stat {
                stat: "courage".into(),
                entity: "player".into(),
                axis: "value".into(),
                delta: 100,
            },
            Effect::Stat {
                stat: "courage".into(),
                entity: "player".into(),
                axis: "value".into(),
                delta: 1,
            },
            Effect::Rel {
                npc: "mara".into(),
                axis: "trust".into(),
                delta: -9,
            },
        ],
    );
    assert_eq!(
        out,
        vec![
            Change::Stat {
                stat: "courage".into(),
                entity: "player".into(),
                axis: "value".into(),
                value: 10
            },
            Change::Stat {
                stat: "relationship".into(),
                entity: "mara".into(),
                axis: "trust".into(),
                value: -5
            },
        ]
    );
}

#[test]
fn items_cap_and_never_go_negative() {
    let w = world();
    let mut st = new_state();
    let out = apply(
        &w,
        &mut st,
        &[
            Effect::Give {
                item: "key".into(),
                count: 3,
            },
            Effect::Give {
                item: "coin".into(),
                count: 2,
            },
            Effect::Take {
                item: "coin".into(),
                count: 5,
            },
        ],
    );
    assert_eq!(
        out,
        vec![
            Change::Item {
                item: "key".into(),
                count: 1
            },
            Change::Item {
                item: "coin".into(),
                count: 2
            },
            Change::Item {
                item: "coin".into(),
                count: 0
            },
        ]
    );
}

#[test]
fn quests_objectives_xp_levels_unlocks() {
    let w = world();
    let mut st = new_state();
    let out = apply(
        &w,
        &mut st,
        &[
            Effect::Objective {
                quest: "q".into(),
                objective: "a".into(),
                progress: 1,
            },
            Effect::Objective {
                quest: "q".into(),
                objective: "a".into(),
                progress: 5,
            },
            Effect::Xp { amount: 35 },
            Effect::Unlock { scene: "s".into() },
            Effect::Unlock { scene: "s".into() },
            Effect::Quest {
                quest: "q".into(),
                status: QuestStatus::Failed,
            },
        ],
    );
    assert_eq!(
        out,
        vec![
            Change::Quest {
                quest: "q".into(),
                status: QuestStatus::Active
            },
            Change::Objective {
                quest: "q".into(),
                objective: "a".into(),
                progress: 1,
                target: 2
            },
            Change::Objective {
                quest: "q".into(),
                objective: "a".into(),
                progress: 2,
                target: 2
            },
            Change::Quest {
                quest: "q".into(),
                status: QuestStatus::Completed
            },
            Change::Xp { xp: 35 },
            Change::Level { level: 3 },
            Change::Unlocked { scene: "s".into() },
            Change::Quest {
                quest: "q".into(),
                status: QuestStatus::Failed
            },
        ]
    );
}

#[test]
fn tiers_and_stat_levels_in_expressions() {
    let w = world();
    let mut st = new_state();
    let eval = |st: &mut St, src: &str| {
        let args = BTreeMap::new();
        let mut ctx = Ctx {
            world: &w,
            args: &args,
            vars: &mut st.vars,
            visits: &st.visits,
            progress: &mut st.progress,
            time_ms: 0,
            rng: &mut st.rng,
        };
        ctx.eval(&domain::narrative::expr::parse(src).unwrap())
            .unwrap()
    };
    assert_eq!(eval(&mut st, "level.courage.player.value"), Value::Int(1));
    assert_eq!(
        eval(&mut st, "tier.courage.player.value"),
        Value::Str("timid".into())
    );
    apply(
        &w,
        &mut st,
        &[Effect::Stat {
            stat: "courage".into(),
            entity: "player".into(),
            axis: "value".into(),
            delta: 3,
        }],
    );
    assert_eq!(eval(&mut st, "level.courage.player.value"), Value::Int(2));
    assert_eq!(
        eval(&mut st, "tier.courage.player.value"),
        Value::Str("bold".into())
    );
}
