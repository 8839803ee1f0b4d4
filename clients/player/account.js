// The player's account side: what is kept in localStorage across reloads (the token,
// the session being played and the last event seen in it), the sign-in/register form,
// and the story picker (the scenes to start, the sessions to resume).
import { RestError } from './vendor/index.js';
import { $, el, fill, show, words } from './dom.js';

const KEY = 'pixsim.player';

/** What survives a reload. */
export const saved = {
  read() {
    try {
      return JSON.parse(localStorage.getItem(KEY) ?? '{}') ?? {};
    } catch {
      return {};
    }
  },
  write(patch) {
    const next = { ...saved.read(), ...patch };
    for (const [k, v] of Object.entries(next)) if (v === null || v === undefined) delete next[k];
    localStorage.setItem(KEY, JSON.stringify(next));
  },
  clear() {
    localStorage.removeItem(KEY);
  },
};

/** A message for a failed REST call. */
export function restMessage(e) {
  if (e instanceof RestError) {
    if (e.status === 401) return 'Wrong email or password.';
    if (e.status === 409) return 'An account with this email exists already: sign in instead.';
    if (e.status === 429 || e.status === 503) return 'Too many attempts: wait a moment and try again.';
    if (e.status === 422 || e.status === 400) return e.message.replace(/^\d+ \w+: /, '');
    return e.message;
  }
  return String(e?.message ?? e);
}

/**
 * Wires the form: `onSignedIn(login)` gets `POST /api/v1/auth/login`'s answer, after a
 * registration too.
 */
export function authForm(rest, onSignedIn) {
  const form = $('auth-form');
  const err = $('auth-error');
  const fail = (e) => {
    err.textContent = restMessage(e);
    show(err, true);
  };
  const busy = (b) => {
    $('sign-in').disabled = b;
    $('register').disabled = b;
  };
  const credentials = () => [$('auth-email').value.trim(), $('auth-password').value];
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    show(err, false);
    busy(true);
    try {
      const [email, password] = credentials();
      onSignedIn(await rest.login(email, password));
    } catch (e) {
      fail(e);
    } finally {
      busy(false);
    }
  });
  $('register').addEventListener('click', async () => {
    show(err, false);
    busy(true);
    try {
      const [email, password] = credentials();
      await rest.call('POST', '/api/v1/auth/register', undefined, { email, password });
      onSignedIn(await rest.login(email, password));
    } catch (e) {
      fail(e);
    } finally {
      busy(false);
    }
  });
}

/** Fills the story picker; `start(scene)` and `resume(sessionId)` act on a pick. */
export async function fillPicker(rest, token, { start, resume }) {
  const [scenes, sessions] = await Promise.all([rest.scenes(token), rest.sessions(token)]);
  // A story starts at a start scene; the other scenes are chapters reached from one
  // (they may take arguments), offered only when the content names no start scene.
  const starts = scenes.filter((s) => s.start);
  const playable = starts.length > 0 ? starts : scenes.filter((s) => !s.locked);
  fill(
    $('stories'),
    playable.map((s) =>
      el(
        'li',
        {},
        el(
          'button',
          { type: 'button', class: s.start ? 'story primary' : 'story', id: `story-${s.id}`, 'data-scene': s.id },
          el('strong', {}, s.title),
          el('span', { class: 'muted' }, s.start ? 'Start here' : 'Chapter'),
        ),
      ),
    ),
  );
  for (const b of $('stories').querySelectorAll('button')) {
    b.addEventListener('click', () => start(b.dataset.scene));
  }
  const open = sessions.items.filter((s) => !s.ended);
  show($('no-sessions'), open.length === 0);
  fill(
    $('sessions'),
    open.map((s) =>
      el(
        'li',
        {},
        el(
          'button',
          { type: 'button', class: 'story', 'data-session': s.id },
          el('strong', {}, `${words(s.scene)}${s.node ? ` · ${words(s.node)}` : ''}`),
          el('span', { class: 'muted' }, `last played ${new Date(s.updated_at).toLocaleString()}`),
        ),
      ),
    ),
  );
  for (const b of $('sessions').querySelectorAll('button')) {
    b.addEventListener('click', () => resume(b.dataset.session));
  }
  const first = $('stories').querySelector('button');
  first?.focus();
}
