// The side panel: level and XP, stats, quests with their objectives and the inventory,
// from the session's progression (the join's snapshot kept current by StateDelta and the
// other progression events), and a short journal of what happened.
import { $, el, fill, n, show, words } from './dom.js';

/** Renders a `ProgressionView`. */
export function renderProgression(p) {
  $('level').textContent = `Level ${p.level}`;
  $('xp').textContent = `${n(p.xp)} XP`;
  const stats = p.stats.map((s) =>
    el(
      'li',
      {},
      el('span', {}, `${words(s.entity)} · ${words(s.stat === s.axis || s.axis === 'value' ? s.stat : s.axis)}`),
      el('b', {}, String(n(s.value))),
    ),
  );
  fill($('stats'), stats.length ? stats : [el('li', { class: 'muted' }, 'None yet')]);
  const quests = p.quests.map((q) =>
    el(
      'li',
      { class: `quest ${q.status}` },
      el('div', { class: 'quest-title' }, words(q.quest), el('span', { class: 'pill' }, q.status)),
      el(
        'ul',
        {},
        ...q.objectives.map((o) =>
          el(
            'li',
            { class: o.completed ? 'done' : '' },
            `${o.completed ? '✓' : '○'} ${words(o.objective)}`,
            o.target > 1 ? el('span', { class: 'muted' }, ` ${o.progress}/${o.target}`) : null,
          ),
        ),
      ),
    ),
  );
  fill($('quests'), quests.length ? quests : [el('li', { class: 'muted' }, 'No quest yet')]);
  const items = p.items.map((i) => el('li', {}, el('span', {}, words(i.item)), el('b', {}, `×${i.count}`)));
  fill($('items'), items.length ? items : [el('li', { class: 'muted' }, 'Empty')]);
}

/** Adds a journal line (the newest first, at most 30). */
export function journal(text, kind = '') {
  const list = $('journal');
  list.prepend(el('li', { class: kind }, text));
  while (list.children.length > 30) list.lastElementChild?.remove();
  show(list, true);
}

/** A journal line for an event worth telling, or null. */
export function describe(event) {
  const [name, b] = Object.entries(event)[0] ?? [];
  switch (name) {
    case 'StateDelta':
      return b.changes
        .map((c) => {
          if ('Item' in c) return `${words(c.Item.item)}: ${c.Item.count}`;
          if ('Xp' in c) return `XP ${n(c.Xp.xp)}`;
          if ('Stat' in c) return `${words(c.Stat.entity)} ${words(c.Stat.axis === 'value' ? c.Stat.stat : c.Stat.axis)} ${n(c.Stat.value)}`;
          return null;
        })
        .filter((x) => x !== null)
        .join(' · ') || null;
    case 'QuestUpdated':
      return `Quest ${words(b.quest)}: ${b.status}`;
    case 'ObjectiveUpdated':
      return `${words(b.objective)}${b.completed ? ' done' : ` ${b.progress}/${b.target}`}`;
    case 'LevelUp':
      return `Level up: ${b.level}`;
    case 'SceneUnlocked':
      return `Unlocked: ${words(b.scene)}`;
    case 'MiniGameRound':
      return `Round ${b.round}: ${b.hit ? 'hit' : 'miss'}`;
    case 'MiniGameResult':
      return `${words(b.game)}: ${b.success ? 'success' : 'failure'}`;
    case 'MediaReady':
      return 'The video is ready';
    case 'SessionEnded':
      return `The story ended (${b.reason})`;
    default:
      return null;
  }
}
