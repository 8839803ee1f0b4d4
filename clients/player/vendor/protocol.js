/**
 * The protocol v2 codec bound to the schema: the binary (postcard) and JSON encodings of
 * the messages of each direction, the datagrams and the events, with the leniency a
 * client needs (an unknown server message or event is skipped, appended fields are
 * ignored) and the strictness a server applies to what it receives.
 */
import { decodeLenient, decodeStrict, encode } from './codec/binary.js';
import { fromJsonLenient, fromJsonStrict, toJson } from './codec/json.js';
import { CodecError } from './codec/schema.js';
import { SCHEMA } from './schema.js';
/** The type name of a root. */
export function rootType(root, schema = SCHEMA) {
    const name = schema.roots[root];
    if (name === undefined)
        throw new CodecError(`the schema has no root ${root}`);
    return name;
}
/** The postcard payload of a value of a root (no frame prefix). */
export function encodeRoot(root, value) {
    return encode(SCHEMA, rootType(root), value);
}
/** A value of a root from its postcard payload, consumed exactly (strict, as a server). */
export function decodeRootStrict(root, bytes) {
    return decodeStrict(SCHEMA, rootType(root), bytes);
}
/** A value of a root from its postcard payload as a client reads it; `null` = skip. */
export function decodeRootLenient(root, bytes) {
    return decodeLenient(SCHEMA, rootType(root), bytes);
}
/** The JSON text of a value of a root. */
export function encodeRootJson(root, value) {
    return toJson(SCHEMA, rootType(root), value);
}
/** A value of a root from JSON text, strictly (an unknown message is an error). */
export function decodeRootJsonStrict(root, text) {
    return fromJsonStrict(SCHEMA, rootType(root), text);
}
/** A value of a root from JSON text as a client reads it; `null` = skip. */
export function decodeRootJsonLenient(root, text) {
    return fromJsonLenient(SCHEMA, rootType(root), text);
}
/** A client message's postcard payload. */
export function encodeClientMessage(msg) {
    return encodeRoot('client', msg);
}
/** A client message's JSON text (`pixsim.v2.json`). */
export function encodeClientJson(msg) {
    return encodeRootJson('client', msg);
}
/**
 * A server message from its postcard payload, as a client must read it: `null` for a
 * message this client does not know (skip it), trailing bytes ignored, an unknown
 * event inside `Event` as `{unknown: "#<tag>"}`.
 */
export function decodeServerMessage(payload) {
    return decodeRootLenient('server', payload);
}
/** A server message from JSON text, leniently (see `decodeServerMessage`). */
export function decodeServerJson(text) {
    return decodeRootJsonLenient('server', text);
}
/** A client datagram's payload. */
export function encodeClientDatagram(d) {
    return encodeRoot('client_datagram', d);
}
/** A server datagram from its payload; `null` when unknown. */
export function decodeServerDatagram(payload) {
    return decodeRootLenient('server_datagram', payload);
}
//# sourceMappingURL=protocol.js.map