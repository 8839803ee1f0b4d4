/**
 * `@pixsim/client`: the PixSim game channel (protocol v2) for browsers and Node.
 *
 * - The codec: `encodeClientMessage` / `decodeServerMessage` (postcard),
 *   `encodeClientJson` / `decodeServerJson` (JSON), `frame` / `FrameDecoder` (stream
 *   framing), driven by `SCHEMA` (generated from the Rust types); `types.ts` has the
 *   message types.
 * - The client: `Rest` (login, scenes), `Connection` (one connection: hello,
 *   authenticate, create or join, commands, pings and world time, events) and
 *   `GameSession` (a session across connections, resumed after a drop).
 */
export * from './types.js';
export { SCHEMA } from './schema.js';
export * from './protocol.js';
export { CodecError, isUnknown, } from './codec/schema.js';
export { FrameDecoder, frame, MAX_FRAME_LEN, FRAME_HEADER_LEN } from './codec/framing.js';
export { toHex, fromHex } from './codec/postcard.js';
export { encode, decodeStrict, decodeLenient } from './codec/binary.js';
export { toJson, fromJsonStrict, fromJsonLenient, stringify } from './codec/json.js';
export * from './client/rest.js';
export * from './client/transport.js';
export * from './client/connection.js';
export * from './client/state.js';
export * from './client/session.js';
//# sourceMappingURL=index.js.map