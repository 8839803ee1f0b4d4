// The codec against hand-made vectors from the Rust tests (crates/protocol/src/v2.rs,
// codec.rs), lenient decoding, integers at the edges, and the stream framing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CodecError,
  FrameDecoder,
  MAX_FRAME_LEN,
  decodeRootJsonLenient,
  decodeRootJsonStrict,
  decodeRootLenient,
  decodeRootStrict,
  decodeServerJson,
  decodeServerMessage,
  encodeClientJson,
  encodeClientMessage,
  encodeRoot,
  encodeRootJson,
  frame,
  fromHex,
  toHex,
} from '../dist/index.js';

const bytes = (...b) => Uint8Array.from(b);

test('frozen handshake tags and datagram layouts match the Rust tests', () => {
  assert.deepEqual(encodeClientMessage({ Hello: { protocol_version: 1, client: 'c' } }), bytes(0, 1, 1, 0x63));
  assert.deepEqual(encodeRoot('server', { Error: { code: 2, message: '' } }), bytes(2, 2, 0));
  assert.deepEqual(
    encodeRoot('server', { Welcome: { protocol_version: 1, server_version: '', server_time_ms: 300 } }),
    bytes(0, 1, 0, 0xac, 0x02),
  );
  assert.deepEqual(encodeRoot('client_datagram', { TimeSyncRequest: { client_send_us: 300 } }), bytes(0, 0xac, 0x02));
  assert.deepEqual(
    encodeRoot('server_datagram', { TimeSyncReply: { client_send_us: 1, world_time_ms: -1, tick: 2 } }),
    bytes(0, 1, 1, 2),
  );
  assert.deepEqual(
    decodeRootStrict('server_datagram', bytes(0, 1, 1, 2)),
    { TimeSyncReply: { client_send_us: 1, world_time_ms: -1, tick: 2 } },
  );
  assert.deepEqual(frame(encodeClientMessage({ Ping: { nonce: 1, client_time_us: 2 } })), bytes(0, 0, 0, 3, 1, 1, 2));
});

test('the JSON encoding matches the Rust tests', () => {
  const cases = [
    ['server', { Event: { seq: 7, at_ms: -1, event: { SessionEnded: { reason: 'success' } } } },
      '{"Event":{"seq":7,"at_ms":-1,"event":{"SessionEnded":{"reason":"success"}}}}'],
    ['server', { Error: { code: 11, message: 'x' } }, '{"Error":{"code":11,"message":"x"}}'],
    ['server', { Authenticated: { user_id: '00000000-0000-0000-0000-000000000001' } },
      '{"Authenticated":{"user_id":"00000000-0000-0000-0000-000000000001"}}'],
    ['client', { Command: { request_id: 1, command: 'Leave' } }, '{"Command":{"request_id":1,"command":"Leave"}}'],
  ];
  for (const [root, value, text] of cases) {
    assert.equal(encodeRootJson(root, value), text);
    assert.deepEqual(decodeRootJsonStrict(root, text), value);
    // Binary and back gives the same value.
    assert.deepEqual(decodeRootStrict(root, encodeRoot(root, value)), value);
  }
  assert.equal(encodeClientJson({ Command: { request_id: 1, command: 'Leave' } }), cases[3][2]);
});

test('an event is a byte string inside Event', () => {
  const msg = { Event: { seq: 3, at_ms: 4, event: { LevelUp: { level: 2, xp: 9 } } } };
  // tag 5, seq 3, at_ms zigzag(4) = 8, then the event's own bytes with their length.
  assert.equal(toHex(encodeRoot('server', msg)), '050308' + '03' + '0a0212');
  assert.deepEqual(decodeServerMessage(fromHex('050308030a0212')), msg);
});

test('a client skips unknown messages and events and ignores appended fields', () => {
  // An unknown message tag.
  assert.equal(decodeServerMessage(bytes(40, 1, 2)), null);
  assert.equal(decodeRootLenient('server', bytes(9)), null);
  // An unknown event tag inside a known message.
  assert.deepEqual(decodeServerMessage(bytes(5, 3, 8, 4, 99, 1, 2, 3)), {
    Event: { seq: 3, at_ms: 4, event: { unknown: '#99' } },
  });
  // A known event with a field appended, in a message with a field appended.
  assert.deepEqual(decodeServerMessage(fromHex('050000050a0212' + '0577' + '2a')), {
    Event: { seq: 0, at_ms: 0, event: { LevelUp: { level: 2, xp: 9 } } },
  });
  // A known message with a field appended.
  assert.deepEqual(decodeServerMessage(bytes(8, 5, 0xff)), { Heartbeat: { server_time_ms: 5 } });
  // ... which a strict (server-side) decoder refuses.
  assert.throws(() => decodeRootStrict('server', bytes(8, 5, 0xff)), CodecError);
  assert.throws(() => decodeRootStrict('client', bytes(1, 1, 2, 0)), CodecError);
  // JSON: an unknown event, an unknown field, an unknown message.
  assert.deepEqual(
    decodeServerJson('{"Event":{"seq":1,"at_ms":2,"event":{"Fireworks":{"n":1}},"later":true}}'),
    { Event: { seq: 1, at_ms: 2, event: { unknown: 'Fireworks' } } },
  );
  assert.deepEqual(
    decodeServerJson('{"Event":{"seq":1,"at_ms":2,"event":{"LevelUp":{"level":2,"xp":9,"extra":[1]}}}}'),
    { Event: { seq: 1, at_ms: 2, event: { LevelUp: { level: 2, xp: 9 } } } },
  );
  assert.equal(decodeServerJson('{"Confetti":{}}'), null);
  assert.equal(decodeRootJsonLenient('server', '"Fanfare"'), null);
  assert.throws(() => decodeServerJson('[1]'), CodecError);
  assert.throws(() => decodeServerJson('{'), CodecError);
  assert.throws(() => decodeRootJsonStrict('client', '{"Launch":{}}'), CodecError);
});

