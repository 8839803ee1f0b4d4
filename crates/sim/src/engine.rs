//! Narrative step logic for one session: node entry, automatic advance, choices, calls,
//! returns, mini-games, saves. Called by the narrative systems for sessions with work only.

use std::collections::BTreeMap;

use bevy_ecs::entity::Entity;

use domain::narrative::save::map_save;
use domain::narrative::scene::{REFLEX_DEFAULT_ROUNDS, REFLEX_DEFAULT_WINDOW_MS};
use domain::narrative::state::{Ctx, stat_value};
use domain::narrative::{
    Content, Edge, Expr, ExprText, Frame, MiniGameSpec, NodeKind, SAVE_VERSION, SavedWait,
    SessionSave, Value,
};

use crate::components::{
    MediaLibrary, MiniGameRun, Offered, Phase, RoundPhase, SessionQueryItem, SimConfig, Staging,
    Timers,
};
use crate::protocol::{Choice, EndReason, ErrorReason, Event, Media, Outcome, SessionId};

pub(crate) type S<'a, 'w, 's> = &'a mut SessionQueryItem<'w, 's>;

/// Per-call context.
pub(crate) struct Cx<'a> {
    pub content: &'a Content,
    pub cfg: &'a SimConfig,
    pub now: i64,
    pub id: SessionId,
    pub entity: Entity,
    pub staging: &'a mut Staging,
    pub timers: &'a mut Timers,
    pub media: &'a MediaLibrary,
}

impl Cx<'_> {
    pub fn emit(&mut self, e: Event) {
        self.staging.events.push((self.id, e));
    }

    pub fn reject(&mut self, command: &str, reason: ErrorReason) {
        let message = reason.to_string();
        self.emit(Event::Error {
            command: command.to_string(),
            reason,
            message,
        });
    }
}

type Res<T> = Result<T, String>;

fn with_ctx<R>(
    s: S<'_, '_, '_>,
    content: &Content,
    now: i64,
    f: impl FnOnce(&mut Ctx<'_>) -> R,
) -> R {
    let mut ctx = Ctx {
        world: &content.world,
        args: &s.pos.args,
        vars: &mut s.vars.0,
        visits: &s.visits.0,
        progress: &mut s.progress.0,
        time_ms: now,
        rng: &mut s.rng.0,
    };
    f(&mut ctx)
}

fn parsed(t: &ExprText) -> Res<&Expr> {
    t.parsed
        .as_ref()
        .map_err(|e| format!("invalid expression '{}': {e}", t.src))
}

fn test_edge(s: S<'_, '_, '_>, cx: &Cx<'_>, e: &Edge) -> Res<bool> {
    match &e.condition {
        None => Ok(true),
        Some(c) => {
            let expr = parsed(c)?;
            with_ctx(s, cx.content, cx.now, |ctx| ctx.test(expr))
                .map_err(|err| format!("edge '{}': {err}", e.id))
        }
    }
}

fn cooldown_key(scene: &str, edge: &str) -> String {
    format!("{scene}/{edge}")
}

fn cooling_until(s: S<'_, '_, '_>, cx: &Cx<'_>, e: &Edge) -> Option<i64> {
    if s.cooldowns.0.is_empty() {
        return None;
    }
    s.cooldowns
        .0
        .get(&cooldown_key(&s.pos.scene, &e.id))
        .copied()
        .filter(|u| *u > cx.now)
}

/// Among `edges`, the passing non-default ones (weighted draw when several), else the
/// passing default one.
fn pick_among<'c>(
    s: S<'_, '_, '_>,
    cx: &Cx<'c>,
    edges: impl Iterator<Item = &'c Edge>,
) -> Res<Option<&'c Edge>> {
    // Allocation-free for the common case of zero or one passing non-default edge.
    let mut first = None;
    let mut more: Vec<&'c Edge> = Vec::new();
    let mut default = None;
    for e in edges {
        if cooling_until(s, cx, e).is_some() || !test_edge(s, cx, e)? {
            continue;
        }
        if e.default {
            default.get_or_insert(e);
        } else if first.is_none() {
            first = Some(e);
        } else {
            more.push(e);
        }
    }
    let Some(first) = first else {
        return Ok(default);
    };
    if more.is_empty() {
        return Ok(Some(first));
    }
    more.insert(0, first);
    let weights: Vec<u32> = more.iter().map(|e| e.weight).collect();
    Ok(match s.rng.0.weighted(&weights) {
        Some(i) => Some(more[i]),
        None => default.or(Some(first)),
    })
}

