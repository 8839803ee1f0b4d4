// The package's copy of the schema (src/schema.ts) and the types generated from it
// (src/types.ts) are current with crates/protocol/schema/v2.json, and every type the
// schema names exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_DIR, SCHEMA_PATH, generate } from '../scripts/generate.mjs';
import { SCHEMA } from '../dist/index.js';

test('src/schema.ts and src/types.ts are generated from the current schema', () => {
  const want = generate(readFileSync(SCHEMA_PATH, 'utf8'));
  const hint = `stale: run \`npm run generate\` in clients/typescript (the schema is ${SCHEMA_PATH})`;
  assert.equal(readFileSync(join(PACKAGE_DIR, 'src', 'schema.ts'), 'utf8'), want.schemaTs, hint);
  assert.equal(readFileSync(join(PACKAGE_DIR, 'src', 'types.ts'), 'utf8'), want.typesTs, hint);
  assert.deepEqual(SCHEMA, JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')));
});

test('every type the schema names is defined, and variant indices are dense', () => {
  const named = [];
  const walk = (t) => {
    if (typeof t === 'string') named.push(t);
    else if ('option' in t) walk(t.option);
    else if ('seq' in t) walk(t.seq);
    else if ('embedded' in t) named.push(t.embedded);
    else if ('tuple' in t) t.tuple.forEach(walk);
  };
  for (const def of Object.values(SCHEMA.types)) {
    if (def.kind === 'struct') def.fields.forEach((f) => walk(f.type));
    else {
      def.variants.forEach((v, i) => {
        assert.equal(v.index, i);
        if (v.kind === 'struct') v.fields.forEach((f) => walk(f.type));
        if (v.kind === 'newtype') walk(v.type);
        if (v.kind === 'tuple') v.types.forEach(walk);
      });
    }
  }
  const prim = new Set(['bool', 'u8', 'u16', 'u32', 'u64', 'i32', 'i64', 'string', 'bytes', 'uuid']);
  for (const n of [...named, ...Object.values(SCHEMA.roots)]) assert.ok(prim.has(n) || n in SCHEMA.types, n);
});
