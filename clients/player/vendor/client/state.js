/** A deep copy of a snapshot. */
export function cloneSnapshot(s) {
    return structuredClone(s);
}
/** An empty snapshot (before the first node). */
export function emptySnapshot() {
    return {
        position: null,
        choices: [],
        minigame: null,
        progression: { stats: [], items: [], quests: [], vars: [], xp: 0, level: 0, unlocked: [] },
        ended: null,
        presentation: null,
    };
}
function byKey(list, key) {
    return list.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
function quest(p, name) {
    let q = p.quests.find((x) => x.quest === name);
    if (q === undefined) {
        q = { quest: name, status: 'active', objectives: [] };
        p.quests.push(q);
        byKey(p.quests, (x) => x.quest);
    }
    return q;
}
function objective(p, q, o, progress, target, completed) {
    const view = quest(p, q);
    const existing = view.objectives.find((x) => x.objective === o);
    if (existing !== undefined)
        Object.assign(existing, { progress, target, completed });
    else
        view.objectives.push({ objective: o, progress, target, completed });
}
function setQuestStatus(p, name, status) {
    if (status === 'inactive') {
        p.quests = p.quests.filter((x) => x.quest !== name);
        return;
    }
    quest(p, name).status = status;
}
/** Applies one state change. */
export function applyChange(p, c) {
    if ('Var' in c) {
        const v = p.vars.find((x) => x.name === c.Var.name);
        if (v !== undefined)
            v.value = c.Var.value;
        else {
            p.vars.push({ ...c.Var });
            byKey(p.vars, (x) => x.name);
        }
    }
    else if ('Stat' in c) {
        const { stat, entity, axis, value } = c.Stat;
        const s = p.stats.find((x) => x.stat === stat && x.entity === entity && x.axis === axis);
        if (s !== undefined)
            s.value = value;
        else {
            p.stats.push({ stat, entity, axis, value });
            byKey(p.stats, (x) => `${x.stat}\u0000${x.entity}\u0000${x.axis}`);
        }
    }
    else if ('Item' in c) {
        p.items = p.items.filter((x) => x.item !== c.Item.item);
        if (c.Item.count > 0) {
            p.items.push({ ...c.Item });
            byKey(p.items, (x) => x.item);
        }
    }
    else if ('Quest' in c) {
        setQuestStatus(p, c.Quest.quest, c.Quest.status);
    }
    else if ('Objective' in c) {
        const { quest: q, objective: o, progress, target } = c.Objective;
        objective(p, q, o, progress, target, progress >= target);
    }
    else if ('Xp' in c) {
        p.xp = c.Xp.xp;
    }
    else if ('Level' in c) {
        p.level = c.Level.level;
    }
    else if ('Unlocked' in c) {
        if (!p.unlocked.includes(c.Unlocked.scene)) {
            p.unlocked.push(c.Unlocked.scene);
            p.unlocked.sort();
        }
    }
}
/** Applies one event to a snapshot (in place). */
export function applyEvent(s, e) {
    if ('NodeEntered' in e) {
        const { scene, node, kind, media, media_pending, lines, prompt, presentation } = e.NodeEntered;
        s.position = { scene, node, kind, media, media_pending, lines, prompt };
        // A revision-0 server sends none.
        s.presentation = presentation ?? null;
        s.choices = [];
        s.minigame = null;
    }
    else if ('ChoicesOffered' in e) {
        s.choices = e.ChoicesOffered.choices;
    }
    else if ('StateDelta' in e) {
        for (const c of e.StateDelta.changes)
            applyChange(s.progression, c);
    }
    else if ('MiniGamePrompt' in e) {
        s.minigame = { ...e.MiniGamePrompt };
        s.choices = [];
    }
    else if ('MiniGameRound' in e) {
        s.minigame = null;
    }
    else if ('QuestUpdated' in e) {
        setQuestStatus(s.progression, e.QuestUpdated.quest, e.QuestUpdated.status);
    }
    else if ('ObjectiveUpdated' in e) {
        const { quest: q, objective: o, progress, target, completed } = e.ObjectiveUpdated;
        objective(s.progression, q, o, progress, target, completed);
    }
    else if ('LevelUp' in e) {
        s.progression.level = e.LevelUp.level;
        s.progression.xp = e.LevelUp.xp;
    }
    else if ('SceneUnlocked' in e) {
        applyChange(s.progression, { Unlocked: { scene: e.SceneUnlocked.scene } });
    }
    else if ('SessionEnded' in e) {
        s.ended = e.SessionEnded.reason;
        s.position = null;
        s.presentation = null;
        s.choices = [];
        s.minigame = null;
    }
    else if ('PlaybackStep' in e) {
        const playback = s.presentation?.playback;
        if (s.position?.node === e.PlaybackStep.node && typeof playback === 'object' && 'Steps' in playback) {
            playback.Steps.current = e.PlaybackStep.step;
        }
    }
    else if ('MediaReady' in e) {
        const p = s.position;
        if (p !== null && p.scene === e.MediaReady.scene && p.node === e.MediaReady.node) {
            p.media = e.MediaReady.media;
            p.media_pending = false;
        }
    }
    // SessionStarted, Resumed, MiniGameResult, Error and MediaProgress (the figures of
    // pending media, for display) change nothing a snapshot holds.
}
//# sourceMappingURL=state.js.map