/// Picks the automatic edge from the current node: edges whose `on` matches `on` first,
/// then edges without `on`.
fn pick<'c>(s: S<'_, '_, '_>, cx: &Cx<'c>, on: Option<&str>) -> Res<&'c Edge> {
    let content = cx.content;
    if let Some(on) = on {
        let sel = content
            .out_edges(&s.pos.scene, &s.pos.node)
            .filter(|e| e.on.as_deref() == Some(on));
        if let Some(e) = pick_among(s, cx, sel)? {
            return Ok(e);
        }
    }
    let sel = content
        .out_edges(&s.pos.scene, &s.pos.node)
        .filter(|e| e.on.is_none());
    pick_among(s, cx, sel)?.ok_or_else(|| {
        format!(
            "no edge can be taken from node '{}' in scene '{}'",
            s.pos.node, s.pos.scene
        )
    })
}

/// Applies effects, journaling the changes (also on failure, for what was applied).
fn apply_effects(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    effects: &[domain::narrative::Effect],
) -> Result<(), domain::narrative::state::EffectError> {
    if effects.is_empty() {
        return Ok(());
    }
    let mut scratch = std::mem::take(&mut cx.staging.scratch);
    let r = with_ctx(s, cx.content, cx.now, |ctx| {
        for eff in effects {
            ctx.apply(eff, &mut scratch)?;
        }
        Ok(())
    });
    let id = cx.id;
    cx.staging
        .journal
        .extend(scratch.drain(..).map(|c| (id, c)));
    cx.staging.scratch = scratch;
    r
}

/// Applies an edge's effects and cooldown, and moves to its target.
fn take(s: S<'_, '_, '_>, cx: &mut Cx<'_>, e: &Edge) -> Res<()> {
    let now = cx.now;
    let r = apply_effects(s, cx, &e.effects);
    r.map_err(|err| format!("edge '{}': {err}", e.id))?;
    if e.cooldown_ms > 0 {
        let key = cooldown_key(&s.pos.scene, &e.id);
        s.cooldowns.0.insert(key, now + e.cooldown_ms as i64);
    }
    if !s.cooldowns.0.is_empty() {
        s.cooldowns.0.retain(|_, until| *until > now);
    }
    s.pos.node.clone_from(&e.to);
    Ok(())
}

fn end(s: S<'_, '_, '_>, cx: &mut Cx<'_>, reason: EndReason) {
    *s.phase = Phase::Ended;
    s.choices.0.clear();
    s.minigame.0 = None;
    cx.emit(Event::SessionEnded { reason });
    cx.staging.ended.push((cx.id, cx.entity));
}

/// Aborts a session after a runtime failure (never a silent soft-lock).
pub(crate) fn abort(s: S<'_, '_, '_>, cx: &mut Cx<'_>, command: &str, detail: String) {
    cx.reject(command, ErrorReason::Runtime { detail });
    end(s, cx, EndReason::Aborted);
}

