// The PixSim web scene player (`/play`): signs in, picks a story or resumes a session,
// and plays it over the game channel through `@pixsim/client` (vendored under
// `vendor/`): WebTransport where the browser has it and the server publishes it, else
// WebSocket. A reload resumes the same session (its id and the last event seen are kept
// in localStorage). For tests, `window.pixsimPlayer` tells the screen, transport, node
// and a short history of what the stage did and which choices and presses were sent.
import { GameSession, Rest } from './vendor/index.js';
import { authForm, fillPicker, restMessage, saved } from './account.js';
import { Choices } from './choices.js';
import { $, el, fill, show, status, words } from './dom.js';
import { describe, journal, renderProgression } from './panel.js';
import { Reflex } from './reflex.js';
import { Stage, playbackOf } from './stage.js';

const rest = new Rest(location.origin);
/** How long a WebTransport connection may take before the player uses WebSocket. */
const WEBTRANSPORT_WAIT_MS = 5000;
const query = new URLSearchParams(location.search);

/** What the tests read. */
const hook = { screen: 'loading', transport: null, sessionId: null, node: null, ended: null, history: [] };
window.pixsimPlayer = hook;

let token = null;
let session = null;
/** The current node's presentation (the snapshot's, then each NodeEntered's). */
let presentation = null;
/** The last node stood at (the ending's, once the session has ended). */
let lastNode = null;
/** World time of the last event and when it came (before a time sync). */
let anchor = null;

function screen(name) {
  hook.screen = name;
  document.body.dataset.screen = name;
  for (const s of ['auth', 'pick', 'play']) show($(s), s === name);
  show($('sign-out'), name !== 'auth');
  show($('to-stories'), name === 'play');
}

function worldNow() {
  const w = session?.worldNow() ?? null;
  if (w !== null) return w;
  return anchor === null ? 0 : Math.floor(anchor.world + performance.now() - anchor.local);
}

const stage = new Stage(
  () => token,
  (kind, detail) => {
    hook.history.push(`${kind}:${typeof detail === 'string' ? detail : (detail?.current ?? '')}`);
    render();
  },
);
const choices = new Choices(worldNow, async (edge) => {
  hook.history.push(`choose:${edge}`);
  const r = await session.command({ Choose: { edge } });
  hook.history.push(r.ok ? `chosen:${edge}` : `refused:${edge}`);
  if (!r.ok) status(`That choice was refused: ${r.message}`, true);
  return r.ok;
});
const reflex = new Reflex(worldNow, async (input) => {
  hook.history.push(`press:${input.MiniGameInput.round}`);
  const r = await session.command(input);
  if (!r.ok) journal(`Input refused: ${r.message}`, 'bad');
});

// ---- signing in and picking ----

async function signedIn(login) {
  token = login.access_token;
  saved.write({ token, email: login.user.email });
  $('who').textContent = login.user.email;
  await showPicker();
}

async function showPicker() {
  leaveSession();
  screen('pick');
  status('');
  try {
    await fillPicker(rest, token, { start: (scene) => play({ scene }), resume: (id) => play({ id }) });
  } catch (e) {
    status(restMessage(e), true);
  }
}

function leaveSession() {
  if (session !== null) session.close();
  session = null;
  hook.sessionId = null;
  saved.write({ session: null, lastSeq: null });
}

// ---- the game channel ----

/** Opens a session over WebTransport when offered, else (or when it fails) WebSocket. */
async function connect(make) {
  const base = { http: location.origin, token, client: 'pixsim-player' };
  if (typeof globalThis.WebTransport === 'function' && query.get('transport') !== 'websocket') {
    const attempt = make({ ...base, transport: 'webtransport' });
    try {
      return await Promise.race([
        attempt,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), WEBTRANSPORT_WAIT_MS)),
      ]);
    } catch (e) {
      // A late success is closed: the WebSocket session takes over.
      attempt.then((late) => late.close(), () => {});
      journal(`WebTransport unavailable (${e?.message ?? e}); using WebSocket`);
    }
  }
  return make({ ...base, transport: 'websocket' });
}

/** Starts a session of `scene`, or joins session `id` (with `lastSeq` after a reload). */
async function play({ scene, id, lastSeq = null }) {
  leaveSession();
  screen('play');
  status('Connecting…');
  fill($('journal'), []);
  hook.history.push(id ? `join:${id}` : `start:${scene}`);
  const s = await connect((opts) => (id ? GameSession.join(opts, id, lastSeq) : GameSession.create(opts, scene)));
  session = s;
  hook.sessionId = s.id;
  hook.transport = s.connection.transport;
  $('transport').textContent = hook.transport === 'webtransport' ? 'WebTransport' : 'WebSocket';
  show($('transport'), true);
  saved.write({ session: s.id, lastSeq: s.lastSeq });
  status('');
  await s.timeSync();
  void run(s);
}

async function run(s) {
  try {
    for (;;) {
      const u = await s.next();
      if (u === null || session !== s) return;
      update(u);
      if (s.lastSeq !== null) saved.write({ lastSeq: s.lastSeq });
      render();
    }
  } catch (e) {
    if (session !== s) return;
    status(`Disconnected: ${e?.message ?? e}. Reload the page to carry on.`, true);
  }
}

