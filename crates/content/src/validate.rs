//! Semantic validation of a world config and its scenes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use domain::narrative::effect::{Effect, ValueSrc};
use domain::narrative::expr::{self, ExprText, Type, TypeEnv};
use domain::narrative::scene::{MINI_GAMES, MiniGameSpec};
use domain::narrative::state::SceneTypes;
use domain::narrative::{NodeKind, Scene, WorldConfig};

use crate::{Problem, SceneFile};

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

struct Ctx<'a> {
    out: Vec<Problem>,
    world: &'a WorldConfig,
    scenes: BTreeMap<String, Scene>,
    file: String,
    scene: Option<String>,
}

impl Ctx<'_> {
    fn at(&mut self, node: Option<&str>, reason: impl Into<String>) {
        self.out.push(Problem {
            file: self.file.clone(),
            scene: self.scene.clone(),
            node: node.map(str::to_string),
            reason: reason.into(),
        });
    }

    /// Checks an expression; returns its type when valid.
    fn expr(
        &mut self,
        node: &str,
        what: &str,
        e: &ExprText,
        params: &BTreeMap<String, Type>,
    ) -> Option<Type> {
        let parsed = match &e.parsed {
            Ok(p) => p,
            Err(err) => {
                self.at(Some(node), format!("{what}: '{}': {err}", e.src));
                return None;
            }
        };
        let env = SceneTypes {
            world: self.world,
            scenes: &self.scenes,
            params,
        };
        match expr::check(parsed, &env) {
            Ok(t) => Some(t),
            Err(err) => {
                self.at(Some(node), format!("{what}: '{}': {err}", e.src));
                None
            }
        }
    }

    fn value_src(
        &mut self,
        node: &str,
        what: &str,
        v: &ValueSrc,
        params: &BTreeMap<String, Type>,
    ) -> Option<Type> {
        match v {
            ValueSrc::Bool(_) => Some(Type::Bool),
            ValueSrc::Int(_) => Some(Type::Int),
            ValueSrc::Expr(e) => self.expr(node, what, e, params),
        }
    }

    fn var(&mut self, node: &str, what: &str, var: &str) -> Option<Type> {
        match self.world.variables.get(var) {
            Some(d) => Some(d.ty.clone()),
            None => {
                self.at(Some(node), format!("{what}: undefined variable '{var}'"));
                None
            }
        }
    }

    fn effects(
        &mut self,
        node: &str,
        owner: &str,
        effects: &[Effect],
        params: &BTreeMap<String, Type>,
    ) {
        let w = self.world;
        for (i, eff) in effects.iter().enumerate() {
            let what = format!("{owner} effect #{}", i + 1);
            match eff {
                Effect::Set { var, value } => {
                    let vt = self.var(node, &what, var);
                    let t = self.value_src(node, &what, value, params);
                    if let (Some(vt), Some(t)) = (vt, t)
                        && vt != t
                    {
                        self.at(
                            Some(node),
                            format!("{what}: cannot set {vt} variable '{var}' to a {t}"),
                        );
                    }
                }
                Effect::Inc { var, .. } | Effect::Dec { var, .. } => {
                    if let Some(t) = self.var(node, &what, var)
                        && t != Type::Int
                    {
                        self.at(
                            Some(node),
                            format!("{what}: inc/dec needs an int variable, '{var}' is {t}"),
                        );
                    }
                }
                Effect::Push { var, value } => {
                    let vt = self.var(node, &what, var);
                    let t = self.value_src(node, &what, value, params);
                    match (vt, t) {
                        (Some(Type::List(elem)), Some(t)) if *elem != t => {
                            self.at(
                                Some(node),
                                format!(
                                    "{what}: cannot push a {t} onto list<{elem}> variable '{var}'"
                                ),
                            );
                        }
                        (Some(vt), _) if !matches!(vt, Type::List(_)) => {
                            self.at(
                                Some(node),
                                format!("{what}: push needs a list variable, '{var}' is {vt}"),
                            );
                        }
                        _ => {}
                    }
                }
                Effect::Flag { var, .. } => {
                    if let Some(t) = self.var(node, &what, var)
                        && t != Type::Bool
                    {
                        self.at(
                            Some(node),
                            format!("{what}: flag needs a bool variable, '{var}' is {t}"),
                        );
                    }
                }
                Effect::Stat {
                    stat, entity, axis, ..
                } => {
                    let p = expr::Path::Stat {
                        stat: stat.clone(),
                        entity: entity.clone(),
                        axis: axis.clone(),
                    };
                    self.path(node, &what, &p, params);
                }
                Effect::Rel { npc, axis, .. } => {
                    let p = expr::Path::Rel {
                        npc: npc.clone(),
                        axis: axis.clone(),
                    };
                    self.path(node, &what, &p, params);
                }
                Effect::Give { item, .. } | Effect::Take { item, .. } => {
                    if !w.items.contains_key(item) {
                        self.at(Some(node), format!("{what}: undefined item '{item}'"));
                    }
                }
                Effect::Quest { quest, .. } => {
                    if !w.quests.contains_key(quest) {
                        self.at(Some(node), format!("{what}: undefined quest '{quest}'"));
                    }
                }
                Effect::Objective {
                    quest, objective, ..
                } => {
                    let p = expr::Path::Objective {
                        quest: quest.clone(),
                        objective: objective.clone(),
                    };
                    self.path(node, &what, &p, params);
                }
                Effect::Xp { .. } => {}
                Effect::Unlock { scene } => {
                    if !self.scenes.contains_key(scene) {
                        self.at(Some(node), format!("{what}: undefined scene '{scene}'"));
                    }
                }
            }
        }
    }

    fn path(&mut self, node: &str, what: &str, p: &expr::Path, params: &BTreeMap<String, Type>) {
        let env = SceneTypes {
            world: self.world,
            scenes: &self.scenes,
            params,
        };
        if let Err(e) = env.path_type(p) {
            self.at(Some(node), format!("{what}: {e}"));
        }
    }
}