fn present(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<&'static str> {
    let content = cx.content;
    let node = content
        .node(&s.pos.scene, &s.pos.node)
        .ok_or_else(|| format!("scene '{}' has no node '{}'", s.pos.scene, s.pos.node))?;
    let (media, lines, prompt) = match &node.kind {
        NodeKind::Media {
            asset, generate, ..
        } => {
            let m = match (asset, generate) {
                (Some(a), _) => Some(Box::new(Media::Asset { asset: a.clone() })),
                (None, Some(g)) => Some(Box::new(
                    match cx
                        .media
                        .get(&g.operation, &g.prompt, &crate::protocol::spec_params(g))
                    {
                        Some(asset) => Media::Asset {
                            asset: asset.clone(),
                        },
                        None => Media::from_spec(g),
                    },
                )),
                _ => None,
            };
            (m, Vec::new(), None)
        }
        NodeKind::Dialogue { lines, .. } => (None, lines.clone(), None),
        NodeKind::Choice { prompt } => (None, Vec::new(), prompt.clone()),
        _ => (None, Vec::new(), None),
    };
    cx.emit(Event::NodeEntered {
        scene: s.pos.scene.clone(),
        node: s.pos.node.clone(),
        kind: std::borrow::Cow::Borrowed(node.kind.name()),
        media,
        lines,
        prompt,
    });
    Ok(node.kind.name())
}

pub(crate) fn offer(s: S<'_, '_, '_>, cx: &mut Cx<'_>) -> Res<()> {
    let content = cx.content;
    let mut choices = Vec::new();
    let edges = content
        .out_edges(&s.pos.scene, &s.pos.node)
        .filter(|e| e.on.is_none());
    for e in edges {
        if !test_edge(s, cx, e)? {
            continue;
        }
        let reveal = s.pos.entered_at_ms + e.reveal_ms as i64;
        let avail = cooling_until(s, cx, e).map_or(reveal, |u| u.max(reveal));
        // Reuse the previous offer's buffers.
        let list = &mut s.choices.0;
        match list.get_mut(choices.len()) {
            Some(slot) => {
                slot.edge.clone_from(&e.id);
                slot.reveal_at_ms = reveal;
            }
            None => list.push(Offered {
                edge: e.id.clone(),
                reveal_at_ms: reveal,
            }),
        }
        choices.push(Choice {
            edge: e.id.clone(),
            label: e.label.clone(),
            available_at_ms: avail,
        });
    }
    s.choices.0.truncate(choices.len());
    if choices.is_empty() {
        return Err(format!(
            "no choice available at node '{}' in scene '{}'",
            s.pos.node, s.pos.scene
        ));
    }
    *s.phase = Phase::Choosing;
    cx.emit(Event::ChoicesOffered {
        node: s.pos.node.clone(),
        choices,
    });
    Ok(())
}