function update(u) {
  if (u.type === 'joined') {
    presentation = u.joined.snapshot.presentation ?? null;
    if (u.resumed) journal('Reconnected');
    return;
  }
  if (u.type !== 'event') return;
  anchor = { world: u.at_ms, local: performance.now() };
  if (u.replayed) return;
  const [name, body] = Object.entries(u.event)[0] ?? [];
  if (name === 'NodeEntered') {
    presentation = body.presentation ?? null;
    hook.history.push(`node:${body.node}`);
  } else if (name === 'PlaybackStep') {
    const steps = presentation?.playback?.Steps;
    if (steps !== undefined) presentation = { ...presentation, playback: { Steps: { ...steps, current: body.step } } };
  } else if (name === 'MediaProgress') {
    stage.mediaProgress(body);
    hook.history.push(`progress:${body.progress}`);
  } else if (name === 'SessionEnded') {
    hook.ended = body.reason;
    hook.history.push(`ended:${body.reason}`);
    saved.write({ session: null, lastSeq: null });
  } else if (name === 'Error') {
    journal(`${body.message}`, 'bad');
  }
  const line = describe(u.event);
  if (line !== null) journal(line, name === 'MiniGameRound' && !body.hit ? 'bad' : '');
}

// ---- rendering the session ----

/** The dialogue box shows while it has lines, a prompt or choices. */
function dialogueBox() {
  const pos = session?.state.position ?? null;
  const said = (pos?.lines ?? []).length > 0 || !!pos?.prompt;
  show($('dialogue'), said || $('choices').children.length > 0 || !$('waiting').hidden);
}
choices.onRender = dialogueBox;

function render() {
  if (session === null) return;
  const st = session.state;
  const pos = st.position;
  if (pos !== null) lastNode = pos.node;
  hook.node = pos?.node ?? null;
  document.body.dataset.node = hook.node ?? '';
  $('where').textContent = pos ? `${words(pos.scene)} · ${words(pos.node)}` : '';
  $('prompt').textContent = pos?.prompt ?? '';
  show($('prompt'), !!pos?.prompt);
  fill(
    $('lines'),
    (pos?.lines ?? []).map((l) =>
      el('li', { class: l.speaker === 'player' ? 'line you' : 'line' }, el('b', {}, words(l.speaker)), el('span', {}, l.text)),
    ),
  );
  stage.showNode(pos, presentation).catch((e) => status(`The media failed: ${e?.message ?? e}`, true));
  choices.set(st.choices, presentation?.hotspots ?? []);
  dialogueBox();
  reflex.set(st.minigame);
  renderProgression(st.progression);
  const steps = playbackOf(presentation);
  const canContinue = steps.mode === 'steps' && stage.stepDone && st.minigame === null;
  if (canContinue && $('continue').hidden && document.activeElement === document.body) {
    show($('continue'), true);
    $('continue').focus();
  }
  show($('continue'), canContinue);
  show($('ended'), st.ended !== null);
  if (st.ended !== null) {
    $('ended-title').textContent = `The end: ${words(lastNode ?? st.ended)}`;
    $('ended-text').textContent = `The story is over (${st.ended}).`;
    if (!$('ended').contains(document.activeElement)) $('ended-back').focus();
  }
}

// ---- controls and keys ----

$('play-pause').addEventListener('click', () => {
  $('play-pause').textContent = stage.togglePause() ? 'Play' : 'Pause';
});
$('sound').addEventListener('click', () => {
  const v = $('video');
  v.muted = !v.muted;
  $('sound').textContent = v.muted ? 'Sound off' : 'Sound on';
});
$('skip').addEventListener('click', () => stage.skip());
$('continue').addEventListener('click', async () => {
  show($('continue'), false);
  const r = await session.command('Continue');
  if (!r.ok) status(`Cannot continue: ${r.message}`, true);
});
$('ended-back').addEventListener('click', () => showPicker());
$('to-stories').addEventListener('click', () => showPicker());
$('sign-out').addEventListener('click', async () => {
  leaveSession();
  const t = token;
  token = null;
  saved.clear();
  $('who').textContent = '';
  screen('auth');
  if (t !== null) await rest.call('POST', '/api/v1/auth/logout', t).catch(() => {});
});

document.addEventListener('keydown', (ev) => {
  if (hook.screen !== 'play' || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  if (ev.target instanceof HTMLInputElement) return;
  if ((ev.key === 'Enter' || ev.key === ' ') && reflex.open) {
    ev.preventDefault();
    void reflex.press();
  } else if (/^[1-9]$/.test(ev.key) && choices.key(Number(ev.key))) {
    ev.preventDefault();
  }
});

// ---- start ----

async function boot() {
  authForm(rest, (login) => signedIn(login).catch((e) => status(restMessage(e), true)));
  const kept = saved.read();
  if (!kept.token) {
    screen('auth');
    $('auth-email').focus();
    return;
  }
  token = kept.token;
  try {
    const me = await rest.call('GET', '/api/v1/users/me', token);
    $('who').textContent = me.email ?? kept.email ?? '';
  } catch {
    saved.clear();
    token = null;
    screen('auth');
    return;
  }
  if (kept.session) {
    try {
      await play({ id: kept.session, lastSeq: kept.lastSeq ?? null });
      return;
    } catch (e) {
      journal(`Could not resume: ${e?.message ?? e}`, 'bad');
    }
  }
  await showPicker();
}

boot().catch((e) => status(`The player failed to start: ${e?.message ?? e}`, true));
