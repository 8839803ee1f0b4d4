// Plays a game session to its end with random valid choices, answering each reflex
// mini-game prompt inside its window in the server's world time. Shared by
// play-to-end.mjs (Node) and the browser test page (e2e/play.html).
import { GameSession, Rest } from '../dist/index.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Logs in (registering first when asked), creates a session of the first scene
 * (the world's start scene) and plays it to an ending. `log(line)` gets one line per
 * step. Resolves with `{ending: <node id>, reason, session}`.
 */
export async function playToEnd({ http, email, password, register = false, transport = 'websocket', encoding, log = () => {}, onSession = () => {} }) {
  const rest = new Rest(http);
  if (register) log((await rest.register(email, password)) ? `registered ${email}` : `${email} exists already`);
  const login = await rest.login(email, password);
  const scenes = await rest.scenes(login.access_token);
  const first = scenes.find((s) => s.start) ?? scenes.find((s) => !s.locked);
  if (first === undefined) throw new Error('the server has no playable scene');
  const session = await GameSession.create(
    { http, token: login.access_token, transport, encoding, client: '@pixsim/client play-to-end' },
    first.id,
  );
  onSession(session);
  log(`session ${session.id} of ${first.id} (${first.title}) over ${transport}`);
  try {
    await session.timeSync();
    return await drive(session, log);
  } finally {
    session.close();
  }
}

/** The world time now: the session's clock, else the last event's time plus elapsed. */
function worldClock(session) {
  let anchor = null;
  return {
    saw(at_ms) {
      anchor = { world: at_ms, local: performance.now() };
    },
    now() {
      const synced = session.worldNow();
      if (synced !== null) return synced;
      return anchor === null ? 0 : Math.floor(anchor.world + performance.now() - anchor.local);
    },
  };
}

/** Reads the session's updates and acts on its state until it ends. */
export async function drive(session, log = () => {}) {
  const clock = worldClock(session);
  let node = session.state.position?.node ?? null;
  let handled = null; // the offer (choices array or prompt) acted on last
  for (;;) {
    // Act on the state as it stands (also before the first update: a session joined
    // earlier may be waiting for a choice), then wait for what the server says.
    if (session.state.ended !== null) return { ending: node, reason: session.state.ended, session };
    const prompt = session.state.minigame;
    const offer = session.state.choices;
    if (prompt !== null && handled !== prompt) {
      handled = prompt;
      await answerPrompt(session, clock, prompt, log);
    } else if (prompt === null && offer.length > 0 && handled !== offer) {
      handled = offer;
      await choose(session, clock, offer, log);
    }
    const u = await session.next();
    if (u === null) throw new Error('the session closed before it ended');
    if (u.type === 'joined') {
      node = session.state.position?.node ?? node;
      log(`${u.resumed ? 'rejoined' : 'joined'} at seq ${u.joined.next_seq}${node ? ` (node ${node})` : ''}`);
    } else if (u.type === 'event') {
      clock.saw(u.at_ms);
      const [name, body] = Object.entries(u.event)[0];
      if (name === 'NodeEntered') {
        node = body.node;
        log(`node ${body.scene}/${body.node} (${body.kind})`);
        for (const l of body.lines) log(`  ${l.speaker}: ${l.text}`);
      } else if (name === 'MiniGameRound') {
        log(`reflex round ${body.round}: ${body.hit ? 'hit' : `miss (${body.reason})`}`);
      } else if (name === 'MiniGameResult') {
        log(`mini-game ${body.game}: ${body.success ? 'success' : 'failure'}`);
      } else if (name === 'SessionEnded') {
        log(`session ended: ${body.reason}`);
        return { ending: node, reason: body.reason, session };
      }
    }
  }
}

async function answerPrompt(session, clock, p, log) {
  const opens = Number(p.opens_at_ms);
  const closes = Number(p.closes_at_ms);
  await sleep(opens - clock.now());
  // A little behind the estimate, so that the claim is never ahead of the server clock.
  const claim = Math.min(closes, Math.max(opens, clock.now() - 10));
  log(`reflex round ${p.round}/${p.rounds}: press at ${claim} (window ${opens}..${closes})`);
  const r = await session.command({ MiniGameInput: { round: p.round, nonce: p.nonce, client_time_ms: claim } });
  if (!r.ok) log(`  input rejected: ${r.code}`);
}

async function choose(session, clock, offer, log) {
  for (let attempt = 0; attempt < 20; attempt++) {
    if (session.state.choices !== offer) return; // the situation changed meanwhile
    const c = offer[Math.floor(Math.random() * offer.length)];
    await sleep(Number(c.available_at_ms) - clock.now() + 5);
    log(`choose ${c.edge}${c.label ? ` (${c.label})` : ''}`);
    const r = await session.command({ Choose: { edge: c.edge } });
    if (r.ok) return;
    log(`  rejected: ${r.code} ${r.message}`);
    await sleep(100 * (attempt + 1));
  }
  throw new Error('no offered choice was accepted in 20 attempts');
}
