/**
 * The shape of the protocol schema (`crates/protocol/schema/v2.json`, generated from
 * the Rust types) and of the values the codec reads and writes.
 *
 * Values have one form for both encodings, the form of the JSON encoding: a struct is
 * an object; an enum's struct variant is `{Name: {fields}}`, a unit variant the string
 * `"Name"`, a newtype variant `{Name: value}`, a tuple variant `{Name: [values]}`;
 * `Option` is `null` or the value; a sequence is an array; a UUID is its hyphenated
 * string; `bytes` is a `Uint8Array`. Integers are `number`s; a 64-bit one beyond
 * ±(2^53 − 1) decodes to a `bigint` (and `bigint` is accepted when encoding).
 */
/** A value that does not fit the schema, or bytes that are not a valid encoding. */
export class CodecError extends Error {
    name = 'CodecError';
}
/** The definition of a named type. */
export function typeDef(schema, name) {
    const def = schema.types[name];
    if (def === undefined)
        throw new CodecError(`the schema has no type ${name}`);
    return def;
}
/** True when `v` is the `{unknown}` form of an embedded value. */
export function isUnknown(v) {
    return typeof v === 'object' && v !== null && 'unknown' in v && Object.keys(v).length === 1;
}
/** The variant name and content of an enum value (`"Name"` or `{Name: content}`). */
export function variantOf(value) {
    if (typeof value === 'string')
        return [value, undefined];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length === 1) {
            const k = keys[0];
            return [k, value[k]];
        }
    }
    throw new CodecError(`an enum value is "Name" or {Name: ...}, not ${describe(value)}`);
}
/** A short description of a value for error messages. */
export function describe(v) {
    try {
        const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
        return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
    }
    catch {
        return String(v);
    }
}
/** An integer type's inclusive range. */
export const INT_RANGES = {
    u8: [0n, 0xffn],
    u16: [0n, 0xffffn],
    u32: [0n, 0xffffffffn],
    u64: [0n, 0xffffffffffffffffn],
    i32: [-(2n ** 31n), 2n ** 31n - 1n],
    i64: [-(2n ** 63n), 2n ** 63n - 1n],
};
/** `v` as a bigint integer within the range of `ty`, or a `CodecError`. */
export function checkInt(ty, v) {
    let n;
    if (typeof v === 'bigint')
        n = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v))
        n = BigInt(v);
    else
        throw new CodecError(`${ty}: not an integer: ${describe(v)}`);
    const range = INT_RANGES[ty];
    if (range === undefined)
        throw new CodecError(`unknown integer type ${ty}`);
    if (n < range[0] || n > range[1])
        throw new CodecError(`${ty}: ${n} is out of range`);
    return n;
}
/** A decoded integer: a number when it is safe, else a bigint. */
export function toInt(n) {
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The 16 bytes of a hyphenated UUID string. */
export function uuidBytes(v) {
    if (typeof v !== 'string' || !UUID_RE.test(v))
        throw new CodecError(`not a UUID: ${describe(v)}`);
    const hex = v.replace(/-/g, '');
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++)
        out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
}
/** The hyphenated lowercase string of 16 UUID bytes. */
export function uuidString(b) {
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
/** A hyphenated lowercase UUID string, validated. */
export function normalizeUuid(v) {
    return uuidString(uuidBytes(v));
}
//# sourceMappingURL=schema.js.map