fn world_checks(c: &mut Ctx<'_>) {
    let w = c.world;
    if !c.scenes.contains_key(&w.start_scene) {
        c.at(
            None,
            format!("start_scene '{}' is not a defined scene", w.start_scene),
        );
    }
    for (name, def) in &w.variables {
        if !is_ident(name) {
            c.at(None, format!("variable name '{name}' is not an identifier"));
        }
        if let Some(v) = &def.default
            && !v.fits(&def.ty)
        {
            c.at(
                None,
                format!("variable '{name}': default {v} is not a {}", def.ty),
            );
        }
    }
    for (sid, stat) in &w.stats {
        for e in &stat.entities {
            if !w.entities.contains(e) {
                c.at(
                    None,
                    format!("stat '{sid}': entity '{e}' is not listed in entities"),
                );
            }
        }
        for (aid, a) in &stat.axes {
            if a.levels.windows(2).any(|p| p[0] >= p[1]) {
                c.at(
                    None,
                    format!("stat '{sid}' axis '{aid}': levels must be strictly increasing"),
                );
            }
            if a.min > a.max {
                c.at(
                    None,
                    format!("stat '{sid}' axis '{aid}': min {} > max {}", a.min, a.max),
                );
            } else if a.default < a.min || a.default > a.max {
                c.at(
                    None,
                    format!(
                        "stat '{sid}' axis '{aid}': default {} outside {}..={}",
                        a.default, a.min, a.max
                    ),
                );
            }
        }
    }
    if w.xp.thresholds.windows(2).any(|p| p[0] >= p[1]) {
        c.at(None, "xp thresholds must be strictly increasing");
    }
    for (qid, q) in &w.quests {
        let mut seen = BTreeSet::new();
        for o in &q.objectives {
            if !seen.insert(&o.id) {
                c.at(
                    None,
                    format!("quest '{qid}': duplicate objective '{}'", o.id),
                );
            }
        }
    }
    for s in &w.locked_scenes {
        if !c.scenes.contains_key(s) {
            c.at(None, format!("locked scene '{s}' is not a defined scene"));
        }
    }
}

