/**
 * The postcard primitives: LEB128 varints (unsigned, and zigzag for signed), byte
 * strings (a varint length and the bytes), UTF-8 strings, and a bounds-checked reader.
 */
import { CodecError } from './schema.js';
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
/** A growable byte buffer. */
export class Writer {
    buf = new Uint8Array(64);
    len = 0;
    reserve(n) {
        if (this.len + n <= this.buf.length)
            return;
        let size = this.buf.length * 2;
        while (size < this.len + n)
            size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(0, this.len));
        this.buf = next;
    }
    byte(b) {
        this.reserve(1);
        this.buf[this.len++] = b;
    }
    bytes(b) {
        this.reserve(b.length);
        this.buf.set(b, this.len);
        this.len += b.length;
    }
    /** An unsigned LEB128 varint. */
    varint(n) {
        if (n < 0n)
            throw new CodecError(`varint of a negative number ${n}`);
        do {
            let b = Number(n & 0x7fn);
            n >>= 7n;
            if (n > 0n)
                b |= 0x80;
            this.byte(b);
        } while (n > 0n);
    }
    /** A zigzag-encoded signed varint. */
    zigzag(n) {
        this.varint(n >= 0n ? n << 1n : (-n << 1n) - 1n);
    }
    /** A byte string: varint length, then the bytes. */
    byteString(b) {
        this.varint(BigInt(b.length));
        this.bytes(b);
    }
    string(s) {
        this.byteString(encoder.encode(s));
    }
    finish() {
        return this.buf.slice(0, this.len);
    }
}
/** Reads postcard primitives from a byte array; every read is bounds-checked. */
export class Reader {
    buf;
    pos = 0;
    constructor(buf) {
        this.buf = buf;
    }
    get remaining() {
        return this.buf.length - this.pos;
    }
    byte() {
        const b = this.buf[this.pos];
        if (b === undefined)
            throw new CodecError('unexpected end of input');
        this.pos += 1;
        return b;
    }
    take(n) {
        if (n > this.remaining)
            throw new CodecError(`a length of ${n} runs past the end of the input`);
        const out = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        return out;
    }
    /** An unsigned varint of at most `maxBytes` bytes (3 for u16, 5 for u32, 10 for u64). */
    varint(maxBytes) {
        let n = 0n;
        for (let i = 0; i < maxBytes; i++) {
            const b = this.byte();
            n |= BigInt(b & 0x7f) << BigInt(7 * i);
            if ((b & 0x80) === 0)
                return n;
        }
        throw new CodecError('bad varint');
    }
    zigzag(maxBytes) {
        const z = this.varint(maxBytes);
        return (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n);
    }
    /** A length (of a string, byte string or sequence): a u64 varint within the input. */
    length() {
        const n = this.varint(10);
        if (n > BigInt(this.remaining))
            throw new CodecError(`a length of ${n} runs past the end of the input`);
        return Number(n);
    }
    byteString() {
        return this.take(this.length());
    }
    string() {
        try {
            return decoder.decode(this.byteString());
        }
        catch (e) {
            if (e instanceof CodecError)
                throw e;
            throw new CodecError('a string is not valid UTF-8');
        }
    }
}
/** Lowercase hex of bytes. */
export function toHex(b) {
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
/** Bytes of a hex string. */
export function fromHex(hex) {
    if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex))
        throw new CodecError(`not hex: ${hex}`);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++)
        out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
}
//# sourceMappingURL=postcard.js.map