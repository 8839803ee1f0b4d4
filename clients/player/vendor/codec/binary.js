/**
 * The binary (postcard) encoding of schema values: a struct is its fields in order, an
 * enum its variant index (varint) and then the variant's content, an `Option` a 0 or 1
 * byte and then the value, a sequence its length and its elements, an embedded value a
 * byte string holding the value's own encoding.
 */
import { Reader, Writer } from './postcard.js';
import { CodecError, checkInt, describe, isUnknown, toInt, typeDef, uuidBytes, uuidString, variantOf, } from './schema.js';
/** Varint bytes at most, per unsigned integer type (u8 is a raw byte). */
const VARINT_BYTES = { u16: 3, u32: 5, u64: 10, i32: 5, i64: 10 };
/** Appends the encoding of `value` as type `ty`. */
export function encodeValue(schema, ty, value, w) {
    if (typeof ty === 'string')
        return encodeNamed(schema, ty, value, w);
    if ('option' in ty) {
        if (value === null || value === undefined)
            return w.byte(0);
        w.byte(1);
        return encodeValue(schema, ty.option, value, w);
    }
    if ('seq' in ty) {
        if (!Array.isArray(value))
            throw new CodecError(`a sequence is an array, not ${describe(value)}`);
        w.varint(BigInt(value.length));
        for (const v of value)
            encodeValue(schema, ty.seq, v, w);
        return;
    }
    if ('embedded' in ty) {
        if (isUnknown(value))
            throw new CodecError(`an unknown ${ty.embedded} (${value.unknown}) cannot be encoded`);
        const inner = new Writer();
        encodeValue(schema, ty.embedded, value, inner);
        return w.byteString(inner.finish());
    }
    if ('tuple' in ty)
        return encodeTuple(schema, ty.tuple, value, w);
    throw new CodecError(`unknown type expression ${describe(ty)}`);
}
function encodeTuple(schema, types, value, w) {
    if (!Array.isArray(value) || value.length !== types.length) {
        throw new CodecError(`a tuple of ${types.length} is an array of ${types.length}, not ${describe(value)}`);
    }
    types.forEach((t, i) => encodeValue(schema, t, value[i], w));
}
function encodeFields(schema, fields, value, w) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new CodecError(`a struct is an object, not ${describe(value)}`);
    }
    const obj = value;
    for (const f of fields) {
        try {
            encodeValue(schema, f.type, obj[f.name], w);
        }
        catch (e) {
            throw e instanceof CodecError ? new CodecError(`${f.name}: ${e.message}`) : e;
        }
    }
}
function encodeNamed(schema, ty, value, w) {
    switch (ty) {
        case 'bool':
            if (typeof value !== 'boolean')
                throw new CodecError(`not a bool: ${describe(value)}`);
            return w.byte(value ? 1 : 0);
        case 'u8':
            return w.byte(Number(checkInt(ty, value)));
        case 'u16':
        case 'u32':
        case 'u64':
            return w.varint(checkInt(ty, value));
        case 'i32':
        case 'i64':
            return w.zigzag(checkInt(ty, value));
        case 'string':
            if (typeof value !== 'string')
                throw new CodecError(`not a string: ${describe(value)}`);
            return w.string(value);
        case 'bytes':
            if (!(value instanceof Uint8Array))
                throw new CodecError(`bytes are a Uint8Array, not ${describe(value)}`);
            return w.byteString(value);
        case 'uuid':
            return w.byteString(uuidBytes(value));
    }
    const def = typeDef(schema, ty);
    if (def.kind === 'struct')
        return encodeFields(schema, def.fields, value, w);
    const [name, content] = variantOf(value);
    const v = def.variants.find((x) => x.name === name);
    if (v === undefined)
        throw new CodecError(`${ty} has no variant ${name}`);
    w.varint(BigInt(v.index));
    encodeVariant(schema, ty, v, content, w);
}
function encodeVariant(schema, ty, v, content, w) {
    switch (v.kind) {
        case 'unit':
            return;
        case 'struct':
            return encodeFields(schema, v.fields, content, w);
        case 'newtype':
            return encodeValue(schema, v.type, content, w);
        case 'tuple':
            return encodeTuple(schema, v.types, content, w);
    }
    throw new CodecError(`${ty}.${v.name}: unknown variant kind`);
}
/** Decodes a value of type `ty` from `r`. */
export function decodeValue(schema, ty, r) {
    if (typeof ty === 'string')
        return decodeNamed(schema, ty, r);
    if ('option' in ty) {
        const b = r.byte();
        if (b === 0)
            return null;
        if (b === 1)
            return decodeValue(schema, ty.option, r);
        throw new CodecError(`bad Option tag ${b}`);
    }
    if ('seq' in ty) {
        const n = r.length();
        const out = [];
        for (let i = 0; i < n; i++)
            out.push(decodeValue(schema, ty.seq, r));
        return out;
    }
    if ('embedded' in ty)
        return decodeEmbedded(schema, ty.embedded, r.byteString());
    if ('tuple' in ty)
        return ty.tuple.map((t) => decodeValue(schema, t, r));
    throw new CodecError(`unknown type expression ${describe(ty)}`);
}
/**
 * An embedded value from its own bytes, leniently: an enum tag this schema does not
 * know gives `{unknown: "#<tag>"}`, bytes after the known fields are ignored.
 */
