// The browser test page: plays the first scene to an ending with @pixsim/client over
// the transport named in the query (?transport=websocket|webtransport&email=&password=),
// showing the session as it goes. The result is in document.body.dataset.state
// (`done` or `error`) and window.pixsimResult.
import { playToEnd } from '../examples/autoplay.mjs';

const q = new URLSearchParams(location.search);
const transport = q.get('transport') ?? 'websocket';
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);

$('meta').textContent = `@pixsim/client · transport ${transport} · ${location.origin}`;

function render(session) {
  if (!session) return;
  const s = session.state;
  $('node').textContent = s.position ? `${s.position.scene} / ${s.position.node} (${s.position.kind})` : s.ended ? `ended: ${s.ended}` : '—';
  $('lines').innerHTML = (s.position?.lines ?? []).map((l) => `<p><b>${esc(l.speaker)}</b> ${esc(l.text)}</p>`).join('');
  $('choices').innerHTML = s.choices.map((c) => `<li>${esc(c.label ?? c.edge)}</li>`).join('');
  const p = s.progression;
  $('progress').textContent =
    `level ${p.level}, xp ${p.xp}; items: ${p.items.map((i) => `${i.item}×${i.count}`).join(', ') || 'none'}; ` +
    `quests: ${p.quests.map((x) => `${x.quest} (${x.status})`).join(', ') || 'none'}`;
}

let current = null;
const lines = [];
function log(line) {
  lines.push(line);
  $('log').textContent = lines.join('\n');
  render(current);
}

try {
  const result = await playToEnd({
    http: location.origin,
    email: q.get('email'),
    password: q.get('password'),
    register: true,
    transport,
    log: (line) => {
      log(line);
    },
    onSession: (s) => (current = s),
  });
  render(result.session);
  $('node').textContent = `ending: ${result.ending}`;
  $('result').textContent = `ending: ${result.ending} (${result.reason})`;
  $('result').className = 'ok';
  window.pixsimResult = { ending: result.ending, reason: result.reason, transport: result.session.connection.transport };
  document.body.dataset.state = 'done';
} catch (e) {
  log(`error: ${e?.stack ?? e}`);
  $('result').textContent = `error: ${e?.message ?? e}`;
  $('result').className = 'error';
  window.pixsimResult = { error: String(e?.stack ?? e) };
  document.body.dataset.state = 'error';
}