/// Enters the current node and advances automatically until the session waits or ends.
pub(crate) fn run(s: S<'_, '_, '_>, cx: &mut Cx<'_>, mut scene_entry: bool) -> Res<()> {
    let content = cx.content;
    for _ in 0..cx.cfg.max_auto_steps {
        let node = content
            .node(&s.pos.scene, &s.pos.node)
            .ok_or_else(|| format!("scene '{}' has no node '{}'", s.pos.scene, s.pos.node))?;
        s.visits.0.enter(&s.pos.scene, &s.pos.node, scene_entry);
        scene_entry = false;
        s.pos.entered_at_ms = cx.now;
        present(s, cx)?;
        match &node.kind {
            NodeKind::Media { auto: false, .. }
            | NodeKind::Dialogue { auto: false, .. }
            | NodeKind::Choice { .. } => {
                return offer(s, cx);
            }
            NodeKind::Media { auto: true, .. }
            | NodeKind::Dialogue { auto: true, .. }
            | NodeKind::Condition {} => {
                let e = pick(s, cx, None)?;
                take(s, cx, e)?;
            }
            NodeKind::Action { effects } => {
                let r = apply_effects(s, cx, effects);
                r.map_err(|err| format!("action node '{}': {err}", s.pos.node))?;
                let e = pick(s, cx, None)?;
                take(s, cx, e)?;
            }
            NodeKind::MiniGame(spec) => match spec.game.as_str() {
                "reflex" => {
                    start_reflex(s, cx, spec);
                    return Ok(());
                }
                "skill_check" => {
                    let outcome = skill_check(s, cx, spec)?;
                    let e = pick(s, cx, Some(outcome.as_str()))?;
                    take(s, cx, e)?;
                }
                other => return Err(format!("unknown mini-game '{other}'")),
            },
            NodeKind::Call {
                scene: callee,
                args,
                ..
            } => {
                let callee_scene = content
                    .scene(callee)
                    .ok_or_else(|| format!("call to missing scene '{callee}'"))?;
                let mut values = BTreeMap::new();
                for (k, t) in args {
                    let expr = parsed(t)?;
                    let v = with_ctx(s, content, cx.now, |ctx| ctx.eval(expr))
                        .map_err(|e| format!("argument '{k}': {e}"))?;
                    values.insert(k.clone(), v);
                }
                let caller = Frame {
                    scene: s.pos.scene.clone(),
                    node: s.pos.node.clone(),
                    args: std::mem::take(&mut s.pos.args),
                };
                s.stack.0.push(caller);
                s.pos.scene = callee.clone();
                s.pos.node = callee_scene.entry.clone();
                s.pos.args = values;
                scene_entry = true;
            }
            NodeKind::Return { values, route } => {
                let mut out: BTreeMap<String, Value> = BTreeMap::new();
                for (k, t) in values {
                    let expr = parsed(t)?;
                    let v = with_ctx(s, content, cx.now, |ctx| ctx.eval(expr))
                        .map_err(|e| format!("return value '{k}': {e}"))?;
                    out.insert(k.clone(), v);
                }
                let Some(frame) = s.stack.0.pop() else {
                    end(s, cx, EndReason::Returned);
                    return Ok(());
                };
                s.pos.scene = frame.scene;
                s.pos.node = frame.node;
                s.pos.args = frame.args;
                let call = content
                    .node(&s.pos.scene, &s.pos.node)
                    .ok_or_else(|| format!("caller node '{}' missing", s.pos.node))?;
                if let NodeKind::Call { bind, .. } = &call.kind {
                    let world = &content.world;
                    let effects: Vec<domain::narrative::Effect> = bind
                        .iter()
                        .filter_map(|(ret, var)| {
                            out.get(ret).map(|v| domain::narrative::Effect::Set {
                                var: var.clone(),
                                value: value_src(v),
                            })
                        })
                        .collect();
                    let _ = world;
                    apply_effects(s, cx, &effects).map_err(|e| format!("return bindings: {e}"))?;
                }
                let e = pick(s, cx, route.as_deref())?;
                take(s, cx, e)?;
            }
            NodeKind::End { outcome } => {
                end(s, cx, EndReason::End(*outcome));
                return Ok(());
            }
        }
    }
    Err(format!(
        "more than {} automatic steps without waiting (a loop in the content?)",
        cx.cfg.max_auto_steps
    ))
}

fn value_src(v: &Value) -> domain::narrative::ValueSrc {
    match v {
        Value::Bool(b) => domain::narrative::ValueSrc::Bool(*b),
        Value::Int(i) => domain::narrative::ValueSrc::Int(*i),
        other => domain::narrative::ValueSrc::Expr(ExprText::new(other.to_string())),
    }
}

