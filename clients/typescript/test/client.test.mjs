// The client (Connection, GameSession) against a scripted WebSocket server in this
// process: the handshake, commands answered by request id, unknown messages and events,
// time sync, the JSON subprotocol, resume without duplicates, and a final close code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import {
  Connection,
  GameSession,
  decodeRootJsonStrict,
  decodeRootStrict,
  encodeRoot,
  encodeRootJson,
  emptySnapshot,
} from '../dist/index.js';

const USER = '00000000-0000-0000-0000-0000000000aa';
const SESSION = '00000000-0000-0000-0000-0000000000bb';

/** A scripted server: `script(conn)` handles one connection; returns its base URL. */
async function server(script) {
  const wss = new WebSocketServer({ port: 0, handleProtocols: (ps) => [...ps][0] });
  await new Promise((r) => wss.once('listening', r));
  const conns = [];
  wss.on('connection', (ws, req) => {
    assert.equal(req.url, '/api/v1/game/ws');
    const json = ws.protocol === 'pixsim.v2.json';
    const inbox = [];
    let wake = null;
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, !json, 'the message kind matches the subprotocol');
      inbox.push(json ? decodeRootJsonStrict('client', data.toString()) : decodeRootStrict('client', new Uint8Array(data)));
      wake?.();
    });
    const conn = {
      ws,
      json,
      send: (m) => ws.send(json ? encodeRootJson('server', m) : encodeRoot('server', m)),
      raw: (bytes) => ws.send(bytes),
      async recv() {
        while (inbox.length === 0) await new Promise((r) => (wake = r));
        return inbox.shift();
      },
      /** The next message that is not a heartbeat or ping (answered). */
      async expect(kind) {
        for (;;) {
          const m = await conn.recv();
          if ('Heartbeat' in m) continue;
          if ('Ping' in m && kind !== 'Ping') {
            conn.send({ Pong: { nonce: m.Ping.nonce, server_time_ms: 1, world_time_ms: 50_000 } });
            continue;
          }
          assert.ok(kind in m, `expected ${kind}, got ${JSON.stringify(m)}`);
          return m[kind];
        }
      },
      async handshake() {
        const hello = await conn.expect('Hello');
        assert.equal(hello.protocol_version, 2);
        conn.send({ Welcome: { protocol_version: 2, server_version: 'fake 1', server_time_ms: 5 } });
        assert.equal((await conn.expect('Authenticate')).token, 'tok');
        conn.send({ Authenticated: { user_id: USER } });
      },
    };
    conns.push(conn);
    script(conn, conns.length).catch((e) => {
      console.error('script failed', e);
      ws.terminate();
    });
  });
  return { http: `http://127.0.0.1:${wss.address().port}`, close: () => wss.close(), conns };
}

const snapshot = (node) => ({
  ...emptySnapshot(),
  position: { scene: 's', node, kind: 'choice', media: null, media_pending: false, lines: [], prompt: null },
  choices: [{ edge: `${node}_go`, label: null, available_at_ms: 0 }],
});
const presentation = { playback: 'Normal', skippable: false, loopable: false, hotspots: [], group: null };
const entered = (node) => ({
  NodeEntered: { scene: 's', node, kind: 'choice', media: null, media_pending: false, lines: [], prompt: null, presentation },
});
const ev = (seq, event) => ({ Event: { seq, at_ms: 1000 + seq, event } });

for (const encoding of ['binary', 'json']) {
  test(`a session over ${encoding}: join, events, commands, unknown messages, time sync`, async () => {
    const srv = await server(async (c) => {
      await c.handshake();
      const create = await c.expect('CreateSession');
      assert.deepEqual(create, { scene: 'gallery', world: null });
      c.send({ SessionJoined: { session_id: SESSION, scene: 'gallery', next_seq: 0, ended: false, snapshot: emptySnapshot() } });
      if (c.json) c.ws.send('{"Confetti":{"n":1}}');
      else c.raw(Uint8Array.from([40, 1, 2, 3])); // a message of a newer server
      c.send(ev(0, entered('a')));
      c.send(ev(1, { ChoicesOffered: { node: 'a', choices: [{ edge: 'go', label: 'Go', available_at_ms: 0 }] } }));
      if (c.json) c.ws.send('{"Event":{"seq":2,"at_ms":3,"event":{"Fireworks":{}}}}');
      else c.raw(Uint8Array.from([5, 2, 6, 3, 99, 7, 7])); // an event of a newer server
      const ping = await c.expect('Ping');
      c.send({ Pong: { nonce: ping.nonce, server_time_ms: 1, world_time_ms: 77_000 } });
      const cmd = await c.expect('Command');
      assert.deepEqual(cmd.command, { Choose: { edge: 'go' } });
      c.send(ev(3, entered('b')));
      c.send({ Ack: { request_id: cmd.request_id, through_seq: 3 } });
      const bad = await c.expect('Command');
      c.send({ Rejected: { request_id: bad.request_id, code: 'edge_not_offered', message: 'no' } });
    });
    const session = await GameSession.create({ http: srv.http, token: 'tok', encoding, autoResume: false }, 'gallery');
    assert.equal(session.connection.userId, USER);
    assert.equal(session.connection.serverVersion, 'fake 1');
    const updates = [];
    for (let i = 0; i < 4; i++) updates.push(await session.next());
    assert.deepEqual(updates.map((u) => u.type), ['joined', 'event', 'event', 'unknown']);
    assert.equal(updates[3].name, encoding === 'json' ? 'Fireworks' : '#99');
    assert.equal(session.state.position.node, 'a');
    assert.deepEqual(session.state.choices.map((c) => c.edge), ['go']);
    const sample = await session.connection.ping();
    assert.equal(sample.worldTimeMs, 77_000);
    const now = session.worldNow();
    assert.ok(Math.abs(now - 77_000) < 1000, `${now}`);
    assert.deepEqual(await session.command({ Choose: { edge: 'go' } }), { ok: true, through_seq: 3 });
    assert.equal((await session.next()).seq, 3);
    assert.equal(session.state.position.node, 'b');
    assert.deepEqual(session.state.choices, []);
    assert.deepEqual(await session.command({ Choose: { edge: 'nope' } }), {
      ok: false,
      code: 'edge_not_offered',
      message: 'no',
    });
    session.close();
    srv.close();
  });
}

