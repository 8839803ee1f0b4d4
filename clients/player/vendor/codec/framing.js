/**
 * The stream framing of QUIC and WebTransport: each message is a `u32` big-endian
 * payload length and the payload. A declared length above `MAX_FRAME_LEN` is an error
 * before anything is buffered for it.
 */
import { CodecError } from './schema.js';
/** Largest payload of one frame (and of one WebSocket message), 64 KiB. */
export const MAX_FRAME_LEN = 64 * 1024;
/** Length of the frame's length prefix. */
export const FRAME_HEADER_LEN = 4;
/** One frame around `payload`. */
export function frame(payload) {
    if (payload.length > MAX_FRAME_LEN) {
        throw new CodecError(`a frame of ${payload.length} bytes exceeds the maximum of ${MAX_FRAME_LEN}`);
    }
    const out = new Uint8Array(FRAME_HEADER_LEN + payload.length);
    new DataView(out.buffer).setUint32(0, payload.length, false);
    out.set(payload, FRAME_HEADER_LEN);
    return out;
}
/** Splits a byte stream, arriving in chunks of any size, into frame payloads. */
export class FrameDecoder {
    header = new Uint8Array(FRAME_HEADER_LEN);
    headerLen = 0;
    payload = null;
    payloadLen = 0;
    poisoned = false;
    /** The payloads completed by `chunk`. After an error every call throws. */
    push(chunk) {
        if (this.poisoned)
            throw new CodecError('frame decoder used after a framing error');
        const out = [];
        let i = 0;
        while (i < chunk.length) {
            if (this.payload === null) {
                const take = Math.min(FRAME_HEADER_LEN - this.headerLen, chunk.length - i);
                this.header.set(chunk.subarray(i, i + take), this.headerLen);
                this.headerLen += take;
                i += take;
                if (this.headerLen < FRAME_HEADER_LEN)
                    break;
                const len = new DataView(this.header.buffer).getUint32(0, false);
                if (len > MAX_FRAME_LEN) {
                    this.poisoned = true;
                    throw new CodecError(`a frame of ${len} bytes exceeds the maximum of ${MAX_FRAME_LEN}`);
                }
                this.payload = new Uint8Array(len);
                this.payloadLen = 0;
            }
            const take = Math.min(this.payload.length - this.payloadLen, chunk.length - i);
            this.payload.set(chunk.subarray(i, i + take), this.payloadLen);
            this.payloadLen += take;
            i += take;
            if (this.payloadLen === this.payload.length) {
                out.push(this.payload);
                this.payload = null;
                this.headerLen = 0;
            }
        }
        return out;
    }
    /** True when part of a frame is buffered (a stream ending now would be truncated). */
    get partial() {
        return this.headerLen > 0 || this.payload !== null;
    }
}
//# sourceMappingURL=framing.js.map