/// Validates a world config and its scenes; returns every problem found.
pub fn validate(world_file: &str, world: &WorldConfig, files: &[SceneFile]) -> Vec<Problem> {
    let mut c = Ctx {
        out: Vec::new(),
        world,
        scenes: BTreeMap::new(),
        file: String::new(),
        scene: None,
    };
    let mut scene_file: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        let id = f.scene.id.clone();
        if let Some(prev) = scene_file.get(&id) {
            c.file = f.file.clone();
            c.at(
                None,
                format!("duplicate scene id '{id}' (also defined in {prev})"),
            );
            continue;
        }
        scene_file.insert(id.clone(), f.file.clone());
        c.scenes.insert(id, f.scene.clone());
    }
    c.file = world_file.to_string();
    world_checks(&mut c);

    // Which scenes are called, and from where (for return checks).
    let mut called: BTreeSet<String> = BTreeSet::new();
    for s in c.scenes.values() {
        for n in &s.nodes {
            if let NodeKind::Call { scene, .. } = &n.kind {
                called.insert(scene.clone());
            }
        }
    }

    let scenes: Vec<Scene> = c.scenes.values().cloned().collect();
    for s in &scenes {
        c.file = scene_file.get(&s.id).cloned().unwrap_or_default();
        c.scene = Some(s.id.clone());
        check_scene(&mut c, s, called.contains(&s.id));
    }
    c.out
}