export function decodeEmbedded(schema, ty, bytes) {
    const r = new Reader(bytes);
    const def = typeDef(schema, ty);
    if (def.kind === 'enum') {
        const tag = new Reader(bytes).varint(5);
        if (!def.variants.some((v) => BigInt(v.index) === tag))
            return { unknown: `#${tag}` };
    }
    return decodeValue(schema, ty, r);
}
function decodeFields(schema, fields, r) {
    const out = {};
    for (const f of fields) {
        try {
            out[f.name] = decodeValue(schema, f.type, r);
        }
        catch (e) {
            throw e instanceof CodecError ? new CodecError(`${f.name}: ${e.message}`) : e;
        }
    }
    return out;
}
function decodeNamed(schema, ty, r) {
    switch (ty) {
        case 'bool': {
            const b = r.byte();
            if (b > 1)
                throw new CodecError(`bad bool ${b}`);
            return b === 1;
        }
        case 'u8':
            return r.byte();
        case 'u16':
        case 'u32':
        case 'u64':
            return toInt(checkInt(ty, r.varint(VARINT_BYTES[ty])));
        case 'i32':
        case 'i64':
            return toInt(checkInt(ty, r.zigzag(VARINT_BYTES[ty])));
        case 'string':
            return r.string();
        case 'bytes':
            return r.byteString().slice();
        case 'uuid': {
            const b = r.byteString();
            if (b.length !== 16)
                throw new CodecError(`a UUID is 16 bytes, not ${b.length}`);
            return uuidString(b);
        }
    }
    const def = typeDef(schema, ty);
    if (def.kind === 'struct')
        return decodeFields(schema, def.fields, r);
    const tag = r.varint(5);
    const v = def.variants.find((x) => BigInt(x.index) === tag);
    if (v === undefined)
        throw new CodecError(`${ty} has no variant ${tag}`);
    switch (v.kind) {
        case 'unit':
            return v.name;
        case 'struct':
            return { [v.name]: decodeFields(schema, v.fields, r) };
        case 'newtype':
            return { [v.name]: decodeValue(schema, v.type, r) };
        case 'tuple':
            return { [v.name]: v.types.map((t) => decodeValue(schema, t, r)) };
    }
    throw new CodecError(`${ty}: unknown variant kind`);
}
/** Encodes a value of the named type to bytes. */
export function encode(schema, ty, value) {
    const w = new Writer();
    encodeValue(schema, ty, value, w);
    return w.finish();
}
/** Decodes a value of the named type, consuming the bytes exactly (as a server does). */
export function decodeStrict(schema, ty, bytes) {
    const r = new Reader(bytes);
    const v = decodeValue(schema, ty, r);
    if (r.remaining !== 0)
        throw new CodecError(`${r.remaining} trailing bytes after a ${ty}`);
    return v;
}
/**
 * Decodes a message of the named enum as a client does: `null` for a variant tag this
 * schema does not know (skip the message: a newer server added it); bytes after the
 * known fields ignored (fields a newer server appended).
 */
export function decodeLenient(schema, ty, bytes) {
    const v = decodeEmbedded(schema, ty, bytes);
    return isUnknown(v) ? null : v;
}
//# sourceMappingURL=binary.js.map