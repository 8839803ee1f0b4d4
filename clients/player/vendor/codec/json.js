/**
 * The JSON encoding of schema values (the `pixsim.v2.json` WebSocket subprotocol), as
 * serde_json writes the Rust types: the value forms of `schema.ts`, a UUID as its
 * hyphenated string, an embedded value as the value itself, 64-bit integers as plain
 * JSON numbers (also beyond 2^53, from a `bigint`).
 */
import { CodecError, checkInt, describe, isUnknown, normalizeUuid, toInt, typeDef, variantOf, } from './schema.js';
/** JSON text of a plain value tree (objects, arrays, strings, numbers, bigints...). */
export function stringify(v) {
    if (v === null || v === undefined)
        return 'null';
    if (typeof v === 'bigint')
        return v.toString();
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string')
        return JSON.stringify(v);
    if (Array.isArray(v))
        return `[${v.map(stringify).join(',')}]`;
    if (v instanceof Uint8Array)
        return `[${Array.from(v).join(',')}]`;
    const parts = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${stringify(x)}`);
    return `{${parts.join(',')}}`;
}
/** The JSON tree of `value` as type `ty` (checked against the schema, fields in order). */
export function toJsonValue(schema, ty, value) {
    if (typeof ty === 'string')
        return namedToJson(schema, ty, value);
    if ('option' in ty)
        return value === null || value === undefined ? null : toJsonValue(schema, ty.option, value);
    if ('seq' in ty) {
        if (!Array.isArray(value))
            throw new CodecError(`a sequence is an array, not ${describe(value)}`);
        return value.map((v) => toJsonValue(schema, ty.seq, v));
    }
    if ('embedded' in ty) {
        if (isUnknown(value))
            throw new CodecError(`an unknown ${ty.embedded} (${value.unknown}) cannot be encoded`);
        return toJsonValue(schema, ty.embedded, value);
    }
    if ('tuple' in ty)
        return tupleToJson(schema, ty.tuple, value);
    throw new CodecError(`unknown type expression ${describe(ty)}`);
}
function tupleToJson(schema, types, value) {
    if (!Array.isArray(value) || value.length !== types.length) {
        throw new CodecError(`a tuple of ${types.length} is an array of ${types.length}, not ${describe(value)}`);
    }
    return types.map((t, i) => toJsonValue(schema, t, value[i]));
}
function fieldsToJson(schema, fields, value) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new CodecError(`a struct is an object, not ${describe(value)}`);
    }
    const obj = value;
    const out = {};
    for (const f of fields) {
        try {
            out[f.name] = toJsonValue(schema, f.type, obj[f.name]);
        }
        catch (e) {
            throw e instanceof CodecError ? new CodecError(`${f.name}: ${e.message}`) : e;
        }
    }
    return out;
}
function namedToJson(schema, ty, value) {
    switch (ty) {
        case 'bool':
            if (typeof value !== 'boolean')
                throw new CodecError(`not a bool: ${describe(value)}`);
            return value;
        case 'u8':
        case 'u16':
        case 'u32':
        case 'u64':
        case 'i32':
        case 'i64':
            return toInt(checkInt(ty, value));
        case 'string':
            if (typeof value !== 'string')
                throw new CodecError(`not a string: ${describe(value)}`);
            return value;
        case 'bytes':
            if (!(value instanceof Uint8Array))
                throw new CodecError(`bytes are a Uint8Array, not ${describe(value)}`);
            return Array.from(value);
        case 'uuid':
            return normalizeUuid(value);
    }
    const def = typeDef(schema, ty);
    if (def.kind === 'struct')
        return fieldsToJson(schema, def.fields, value);
    const [name, content] = variantOf(value);
    const v = def.variants.find((x) => x.name === name);
    if (v === undefined)
        throw new CodecError(`${ty} has no variant ${name}`);
    switch (v.kind) {
        case 'unit':
            return v.name;
        case 'struct':
            return { [v.name]: fieldsToJson(schema, v.fields, content) };
        case 'newtype':
            return { [v.name]: toJsonValue(schema, v.type, content) };
        case 'tuple':
            return { [v.name]: tupleToJson(schema, v.types, content) };
    }
    throw new CodecError(`${ty}: unknown variant kind`);
}
/**
 * The value of type `ty` from a parsed JSON tree, checked and normalized: unknown
 * fields are dropped (a newer peer appended them), a missing `Option` field is `null`,
 * an embedded enum value of a variant this schema does not know is `{unknown: name}`.
 */
export function fromJsonValue(schema, ty, json) {
    if (typeof ty === 'string')
        return namedFromJson(schema, ty, json);
    if ('option' in ty)
        return json === null || json === undefined ? null : fromJsonValue(schema, ty.option, json);
    if ('seq' in ty) {
        if (!Array.isArray(json))
            throw new CodecError(`a sequence is an array, not ${describe(json)}`);
        return json.map((v) => fromJsonValue(schema, ty.seq, v));
    }
    if ('embedded' in ty)
        return embeddedFromJson(schema, ty.embedded, json);
    if ('tuple' in ty) {
        if (!Array.isArray(json) || json.length !== ty.tuple.length)
            throw new CodecError(`bad tuple ${describe(json)}`);
        return ty.tuple.map((t, i) => fromJsonValue(schema, t, json[i]));
    }
    throw new CodecError(`unknown type expression ${describe(ty)}`);
}
/** An embedded value from JSON, leniently: an unknown enum variant is `{unknown: name}`. */
export function embeddedFromJson(schema, ty, json) {
    const def = typeDef(schema, ty);
    if (def.kind === 'enum') {
        const [name] = variantOf(json);
        if (!def.variants.some((v) => v.name === name))
            return { unknown: name };
    }
    return fromJsonValue(schema, ty, json);
}
function fieldsFromJson(schema, fields, json) {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw new CodecError(`a struct is an object, not ${describe(json)}`);
    }
    const obj = json;
    const out = {};
    for (const f of fields) {
        const isOption = typeof f.type === 'object' && 'option' in f.type;
        if (!(f.name in obj) && !isOption)
            throw new CodecError(`missing field ${f.name}`);
        try {
            out[f.name] = fromJsonValue(schema, f.type, obj[f.name]);
        }
        catch (e) {
            throw e instanceof CodecError ? new CodecError(`${f.name}: ${e.message}`) : e;
        }
    }
    return out;
}
function namedFromJson(schema, ty, json) {
    switch (ty) {
        case 'bool':
            if (typeof json !== 'boolean')
                throw new CodecError(`not a bool: ${describe(json)}`);
            return json;
        case 'u8':
        case 'u16':
        case 'u32':
        case 'u64':
        case 'i32':
        case 'i64':
            return toInt(checkInt(ty, json));
        case 'string':
            if (typeof json !== 'string')
                throw new CodecError(`not a string: ${describe(json)}`);
            return json;
        case 'bytes':
            if (!Array.isArray(json))
                throw new CodecError(`bytes are an array of numbers, not ${describe(json)}`);
            return Uint8Array.from(json.map((x) => Number(checkInt('u8', x))));
        case 'uuid':
            return normalizeUuid(json);
    }
    const def = typeDef(schema, ty);
    if (def.kind === 'struct')
        return fieldsFromJson(schema, def.fields, json);
    const [name, content] = variantOf(json);
    const v = def.variants.find((x) => x.name === name);
    if (v === undefined)
        throw new CodecError(`${ty} has no variant ${name}`);
    switch (v.kind) {
        case 'unit':
            return v.name;
        case 'struct':
            return { [v.name]: fieldsFromJson(schema, v.fields, content) };
        case 'newtype':
            return { [v.name]: fromJsonValue(schema, v.type, content) };
        case 'tuple':
            return { [v.name]: fromJsonValue(schema, { tuple: v.types }, content) };
    }
    throw new CodecError(`${ty}: unknown variant kind`);
}
/** JSON text of a value of the named type. */
export function toJson(schema, ty, value) {
    return stringify(toJsonValue(schema, ty, value));
}
/** Parses JSON text; a syntax error is a `CodecError`. */
export function parseJson(text) {
    try {
        return JSON.parse(text);
    }
    catch (e) {
        throw new CodecError(`malformed JSON: ${e.message}`);
    }
}
/** A value of the named type from JSON text, strictly (an unknown variant is an error). */
export function fromJsonStrict(schema, ty, text) {
    return fromJsonValue(schema, ty, parseJson(text));
}
/** A message of the named enum from JSON text as a client reads it: `null` when unknown. */
export function fromJsonLenient(schema, ty, text) {
    const v = embeddedFromJson(schema, ty, parseJson(text));
    return isUnknown(v) ? null : v;
}
//# sourceMappingURL=json.js.map