test('malformed payloads are errors, never crashes', () => {
  for (const b of [bytes(), bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), bytes(0, 1, 0xff, 0xff, 0xff, 0x0f), bytes(3, 0)]) {
    assert.throws(() => decodeServerMessage(b), CodecError, toHex(b));
  }
  // An Option tag other than 0/1, a bool other than 0/1, invalid UTF-8.
  assert.throws(() => decodeServerMessage(bytes(6, 1, 2)), CodecError);
  assert.throws(() => decodeServerMessage(bytes(8, 5).subarray(0, 1)), CodecError);
  assert.throws(() => decodeRootStrict('client', bytes(2, 1, 0xff)), CodecError);
  // Random bytes: decoded or refused with a CodecError.
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff);
  for (let i = 0; i < 2000; i++) {
    const b = Uint8Array.from({ length: 1 + (i % 40) }, rnd);
    try {
      decodeServerMessage(b);
    } catch (e) {
      assert.ok(e instanceof CodecError, `${toHex(b)}: ${e}`);
    }
  }
});

test('64-bit integers: numbers when safe, bigints beyond, zigzag for signed', () => {
  const max = { Ping: { nonce: 2n ** 64n - 1n, client_time_us: Number.MAX_SAFE_INTEGER } };
  const enc = encodeClientMessage(max);
  assert.equal(toHex(enc), '01' + 'ffffffffffffffffff01' + 'ffffffffffffff0f');
  assert.deepEqual(decodeRootStrict('client', enc), max);
  const min = { TimeSyncReply: { client_send_us: 0, world_time_ms: -(2n ** 63n), tick: 128 } };
  const b = encodeRoot('server_datagram', min);
  assert.equal(toHex(b), '00' + '00' + 'ffffffffffffffffff01' + '8001');
  assert.deepEqual(decodeRootStrict('server_datagram', b), min);
  assert.throws(() => encodeClientMessage({ Ping: { nonce: -1, client_time_us: 0 } }), CodecError);
  assert.throws(() => encodeClientMessage({ Ping: { nonce: 2n ** 64n, client_time_us: 0 } }), CodecError);
  assert.throws(() => encodeClientMessage({ Ping: { nonce: 1.5, client_time_us: 0 } }), CodecError);
  assert.equal(encodeRootJson('client', max), `{"Ping":{"nonce":18446744073709551615,"client_time_us":${Number.MAX_SAFE_INTEGER}}}`);
});

test('UUIDs are 16-byte byte strings on the wire and hyphenated strings in values', () => {
  const id = '0123abcd-4567-89ef-0123-456789abcdef';
  const msg = { JoinSession: { session_id: id.toUpperCase(), last_seq: null } };
  const enc = encodeClientMessage(msg);
  assert.equal(toHex(enc), '04' + '10' + id.replace(/-/g, '') + '00');
  assert.deepEqual(decodeRootStrict('client', enc), { JoinSession: { session_id: id, last_seq: null } });
  assert.throws(() => encodeClientMessage({ JoinSession: { session_id: 'nope', last_seq: 1 } }), CodecError);
});

test('encoding refuses values that do not fit the schema', () => {
  assert.throws(() => encodeClientMessage({ Launch: {} }), CodecError);
  assert.throws(() => encodeClientMessage({ Hello: { protocol_version: 2 } }), CodecError);
  assert.throws(() => encodeClientMessage({ Hello: { protocol_version: 70000, client: '' } }), CodecError);
  assert.throws(() => encodeRoot('server', { Event: { seq: 1, at_ms: 0, event: { unknown: '#99' } } }), CodecError);
});

test('framing: any chunking, empty payloads, the size limit', () => {
  const payloads = [bytes(), bytes(1, 2, 3), new Uint8Array(300).fill(7), bytes(9)];
  const stream = Uint8Array.from(payloads.flatMap((p) => [...frame(p)]));
  for (const size of [1, 2, 3, 4, 5, 7, 64, stream.length]) {
    const dec = new FrameDecoder();
    const got = [];
    for (let i = 0; i < stream.length; i += size) got.push(...dec.push(stream.subarray(i, i + size)));
    assert.deepEqual(got, payloads, `chunks of ${size}`);
    assert.equal(dec.partial, false);
  }
  const dec = new FrameDecoder();
  assert.deepEqual(dec.push(bytes(0, 0, 0, 2, 1)), []);
  assert.equal(dec.partial, true);
  // A declared length above the maximum is refused at once, and the decoder stays failed.
  const big = new FrameDecoder();
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, MAX_FRAME_LEN + 1);
  assert.throws(() => big.push(header), CodecError);
  assert.throws(() => big.push(bytes(0)), CodecError);
  assert.deepEqual(new FrameDecoder().push(frame(new Uint8Array(MAX_FRAME_LEN))).length, 1);
  assert.throws(() => frame(new Uint8Array(MAX_FRAME_LEN + 1)), CodecError);
});
