#!/usr/bin/env node
// Resume over WebSocket, run by tests/ts_client.rs against a real server: play into the
// first scene, drop the connection at a node with choices, let the session move on
// meanwhile (a choice taken over REST), rejoin with last_seq, and check that the
// snapshot shows the new node, the events missed are sent again (exactly those, marked
// replayed, equal to what REST reported), and that playing on to the end delivers every
// sequence number once, with a state equal to a fresh join's snapshot.
//
//   node e2e/resume.mjs --http URL --email E --password P [--json]
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { GameSession, Rest, SCHEMA, fromJsonStrict } from '../dist/index.js';
import { drive } from '../examples/autoplay.mjs';

const { values } = parseArgs({
  options: {
    http: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
let step = 'starting';
const log = (line) => {
  step = line;
  console.log(line);
};
// A hang fails with where it hung.
setTimeout(() => {
  console.error(`resume.mjs: no progress for 90 s; last step: ${step}; last seq ${session?.lastSeq}`);
  process.exit(3);
}, 90_000).unref();
let session;
/** Where two JSON values differ, as `path: mine vs theirs`. */
function differences(a, b, path = '') {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (Array.isArray(a) && Array.isArray(b) && a.every((x) => x?.name !== undefined)) {
    const names = new Set([...a, ...b].map((x) => x.name));
    return [...names].flatMap((n) => differences(a.find((x) => x.name === n), b.find((x) => x.name === n), `${path}[${n}]`));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => differences(a[k], b[k], `${path}.${k}`));
  }
  return [`${path}: ${JSON.stringify(a)} (client) vs ${JSON.stringify(b)} (snapshot)`];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const rest = new Rest(values.http);
await rest.register(values.email, values.password);
const { access_token: token } = await rest.login(values.email, values.password);
const opts = { http: values.http, token, encoding: values.json ? 'json' : 'binary', autoResume: false };
session = await GameSession.create(opts, null);
await session.timeSync();

// Every update delivered, in order.
const seqs = [];
const next = session.next.bind(session);
session.next = async () => {
  const u = await next();
  if (u !== null && u.type !== 'joined') seqs.push(u.seq);
  return u;
};

// Into the scene: take the first choice (when revealed) until the dialogue offers `accept`.
for (;;) {
  const u = await session.next();
  assert.ok(u !== null, 'the session closed early');
  const s = session.state;
  if (s.position?.node === 'mara_talk' && s.choices.some((c) => c.edge === 'accept')) break;
  if (u.type === 'event' && 'ChoicesOffered' in u.event && s.position?.node === 'arrive') {
    const c = s.choices[0];
    await sleep(Number(c.available_at_ms) - session.worldNow() + 5);
    const r = await session.command({ Choose: { edge: c.edge } });
    assert.ok(r.ok, `choose ${c.edge}: ${JSON.stringify(r)}`);
  }
}
const seenBefore = session.lastSeq;
log(`at mara_talk, last seq ${seenBefore}: dropping the connection`);
session.connection.close();
await session.connection.closed;

// The session moves on while this client is away.
const moved = await rest.call('POST', `/api/v1/game/sessions/${session.id}/choose`, token, { edge: 'accept' });
assert.ok(moved.events.length > 0, 'the choice caused events');
// What this client missed: what it had not read before the drop, and what the choice caused.
const retained = await rest.call('GET', `/api/v1/game/sessions/${session.id}?from_seq=${seenBefore + 1}`, token);
const missed = retained.events.map((e) => ({ seq: e.seq, event: fromJsonStrict(SCHEMA, 'GameEvent', JSON.stringify(e.event)) }));
assert.equal(missed[0].seq, seenBefore + 1, 'the first missed event follows the last seen');
assert.equal(missed.at(-1).seq, moved.through_seq);
log(`meanwhile over REST: accept -> events ${missed[0].seq}..${missed.at(-1).seq}`);

const joined = await session.resume();
log(`rejoined: next_seq ${joined.next_seq}, node ${joined.snapshot.position?.node}`);
assert.equal(
  joined.snapshot.position?.node,
  'plan',
  `the join's snapshot shows where the session is now (node plan), it is ${JSON.stringify(joined.snapshot)}`,
);
assert.ok(joined.next_seq > missed.at(-1).seq, `next_seq ${joined.next_seq} covers the missed events`);
assert.deepEqual(session.state, joined.snapshot);
const u = await session.next();
assert.equal(u.type, 'joined');
assert.equal(u.resumed, true);
const replayed = [];
while (replayed.length < missed.length) {
  const e = await session.next();
  assert.ok(e !== null && e.type === 'event', `an event, not ${JSON.stringify(e)}`);
  assert.equal(e.replayed, true, `seq ${e.seq} is reflected in the snapshot`);
  replayed.push({ seq: e.seq, event: e.event });
}
assert.deepEqual(replayed, missed, 'exactly the missed events are sent again');
assert.deepEqual(session.state, joined.snapshot, 'replayed events are not applied twice');

// Play on to the end; then every seq was delivered exactly once.
const { ending } = await drive(session, (line) => log(`  ${line}`));
const last = session.lastSeq;
assert.deepEqual(seqs, Array.from({ length: last + 1 }, (_, i) => i), 'every seq once, in order');
session.close();

// The state kept from snapshot + live events equals what a fresh join shows.
const fresh = await GameSession.join(opts, session.id);
assert.equal(fresh.joined.next_seq, last + 1);
assert.equal(fresh.joined.ended, true);
// A quest's objectives that no event has reported yet are only in the snapshot (it lists
// all of the quest's, from the content): those the client has must match.
const questsAsStatus = (s) => ({
  ...s,
  progression: { ...s.progression, quests: s.progression.quests.map((q) => ({ quest: q.quest, status: q.status })) },
});
const mine = questsAsStatus(session.state);
const theirs = questsAsStatus(fresh.joined.snapshot);
assert.deepEqual(
  mine,
  theirs,
  `the client's state (snapshot + live events) equals a fresh join's snapshot; they differ at: ${differences(mine, theirs).join('; ')}`,
);
for (const q of session.state.progression.quests) {
  const theirs = fresh.joined.snapshot.progression.quests.find((x) => x.quest === q.quest);
  for (const o of q.objectives) assert.deepEqual(o, theirs.objectives.find((x) => x.objective === o.objective), `${q.quest}.${o.objective}`);
}
fresh.close();
log(`resume ok: ending ${ending}, ${last + 1} events, ${missed.length} resent`);
