/**
 * The transports a client speaks the game channel over, behind one `Channel`:
 * WebSocket (`/api/v1/game/ws`, subprotocol `pixsim.v2`: one postcard payload per
 * binary message; `pixsim.v2.json`: one JSON message per text message) and WebTransport
 * (one bidirectional stream of `u32`-BE length-prefixed postcard payloads, the server
 * certificate pinned by the hashes `GET /api/v1/game/webtransport` publishes).
 * Browsers use their own `WebSocket` and `WebTransport`; Node uses its global
 * `WebSocket` when it has one, else the `ws` package, and WebTransport only when a
 * global `WebTransport` exists.
 */
import { FrameDecoder, frame } from '../codec/framing.js';
import { decodeServerJson, decodeServerMessage, encodeClientJson, encodeClientMessage, } from '../protocol.js';
import { Rest } from './rest.js';
/** The WebSocket subprotocols. */
export const SUBPROTOCOL = { binary: 'pixsim.v2', json: 'pixsim.v2.json' };
/** The protocol's close code of a WebSocket close code (`4000 + CloseCode`). */
export function closeCodeOfWebSocket(code) {
    if (code >= 4000 && code < 5000)
        return code - 4000;
    if (code === 1000)
        return 0;
    return null;
}
/** The game WebSocket URL of an HTTP base URL. */
export function webSocketUrl(http) {
    const u = new URL('/api/v1/game/ws', http.replace(/\/+$/, '') + '/');
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
}
async function webSocketCtor() {
    const g = globalThis.WebSocket;
    if (typeof g === 'function')
        return g;
    const mod = (await import('ws'));
    return mod.default;
}
function noop() { }
/** Opens a WebSocket channel to `http`'s game route. */
export async function openWebSocket(http, encoding) {
    const Ctor = await webSocketCtor();
    const ws = new Ctor(webSocketUrl(http), [SUBPROTOCOL[encoding]]);
    ws.binaryType = 'arraybuffer';
    let closed = false;
    const channel = {
        transport: 'websocket',
        encoding,
        onmessage: noop,
        onclose: noop,
        send(msg) {
            if (closed)
                return;
            ws.send(encoding === 'json' ? encodeClientJson(msg) : encodeClientMessage(msg));
        },
        close() {
            if (!closed)
                ws.close(1000, 'bye');
        },
    };
    const finish = (info) => {
        if (closed)
            return;
        closed = true;
        channel.onclose(info);
    };
    await new Promise((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = (ev) => reject(new Error(`WebSocket to ${webSocketUrl(http)} failed: ${errorText(ev)}`));
        ws.onclose = (ev) => reject(new Error(`WebSocket to ${webSocketUrl(http)} closed: ${ev.code} ${ev.reason}`));
    });
    if (ws.protocol !== '' && ws.protocol !== SUBPROTOCOL[encoding]) {
        ws.close(1002, 'wrong subprotocol');
        throw new Error(`the server chose the subprotocol ${ws.protocol}, not ${SUBPROTOCOL[encoding]}`);
    }
    ws.onerror = noop;
    ws.onclose = (ev) => finish({ code: closeCodeOfWebSocket(ev.code), reason: ev.reason });
    ws.onmessage = (ev) => {
        if (closed)
            return;
        let msg;
        try {
            if (typeof ev.data === 'string') {
                if (encoding !== 'json')
                    throw new Error('a text message on the binary subprotocol');
                msg = decodeServerJson(ev.data);
            }
            else {
                if (encoding !== 'binary')
                    throw new Error('a binary message on the JSON subprotocol');
                msg = decodeServerMessage(new Uint8Array(ev.data));
            }
        }
        catch (e) {
            ws.close(4001, 'protocol error');
            finish({ code: 1, reason: 'protocol error', error: `undecodable server message: ${e.message}` });
            return;
        }
        if (msg !== null)
            channel.onmessage(msg);
    };
    return channel;
}
function errorText(ev) {
    const e = ev;
    return e?.error?.message ?? e?.message ?? 'connection error';
}
/** Bytes of a base64 string. */
function fromBase64(s) {
    const bin = atob(s);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
/**
 * Opens a WebTransport channel: the endpoint and certificate hashes come from
 * `GET /api/v1/game/webtransport` on `http`.
 */
export async function openWebTransport(http, fetchFn) {
    const WT = globalThis.WebTransport;
    if (typeof WT !== 'function') {
        throw new Error('WebTransport is not available here: browsers (Chromium) have it; Node has no WebTransport ' +
            '(use the websocket transport there, or provide a global WebTransport)');
    }
    const info = await new Rest(http, fetchFn).webtransport();
    const wt = new WT(info.url, {
        serverCertificateHashes: info.certificate_hashes.map((h) => ({
            algorithm: h.algorithm,
            value: fromBase64(h.value),
        })),
    });
    await wt.ready;
    const stream = await wt.createBidirectionalStream();
    const writer = stream.writable.getWriter();
    const reader = stream.readable.getReader();
    let closed = false;
    const channel = {
        transport: 'webtransport',
        encoding: 'binary',
        onmessage: noop,
        onclose: noop,
        send(msg) {
            if (closed)
                return;
            writer.write(frame(encodeClientMessage(msg))).catch(noop);
        },
        close() {
            if (closed)
                return;
            try {
                wt.close({ closeCode: 0, reason: 'closed' });
            }
            catch {
                // already closing
            }
        },
    };
    const finish = (info) => {
        if (closed)
            return;
        closed = true;
        channel.onclose(info);
    };
    wt.closed.then((c) => finish({ code: c.closeCode ?? null, reason: c.reason ?? '' }), (e) => finish({ code: null, reason: '', error: String(e) }));
    void (async () => {
        const decoder = new FrameDecoder();
        try {
            for (;;) {
                const { value, done } = await reader.read();
                if (done)
                    break;
                for (const payload of decoder.push(value)) {
                    const msg = decodeServerMessage(payload);
                    if (msg !== null && !closed)
                        channel.onmessage(msg);
                }
            }
        }
        catch (e) {
            if (!closed) {
                // The session's own close (with its code) usually explains a stream error;
                // give it a moment to arrive before reporting the stream's.
                await Promise.race([wt.closed.catch(noop), new Promise((r) => setTimeout(r, 1000))]);
                finish({ code: null, reason: '', error: `stream: ${String(e)}` });
            }
        }
    })();
    return channel;
}
//# sourceMappingURL=transport.js.map