test('after a drop the session rejoins with last_seq: snapshot, resent events once, then live', async () => {
  const srv = await server(async (c, n) => {
    await c.handshake();
    if (n === 1) {
      await c.expect('CreateSession');
      c.send({ SessionJoined: { session_id: SESSION, scene: null, next_seq: 0, ended: false, snapshot: emptySnapshot() } });
      c.send(ev(0, entered('a')));
      c.send(ev(1, { LevelUp: { level: 2, xp: 60 } }));
      c.ws.terminate(); // the connection drops
      return;
    }
    const join = await c.expect('JoinSession');
    assert.deepEqual(join, { session_id: SESSION, last_seq: 1 });
    const snap = snapshot('c');
    snap.progression.level = 2;
    snap.progression.xp = 60;
    c.send({ SessionJoined: { session_id: SESSION, scene: null, next_seq: 4, ended: false, snapshot: snap } });
    c.send(ev(1, { LevelUp: { level: 2, xp: 60 } })); // already seen: dropped
    c.send(ev(2, entered('b')));
    c.send(ev(3, entered('c')));
    c.send(ev(4, { StateDelta: { changes: [{ Item: { item: 'coin', count: 3 } }, { Var: { name: 'v', value: '1' } }] } }));
    c.send(ev(5, { SessionEnded: { reason: 'success' } }));
  });
  const session = await GameSession.create({ http: srv.http, token: 'tok' }, null);
  const got = [];
  for (;;) {
    const u = await session.next();
    got.push(u.type === 'joined' ? `joined@${u.joined.next_seq}${u.resumed ? ' resumed' : ''}` : `${u.seq}${u.replayed ? ' replayed' : ''}`);
    if (u.type === 'event' && 'SessionEnded' in u.event) break;
  }
  assert.deepEqual(got, ['joined@0', '0', '1', 'joined@4 resumed', '2 replayed', '3 replayed', '4', '5']);
  assert.equal(session.resumes, 1);
  assert.equal(session.lastSeq, 5);
  assert.equal(session.state.ended, 'success');
  assert.equal(session.state.position, null);
  assert.deepEqual(session.state.progression.items, [{ item: 'coin', count: 3 }]);
  assert.deepEqual(session.state.progression.vars, [{ name: 'v', value: '1' }]);
  assert.equal(session.state.progression.level, 2);
  session.close();
  srv.close();
});

test('a session taken over is not resumed; the close code and the error are reported', async () => {
  const srv = await server(async (c) => {
    await c.handshake();
    await c.expect('JoinSession');
    c.send({ SessionJoined: { session_id: SESSION, scene: null, next_seq: 0, ended: false, snapshot: emptySnapshot() } });
    c.send({ Error: { code: 11, message: 'session taken over by another connection' } });
    c.ws.close(4011, 'session taken over by another connection');
  });
  const session = await GameSession.join({ http: srv.http, token: 'tok' }, SESSION);
  assert.equal((await session.next()).type, 'joined');
  await assert.rejects(session.next(), /11 session taken over by another connection.*server error/);
  assert.equal(srv.conns.length, 1, 'no rejoin');
  srv.close();
});

test('a failed handshake rejects with the server error', async () => {
  const srv = await server(async (c) => {
    await c.expect('Hello');
    c.send({ Welcome: { protocol_version: 2, server_version: 'fake', server_time_ms: 5 } });
    await c.expect('Authenticate');
    c.send({ Error: { code: 4, message: 'invalid token' } });
    c.ws.close(4004, 'not authenticated');
  });
  await assert.rejects(Connection.open({ http: srv.http, token: 'tok' }), (e) => e.code === 4 && /invalid token/.test(e.message));
  srv.close();
});