fn skill_check(s: S<'_, '_, '_>, cx: &mut Cx<'_>, spec: &MiniGameSpec) -> Res<Outcome> {
    let stat = spec.stat.clone().unwrap_or_default();
    let entity = spec.entity.clone().unwrap_or_else(|| "player".into());
    let axis = spec.axis.clone().unwrap_or_else(|| "value".into());
    let die = i64::from(spec.die.unwrap_or(20).max(1));
    let difficulty = spec.difficulty.unwrap_or(0);
    let value = stat_value(&cx.content.world, &s.progress.0, &stat, &entity, &axis)?;
    let roll = s.rng.0.range(1, die);
    let total = value.saturating_add(roll);
    let outcome = if total >= difficulty {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    cx.emit(Event::MiniGameResult {
        game: "skill_check".into(),
        outcome,
        score: total,
        detail: format!("{stat} {value} + d{die} roll {roll} = {total} vs difficulty {difficulty}"),
    });
    Ok(outcome)
}

fn reflex_delay(s: S<'_, '_, '_>, cx: &Cx<'_>) -> i64 {
    let (lo, hi) = cx.cfg.reflex_delay_ms;
    s.rng.0.range(lo, hi.max(lo))
}

fn start_reflex(s: S<'_, '_, '_>, cx: &mut Cx<'_>, spec: &MiniGameSpec) {
    let rounds = spec.rounds.unwrap_or(REFLEX_DEFAULT_ROUNDS).max(1);
    start_reflex_at(s, cx, spec, 1, 0, rounds);
}

fn start_reflex_at(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    spec: &MiniGameSpec,
    round: u32,
    hits: u32,
    rounds: u32,
) {
    let delay = reflex_delay(s, cx);
    let timer = cx.timers.schedule(cx.now + delay, cx.entity);
    s.minigame.0 = Some(MiniGameRun {
        game: spec.game.clone(),
        round: round.min(rounds),
        rounds,
        hits: hits.min(rounds),
        need: spec.need.unwrap_or(rounds).clamp(1, rounds),
        window_ms: spec.window_ms.unwrap_or(REFLEX_DEFAULT_WINDOW_MS).max(1),
        phase: RoundPhase::Waiting,
        timer,
    });
    *s.phase = Phase::MiniGame;
}

/// A mini-game timer fired.
pub(crate) fn on_timer(s: S<'_, '_, '_>, cx: &mut Cx<'_>, token: u64) -> Res<()> {
    let Some(run) = s.minigame.0.as_mut() else {
        return Ok(());
    };
    if run.timer != token || *s.phase != Phase::MiniGame {
        return Ok(()); // stale timer
    }
    match run.phase {
        RoundPhase::Waiting => {
            let nonce = s.rng.0.next_u64() & ((1 << 53) - 1);
            let Some(run) = s.minigame.0.as_mut() else {
                return Ok(());
            };
            let closes = cx.now + run.window_ms as i64;
            run.phase = RoundPhase::Open {
                nonce,
                opens_at_ms: cx.now,
                closes_at_ms: closes,
            };
            run.timer = cx
                .timers
                .schedule(closes + cx.cfg.input_grace_ms, cx.entity);
            let ev = Event::MiniGamePrompt {
                game: run.game.clone(),
                round: run.round,
                rounds: run.rounds,
                nonce,
                opens_at_ms: cx.now,
                closes_at_ms: closes,
            };
            cx.emit(ev);
            Ok(())
        }
        RoundPhase::Open { .. } => round_done(
            s,
            cx,
            false,
            Some("no input before the window closed".into()),
        ),
    }
}

/// A reflex input. Errors (stale/forged) change nothing; timing failures count as a miss.
pub(crate) fn on_input(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    round: u32,
    nonce: u64,
    client_ms: i64,
) -> Res<()> {
    let Some(run) = s
        .minigame
        .0
        .as_ref()
        .filter(|_| *s.phase == Phase::MiniGame)
    else {
        cx.reject("minigame_input", wrong_state("minigame_input", *s.phase));
        return Ok(());
    };
    let RoundPhase::Open {
        nonce: want,
        opens_at_ms,
        closes_at_ms,
    } = run.phase
    else {
        cx.reject(
            "minigame_input",
            ErrorReason::StaleInput {
                detail: format!("round {} is not open yet", run.round),
            },
        );
        return Ok(());
    };
    if round != run.round || nonce != want {
        let detail = if round != run.round {
            format!("input for round {round}, current round is {}", run.round)
        } else {
            format!("wrong nonce for round {round}")
        };
        cx.reject("minigame_input", ErrorReason::StaleInput { detail });
        return Ok(());
    }
    let now = cx.now;
    let miss = if client_ms < opens_at_ms {
        Some(format!(
            "input claims {client_ms} ms, before the window opened at {opens_at_ms} ms"
        ))
    } else if client_ms > closes_at_ms {
        Some(format!(
            "input claims {client_ms} ms, after the window closed at {closes_at_ms} ms"
        ))
    } else if client_ms > now {
        Some(format!(
            "input claims {client_ms} ms, ahead of the server clock ({now} ms)"
        ))
    } else if now - client_ms > cx.cfg.max_input_latency_ms {
        Some(format!(
            "input arrived {} ms after its claimed time (max {} ms)",
            now - client_ms,
            cx.cfg.max_input_latency_ms
        ))
    } else {
        None
    };
    round_done(s, cx, miss.is_none(), miss)
}

fn round_done(s: S<'_, '_, '_>, cx: &mut Cx<'_>, hit: bool, reason: Option<String>) -> Res<()> {
    let Some(run) = s.minigame.0.as_mut() else {
        return Ok(());
    };
    if hit {
        run.hits += 1;
    }
    let round = run.round;
    cx.emit(Event::MiniGameRound { round, hit, reason });
    let Some(run) = s.minigame.0.as_mut() else {
        return Ok(());
    };
    if run.round < run.rounds {
        run.round += 1;
        run.phase = RoundPhase::Waiting;
        let delay = {
            let (lo, hi) = cx.cfg.reflex_delay_ms;
            s.rng.0.range(lo, hi.max(lo))
        };
        let timer = cx.timers.schedule(cx.now + delay, cx.entity);
        if let Some(run) = s.minigame.0.as_mut() {
            run.timer = timer;
        }
        return Ok(());
    }
    let outcome = if run.hits >= run.need {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let ev = Event::MiniGameResult {
        game: run.game.clone(),
        outcome,
        score: i64::from(run.hits),
        detail: format!(
            "{} of {} rounds hit, {} needed",
            run.hits, run.rounds, run.need
        ),
    };
    s.minigame.0 = None;
    cx.emit(ev);
    let e = pick(s, cx, Some(outcome.as_str()))?;
    take(s, cx, e)?;
    crate::engine::run(s, cx, false)
}

pub(crate) fn wrong_state(command: &str, phase: Phase) -> ErrorReason {
    let state = match phase {
        Phase::Starting => "the session is starting",
        Phase::Choosing => "waiting for a choice",
        Phase::MiniGame => "a mini-game is running",
        Phase::Ended => "the session has ended",
    };
    ErrorReason::WrongState {
        command: command.to_string(),
        state: state.to_string(),
    }
}

/// `choose`: validates fully before changing anything.
pub(crate) fn choose(s: S<'_, '_, '_>, cx: &mut Cx<'_>, edge_id: &str) -> Res<()> {
    if *s.phase != Phase::Choosing {
        cx.reject("choose", wrong_state("choose", *s.phase));
        return Ok(());
    }
    let Some(reveal_at_ms) = s
        .choices
        .0
        .iter()
        .find(|o| o.edge == edge_id)
        .map(|o| o.reveal_at_ms)
    else {
        cx.reject(
            "choose",
            ErrorReason::EdgeNotOffered {
                edge: edge_id.to_string(),
            },
        );
        return Ok(());
    };
    let content = cx.content;
    let Some(edge) = content.edge(&s.pos.scene, edge_id) else {
        cx.reject(
            "choose",
            ErrorReason::EdgeNotOffered {
                edge: edge_id.to_string(),
            },
        );
        return Ok(());
    };
    if cx.now < reveal_at_ms {
        cx.reject(
            "choose",
            ErrorReason::NotRevealed {
                edge: edge_id.to_string(),
                at_ms: reveal_at_ms,
            },
        );
        return Ok(());
    }
    if let Some(until) = cooling_until(s, cx, edge) {
        cx.reject(
            "choose",
            ErrorReason::Cooldown {
                edge: edge_id.to_string(),
                until_ms: until,
            },
        );
        return Ok(());
    }
    let rng_before = s.rng.0;
    match test_edge(s, cx, edge) {
        Ok(true) => {}
        Ok(false) => {
            s.rng.0 = rng_before;
            cx.reject(
                "choose",
                ErrorReason::ConditionFalse {
                    edge: edge_id.to_string(),
                },
            );
            return Ok(());
        }
        Err(detail) => {
            s.rng.0 = rng_before;
            cx.reject(
                "choose",
                ErrorReason::ConditionFalse {
                    edge: format!("{edge_id} ({detail})"),
                },
            );
            return Ok(());
        }
    }
    take(s, cx, edge)?;
    run(s, cx, false)
}

/// Builds a save of the session (only while it waits for a choice or is in a mini-game).
pub(crate) fn save(s: S<'_, '_, '_>, cx: &Cx<'_>) -> Result<SessionSave, ErrorReason> {
    let wait = match *s.phase {
        Phase::Choosing => SavedWait::Choices {
            offered: s.choices.0.iter().map(|o| o.edge.clone()).collect(),
        },
        Phase::MiniGame => match &s.minigame.0 {
            Some(run) => SavedWait::MiniGame {
                round: run.round,
                hits: run.hits,
            },
            None => return Err(wrong_state("save", *s.phase)),
        },
        p => return Err(wrong_state("save", p)),
    };
    let mut stack = s.stack.0.clone();
    stack.push(Frame {
        scene: s.pos.scene.clone(),
        node: s.pos.node.clone(),
        args: s.pos.args.clone(),
    });
    Ok(SessionSave {
        version: SAVE_VERSION,
        content_version: cx.content.version.clone(),
        rng: s.rng.0,
        stack,
        elapsed_in_node_ms: cx.now - s.pos.entered_at_ms,
        wait,
        vars: s.vars.0.clone(),
        visits: s.visits.0.clone(),
        progress: s.progress.0.clone(),
        cooldowns: s
            .cooldowns
            .0
            .iter()
            .map(|(k, u)| (k.clone(), (u - cx.now).max(0)))
            .filter(|(_, r)| *r > 0)
            .collect(),
    })
}

/// Validates a save against the content, returning the mapped save and notes.
pub(crate) fn check_save(
    save: &SessionSave,
    content: &Content,
) -> Result<(SessionSave, Vec<String>), ErrorReason> {
    let mut save = save.clone();
    match map_save(&mut save, content) {
        Ok(notes) => Ok((save, notes)),
        Err(e) => Err(ErrorReason::SaveRejected {
            detail: e.to_string(),
        }),
    }
}

/// Finishes a resume on a freshly spawned session (state already restored).
pub(crate) fn resumed(
    s: S<'_, '_, '_>,
    cx: &mut Cx<'_>,
    notes: Vec<String>,
    wait: SavedWait,
) -> Res<()> {
    cx.emit(Event::Resumed {
        scene: s.pos.scene.clone(),
        node: s.pos.node.clone(),
        notes,
    });
    present(s, cx)?;
    match wait {
        SavedWait::Choices { offered } => {
            let content = cx.content;
            let mut list = Vec::new();
            let mut choices = Vec::new();
            for id in offered {
                if let Some(e) = content.edge(&s.pos.scene, &id) {
                    let reveal = s.pos.entered_at_ms + e.reveal_ms as i64;
                    let avail = cooling_until(s, cx, e).map_or(reveal, |u| u.max(reveal));
                    list.push(Offered {
                        edge: id.clone(),
                        reveal_at_ms: reveal,
                    });
                    choices.push(Choice {
                        edge: id,
                        label: e.label.clone(),
                        available_at_ms: avail,
                    });
                }
            }
            if list.is_empty() {
                // Every saved choice disappeared: offer afresh from the current content.
                return offer(s, cx);
            }
            s.choices.0 = list;
            *s.phase = Phase::Choosing;
            cx.emit(Event::ChoicesOffered {
                node: s.pos.node.clone(),
                choices,
            });
            Ok(())
        }
        SavedWait::MiniGame { round, hits } => {
            let content = cx.content;
            let node = content
                .node(&s.pos.scene, &s.pos.node)
                .ok_or("mini-game node missing")?;
            let NodeKind::MiniGame(spec) = &node.kind else {
                return Err("saved mini-game node is no longer a mini-game".into());
            };
            if spec.game != "reflex" {
                return Err(format!("cannot resume mini-game '{}'", spec.game));
            }
            let rounds = spec.rounds.unwrap_or(REFLEX_DEFAULT_ROUNDS).max(1);
            start_reflex_at(s, cx, spec, round, hits, rounds);
            Ok(())
        }
    }
}
