// The golden vectors the Rust types generate (crates/protocol/golden/v2.json), both
// ways and in both encodings: the payload decodes to the vector's JSON value, the
// value encodes to the payload's exact bytes and to the same JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  PROTOCOL_VERSION,
  decodeRootJsonStrict,
  decodeRootLenient,
  decodeRootStrict,
  encodeRoot,
  encodeRootJson,
  fromHex,
  toHex,
} from '../dist/index.js';

const GOLDEN = fileURLToPath(new URL('../../../crates/protocol/golden/v2.json', import.meta.url));
const golden = JSON.parse(readFileSync(GOLDEN, 'utf8'));

test('the golden file is of this protocol version and covers every root', () => {
  assert.equal(golden.protocol_version, PROTOCOL_VERSION);
  const roots = new Set(golden.vectors.map((v) => v.root));
  for (const r of ['client', 'server', 'client_datagram', 'server_datagram']) assert.ok(roots.has(r), r);
  assert.ok(golden.vectors.length > 30, `${golden.vectors.length} vectors`);
});

for (const v of golden.vectors) {
  test(`golden ${v.name}`, () => {
    const bytes = fromHex(v.hex);
    // JSON -> value -> bytes.
    const value = decodeRootJsonStrict(v.root, JSON.stringify(v.json));
    assert.equal(toHex(encodeRoot(v.root, value)), v.hex, 'encoding the JSON value');
    // bytes -> value (strictly, and as a client reads it) -> JSON.
    assert.deepEqual(decodeRootStrict(v.root, bytes), value, 'decoding the bytes');
    assert.deepEqual(decodeRootLenient(v.root, bytes), value, 'decoding the bytes leniently');
    assert.deepEqual(JSON.parse(encodeRootJson(v.root, value)), v.json, 'the JSON encoding');
  });
}
