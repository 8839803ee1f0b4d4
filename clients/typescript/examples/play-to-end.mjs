#!/usr/bin/env node
// Plays a fresh session of the first scene to an ending with random valid choices,
// mini-games included, and prints `ending: <node id>` as its last line.
//
//   npm ci && npm run build      (once, in clients/typescript)
//   node examples/play-to-end.mjs --http http://127.0.0.1:8080 --email me@example.com \
//        --password secret123 [--register] [--transport websocket|webtransport] [--json]
//
// --register creates the account first (an existing one is fine); --json speaks the
// JSON subprotocol (pixsim.v2.json) on WebSocket. WebTransport needs a global
// WebTransport, which Node does not have: it is for browsers.
import { parseArgs } from 'node:util';
import { playToEnd } from './autoplay.mjs';

const { values } = parseArgs({
  options: {
    http: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    register: { type: 'boolean', default: false },
    transport: { type: 'string', default: 'websocket' },
    json: { type: 'boolean', default: false },
  },
});
if (!values.http || !values.email || !values.password || !['websocket', 'webtransport'].includes(values.transport)) {
  console.error(
    'usage: node play-to-end.mjs --http URL --email E --password P [--register] [--transport websocket|webtransport] [--json]',
  );
  process.exit(2);
}
try {
  const { ending } = await playToEnd({
    http: values.http,
    email: values.email,
    password: values.password,
    register: values.register,
    transport: values.transport,
    encoding: values.json ? 'json' : 'binary',
    log: (line) => console.log(line),
  });
  console.log(`ending: ${ending}`);
} catch (e) {
  console.error(`play-to-end: ${e?.stack ?? e}`);
  process.exit(1);
}