fn check_scene(c: &mut Ctx<'_>, s: &Scene, is_called: bool) {
    if !is_ident(&s.id) {
        c.at(
            None,
            format!(
                "scene id '{}' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
                s.id
            ),
        );
    }
    let mut nodes: BTreeMap<&str, &domain::narrative::Node> = BTreeMap::new();
    for n in &s.nodes {
        if !is_ident(&n.id) {
            c.at(
                Some(&n.id),
                "node id is not an identifier ([A-Za-z_][A-Za-z0-9_]*)",
            );
        }
        if nodes.insert(&n.id, n).is_some() {
            c.at(Some(&n.id), "duplicate node id");
        }
    }
    if !nodes.contains_key(s.entry.as_str()) {
        c.at(None, format!("entry node '{}' does not exist", s.entry));
    }
    let mut edge_ids = BTreeSet::new();
    let mut out: BTreeMap<&str, Vec<&domain::narrative::Edge>> = BTreeMap::new();
    for e in &s.edges {
        if !edge_ids.insert(e.id.as_str()) {
            c.at(Some(&e.from), format!("duplicate edge id '{}'", e.id));
        }
        if !nodes.contains_key(e.from.as_str()) {
            c.at(
                Some(&e.from),
                format!("edge '{}' starts at missing node '{}'", e.id, e.from),
            );
            continue;
        }
        if !nodes.contains_key(e.to.as_str()) {
            c.at(
                Some(&e.from),
                format!("edge '{}' points to missing node '{}'", e.id, e.to),
            );
        }
        out.entry(e.from.as_str()).or_default().push(e);
    }

    // Reachability from the entry.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue = VecDeque::new();
    if nodes.contains_key(s.entry.as_str()) {
        queue.push_back(s.entry.as_str());
        seen.insert(s.entry.as_str());
    }
    while let Some(n) = queue.pop_front() {
        for e in out.get(n).into_iter().flatten() {
            if nodes.contains_key(e.to.as_str()) && seen.insert(e.to.as_str()) {
                queue.push_back(e.to.as_str());
            }
        }
    }
    for n in &s.nodes {
        if !seen.contains(n.id.as_str()) {
            c.at(
                Some(&n.id),
                format!("unreachable from entry node '{}'", s.entry),
            );
        }
    }

    let params = s.params.clone();
    let mut has_return = false;
    for n in &s.nodes {
        let edges: Vec<&domain::narrative::Edge> =
            out.get(n.id.as_str()).cloned().unwrap_or_default();
        let kind = n.kind.name();
        let terminal = matches!(n.kind, NodeKind::End { .. } | NodeKind::Return { .. });
        if terminal && !edges.is_empty() {
            c.at(
                Some(&n.id),
                format!("{kind} node must not have outgoing edges"),
            );
        }
        if !terminal && edges.is_empty() {
            c.at(
                Some(&n.id),
                format!("dead end: {kind} node has no outgoing edges and is not an end node"),
            );
        }
        // Edge checks.
        let mut defaults = 0;
        for e in &edges {
            if !is_ident(&e.id) {
                c.at(
                    Some(&n.id),
                    format!("edge id '{}' is not an identifier", e.id),
                );
            }
            if e.default {
                defaults += 1;
            }
            if let Some(cond) = &e.condition
                && let Some(t) = c.expr(&n.id, &format!("edge '{}' condition", e.id), cond, &params)
                && t != Type::Bool
            {
                c.at(
                    Some(&n.id),
                    format!(
                        "edge '{}' condition: '{}' is {t}, expected bool",
                        e.id, cond.src
                    ),
                );
            }
            c.effects(&n.id, &format!("edge '{}'", e.id), &e.effects, &params);
            if let Some(on) = &e.on {
                match &n.kind {
                    NodeKind::MiniGame(_) => {
                        if on != "success" && on != "failure" {
                            c.at(Some(&n.id), format!("edge '{}': mini-game outcome must be 'success' or 'failure', got '{on}'", e.id));
                        }
                    }
                    NodeKind::Call { scene, .. } => {
                        let routes: BTreeSet<String> = c
                            .scenes
                            .get(scene)
                            .map(|callee| {
                                callee
                                    .nodes
                                    .iter()
                                    .filter_map(|rn| match &rn.kind {
                                        NodeKind::Return { route: Some(r), .. } => Some(r.clone()),
                                        _ => None,
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        if c.scenes.contains_key(scene) && !routes.contains(on) {
                            c.at(
                                Some(&n.id),
                                format!(
                                    "edge '{}': scene '{scene}' never returns with route '{on}'",
                                    e.id
                                ),
                            );
                        }
                    }
                    _ => c.at(
                        Some(&n.id),
                        format!(
                            "edge '{}': 'on' is only allowed after minigame and call nodes",
                            e.id
                        ),
                    ),
                }
            }
        }
        if defaults > 1 {
            c.at(Some(&n.id), "more than one default edge");
        }
        let auto = match &n.kind {
            NodeKind::Media { auto, .. } | NodeKind::Dialogue { auto, .. } => *auto,
            NodeKind::Condition {} | NodeKind::Action { .. } | NodeKind::Call { .. } => true,
            _ => false,
        };
        if auto
            && !edges.is_empty()
            && !edges
                .iter()
                .any(|e| e.default || (e.condition.is_none() && e.on.is_none()))
        {
            c.at(Some(&n.id), format!("{kind} node advances automatically but has no default or unconditional edge, so it can get stuck"));
        }
        match &n.kind {
            NodeKind::Media {
                asset, generate, ..
            } => match (asset, generate) {
                (None, None) => c.at(Some(&n.id), "media node needs 'asset' or 'generate'"),
                (Some(_), Some(_)) => {
                    c.at(Some(&n.id), "media node has both 'asset' and 'generate'")
                }
                _ => {}
            },
            NodeKind::Dialogue { lines, .. } => {
                if lines.is_empty() {
                    c.at(Some(&n.id), "dialogue node has no lines");
                }
                let mut ids = BTreeSet::new();
                for l in lines {
                    if !ids.insert(&l.id) {
                        c.at(Some(&n.id), format!("duplicate line id '{}'", l.id));
                    }
                }
            }
            NodeKind::Action { effects } => c.effects(&n.id, "action", effects, &params),
            NodeKind::MiniGame(spec) => check_minigame(c, &n.id, spec, &edges),
            NodeKind::Call { scene, args, bind } => {
                check_call(c, &n.id, scene, args, bind, &params)
            }
            NodeKind::Return { values, .. } => {
                has_return = true;
                for (k, v) in values {
                    let t = c.expr(&n.id, &format!("return value '{k}'"), v, &params);
                    match s.returns.get(k) {
                        None => c.at(
                            Some(&n.id),
                            format!("return value '{k}' is not declared in the scene's returns"),
                        ),
                        Some(rt) => {
                            if let Some(t) = t
                                && &t != rt
                            {
                                c.at(
                                    Some(&n.id),
                                    format!("return value '{k}' is {t}, declared {rt}"),
                                );
                            }
                        }
                    }
                }
                for k in s.returns.keys() {
                    if !values.contains_key(k) {
                        c.at(
                            Some(&n.id),
                            format!("return node does not return declared value '{k}'"),
                        );
                    }
                }
            }
            NodeKind::Choice { .. } | NodeKind::Condition {} | NodeKind::End { .. } => {}
        }
    }
    if is_called && !has_return {
        c.at(None, "scene is called but has no return node");
    }
    if !is_called && (has_return || !s.params.is_empty()) {
        c.at(None, "scene has return nodes or params but is never called");
    }
}

fn check_minigame(
    c: &mut Ctx<'_>,
    node: &str,
    spec: &MiniGameSpec,
    edges: &[&domain::narrative::Edge],
) {
    match spec.game.as_str() {
        "reflex" => {
            let rounds = spec
                .rounds
                .unwrap_or(domain::narrative::scene::REFLEX_DEFAULT_ROUNDS);
            if rounds == 0 {
                c.at(Some(node), "reflex: rounds must be at least 1");
            }
            if spec.window_ms == Some(0) {
                c.at(Some(node), "reflex: window_ms must be positive");
            }
            if let Some(need) = spec.need
                && (need == 0 || need > rounds)
            {
                c.at(Some(node), format!("reflex: need must be in 1..={rounds}"));
            }
        }
        "skill_check" => {
            let entity = spec.entity.clone().unwrap_or_else(|| "player".into());
            let axis = spec.axis.clone().unwrap_or_else(|| "value".into());
            match &spec.stat {
                Some(stat) => {
                    let p = expr::Path::Stat {
                        stat: stat.clone(),
                        entity,
                        axis,
                    };
                    c.path(node, "skill_check", &p, &BTreeMap::new());
                }
                None => c.at(Some(node), "skill_check: missing 'stat'"),
            }
            if spec.difficulty.is_none() {
                c.at(Some(node), "skill_check: missing 'difficulty'");
            }
            if spec.die == Some(0) {
                c.at(Some(node), "skill_check: die must have at least 1 face");
            }
        }
        other => {
            c.at(
                Some(node),
                format!(
                    "unknown mini-game '{other}' (known: {})",
                    MINI_GAMES.join(", ")
                ),
            );
            return;
        }
    }
    let has_default = edges.iter().any(|e| e.default || e.on.is_none());
    for outcome in ["success", "failure"] {
        if !has_default && !edges.iter().any(|e| e.on.as_deref() == Some(outcome)) {
            c.at(
                Some(node),
                format!("mini-game has no edge for outcome '{outcome}'"),
            );
        }
    }
}

fn check_call(
    c: &mut Ctx<'_>,
    node: &str,
    scene: &str,
    args: &BTreeMap<String, ExprText>,
    bind: &BTreeMap<String, String>,
    params: &BTreeMap<String, Type>,
) {
    let Some(callee) = c.scenes.get(scene).cloned() else {
        c.at(Some(node), format!("call to undefined scene '{scene}'"));
        return;
    };
    for (k, v) in args {
        let t = c.expr(node, &format!("argument '{k}'"), v, params);
        match callee.params.get(k) {
            None => c.at(
                Some(node),
                format!("call passes argument '{k}' but scene '{scene}' has no such parameter"),
            ),
            Some(pt) => {
                if let Some(t) = t
                    && &t != pt
                {
                    c.at(
                        Some(node),
                        format!("argument '{k}' is {t}, scene '{scene}' expects {pt}"),
                    );
                }
            }
        }
    }
    for (k, pt) in &callee.params {
        if !args.contains_key(k) {
            c.at(
                Some(node),
                format!("call does not bind parameter '{k}' ({pt}) of scene '{scene}'"),
            );
        }
    }
    for (ret, var) in bind {
        let vt = c.var(node, &format!("bind '{ret}'"), var);
        match callee.returns.get(ret) {
            None => c.at(
                Some(node),
                format!("binds return value '{ret}' but scene '{scene}' does not return it"),
            ),
            Some(rt) => {
                if let Some(vt) = vt
                    && &vt != rt
                {
                    c.at(
                        Some(node),
                        format!(
                            "bind '{ret}': scene '{scene}' returns {rt}, variable '{var}' is {vt}"
                        ),
                    );
                }
            }
        }
    }
}
