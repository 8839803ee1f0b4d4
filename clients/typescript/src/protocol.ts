/**
 * The protocol v2 codec bound to the schema: the binary (postcard) and JSON encodings of
 * the messages of each direction, the datagrams and the events, with the leniency a
 * client needs (an unknown server message or event is skipped, appended fields are
 * ignored) and the strictness a server applies to what it receives.
 */
import { decodeLenient, decodeStrict, encode } from './codec/binary.js';
import { fromJsonLenient, fromJsonStrict, toJson } from './codec/json.js';
import { CodecError, type Schema } from './codec/schema.js';
import { SCHEMA } from './schema.js';
import type { ClientDatagram, ClientMessage, ServerDatagram, ServerMessage } from './types.js';

/** A root of the schema: `client`, `server`, `client_datagram`, `server_datagram`, `event`. */
export type Root = 'client' | 'server' | 'client_datagram' | 'server_datagram' | 'event';

/** The type name of a root. */
export function rootType(root: Root, schema: Schema = SCHEMA): string {
  const name = schema.roots[root];
  if (name === undefined) throw new CodecError(`the schema has no root ${root}`);
  return name;
}

/** The postcard payload of a value of a root (no frame prefix). */
export function encodeRoot(root: Root, value: unknown): Uint8Array {
  return encode(SCHEMA, rootType(root), value);
}

/** A value of a root from its postcard payload, consumed exactly (strict, as a server). */
export function decodeRootStrict(root: Root, bytes: Uint8Array): unknown {
  return decodeStrict(SCHEMA, rootType(root), bytes);
}

/** A value of a root from its postcard payload as a client reads it; `null` = skip. */
export function decodeRootLenient(root: Root, bytes: Uint8Array): unknown | null {
  return decodeLenient(SCHEMA, rootType(root), bytes);
}

/** The JSON text of a value of a root. */
export function encodeRootJson(root: Root, value: unknown): string {
  return toJson(SCHEMA, rootType(root), value);
}

/** A value of a root from JSON text, strictly (an unknown message is an error). */
export function decodeRootJsonStrict(root: Root, text: string): unknown {
  return fromJsonStrict(SCHEMA, rootType(root), text);
}

/** A value of a root from JSON text as a client reads it; `null` = skip. */
export function decodeRootJsonLenient(root: Root, text: string): unknown | null {
  return fromJsonLenient(SCHEMA, rootType(root), text);
}

/** A client message's postcard payload. */
export function encodeClientMessage(msg: ClientMessage): Uint8Array {
  return encodeRoot('client', msg);
}

/** A client message's JSON text (`pixsim.v2.json`). */
export function encodeClientJson(msg: ClientMessage): string {
  return encodeRootJson('client', msg);
}

/**
 * A server message from its postcard payload, as a client must read it: `null` for a
 * message this client does not know (skip it), trailing bytes ignored, an unknown
 * event inside `Event` as `{unknown: "#<tag>"}`.
 */
export function decodeServerMessage(payload: Uint8Array): ServerMessage | null {
  return decodeRootLenient('server', payload) as ServerMessage | null;
}

/** A server message from JSON text, leniently (see `decodeServerMessage`). */
export function decodeServerJson(text: string): ServerMessage | null {
  return decodeRootJsonLenient('server', text) as ServerMessage | null;
}

/** A client datagram's payload. */
export function encodeClientDatagram(d: ClientDatagram): Uint8Array {
  return encodeRoot('client_datagram', d);
}

/** A server datagram from its payload; `null` when unknown. */
export function decodeServerDatagram(payload: Uint8Array): ServerDatagram | null {
  return decodeRootLenient('server_datagram', payload) as ServerDatagram | null;
}
