import { PROTOCOL_VERSION } from '../types.js';
import { openWebSocket, openWebTransport, } from './transport.js';
/** A failed step: the server's `Error`, or the connection closed. */
export class ChannelError extends Error {
    code;
    close;
    name = 'ChannelError';
    constructor(message, 
    /** The server's `ErrorCode` number, or the close code when the channel closed. */
    code, close) {
        super(message);
        this.code = code;
        this.close = close;
    }
}
const now = () => globalThis.performance.now();
/** A number of a decoded integer (exact below 2^53, which is what the server sends). */
export function num(v) {
    return typeof v === 'bigint' ? Number(v) : v;
}
/** A game channel connection. Create with `Connection.open`. */
export class Connection {
    channel;
    /** The user the connection is authenticated as. */
    userId = '';
    /** The server's version string from `Welcome`. */
    serverVersion = '';
    /** How the connection ended, once it has. */
    closeInfo = null;
    /** The last `Error` message the server sent. */
    lastError = null;
    /** The best clock sample so far (smallest round trip). */
    clock = null;
    waiter = null;
    commands = new Map();
    pings = new Map();
    nextRequest = 1;
    nextNonce = 1;
    events = [];
    eventWaiter = null;
    heartbeat = null;
    closedResolve;
    /** Resolves when the connection has closed, with why. */
    closed = new Promise((r) => (this.closedResolve = r));
    constructor(channel) {
        this.channel = channel;
        channel.onmessage = (m) => this.dispatch(m);
        channel.onclose = (info) => this.ended(info);
    }
    /** The transport in use. */
    get transport() {
        return this.channel.transport;
    }
    /** Connects, says hello and authenticates. */
    static async open(opts) {
        const kind = opts.transport ?? 'websocket';
        const channel = kind === 'webtransport'
            ? await openWebTransport(opts.http, opts.fetch)
            : await openWebSocket(opts.http, opts.encoding ?? 'binary');
        const c = new Connection(channel);
        try {
            const welcome = await c.request({ Hello: { protocol_version: PROTOCOL_VERSION, client: opts.client ?? '@pixsim/client' } }, ['Welcome']);
            if ('Welcome' in welcome)
                c.serverVersion = welcome.Welcome.server_version;
            const auth = await c.request({ Authenticate: { token: opts.token } }, ['Authenticated']);
            if ('Authenticated' in auth)
                c.userId = auth.Authenticated.user_id;
            const every = opts.heartbeatMs ?? 10_000;
            c.heartbeat = setInterval(() => c.send({ Heartbeat: { client_time_ms: Date.now() } }), every);
            c.heartbeat.unref?.();
            return c;
        }
        catch (e) {
            c.close();
            throw e;
        }
    }
    /** Sends a raw message. */
    send(msg) {
        this.channel.send(msg);
    }
    /** Sends `msg` and waits for the next message of one of `kinds` (or an `Error`). */
    request(msg, kinds) {
        if (this.closeInfo !== null)
            return Promise.reject(this.closedError());
        if (this.waiter !== null)
            return Promise.reject(new Error('one request at a time'));
        return new Promise((resolve, reject) => {
            this.waiter = { kinds, resolve, reject };
            this.send(msg);
        });
    }
    /** Creates a session (the world's start scene when `scene` is not given) and joins it. */
    async createSession(scene, world) {
        const m = await this.request({ CreateSession: { scene: scene ?? null, world: world ?? null } }, ['SessionJoined']);
        return joinedOf(m);
    }
    /**
     * Joins (or rejoins) one of the caller's sessions. The snapshot reflects every event
     * below `next_seq`; events with `lastSeq < seq < next_seq` are sent again after it
     * (already reflected), then live ones.
     */
    async joinSession(sessionId, lastSeq) {
        const m = await this.request({ JoinSession: { session_id: sessionId, last_seq: lastSeq } }, ['SessionJoined']);
        return joinedOf(m);
    }
    /**
     * Sends a command; resolves with its `Ack` or `Rejected`, rejects with a
     * `ChannelError` when the connection closes first (the command may have taken effect).
     */
    command(command) {
        if (this.closeInfo !== null)
            return Promise.reject(this.closedError());
        const request_id = this.nextRequest++;
        return new Promise((resolve, reject) => {
            this.commands.set(request_id, { resolve, reject });
            this.send({ Command: { request_id, command } });
        });
    }
    /** One ping: its round trip and the server's world time (null when no simulation runs). */
    ping() {
        if (this.closeInfo !== null)
            return Promise.reject(this.closedError());
        const nonce = this.nextNonce++;
        const t0 = now();
        return new Promise((resolve, reject) => {
            const done = (world) => {
                const t3 = now();
                const rttMs = t3 - t0;
                const sample = world === null ? null : { offsetMs: world - (t0 + t3) / 2, rttMs };
                if (sample !== null && (this.clock === null || sample.rttMs <= this.clock.rttMs))
                    this.clock = sample;
                resolve({ rttMs, worldTimeMs: world, sample });
            };
            this.pings.set(nonce, { resolve: done, reject });
            this.send({ Ping: { nonce, client_time_us: Math.floor(t0 * 1000) } });
        });
    }
    /**
     * Syncs the world clock with `samples` pings (the one with the smallest round trip
     * wins: its error is at most half of it). Mini-game inputs claim world time.
     */
    async timeSync(samples = 5) {
        for (let i = 0; i < samples; i++)
            await this.ping();
        return this.clock;
    }
    /** The server's world time now (ms), estimated; null before a time sync. */
    worldNow() {
        return this.clock === null ? null : Math.floor(now() + this.clock.offsetMs);
    }
    /** The next session event; null once the connection has closed and all are read. */
    async nextEvent() {
        for (;;) {
            const e = this.events.shift();
            if (e !== undefined)
                return e;
            if (this.closeInfo !== null)
                return null;
            await new Promise((r) => (this.eventWaiter = r));
        }
    }
    /** The session's events as they arrive, until the connection closes. */
    async *[Symbol.asyncIterator]() {
        for (;;) {
            const e = await this.nextEvent();
            if (e === null)
                return;
            yield e;
        }
    }
    /** Closes the connection (the session stays; it can be joined again). */
    close() {
        this.channel.close();
    }
    closedError() {
        const info = this.closeInfo ?? { code: null, reason: 'closed' };
        const err = this.lastError === null ? '' : ` (server error ${this.lastError.code}: ${this.lastError.message})`;
        const why = info.error === undefined ? '' : `: ${info.error}`;
        return new ChannelError(`connection closed: ${info.code ?? '-'} ${info.reason}${why}${err}`, info.code, info);
    }
    dispatch(m) {
        if (typeof m !== 'object')
            return;
        if ('Event' in m) {
            const { seq, at_ms, event } = m.Event;
            this.events.push({ seq: num(seq), at_ms: num(at_ms), event });
            this.wakeEvents();
        }
        else if ('Ack' in m) {
            const id = num(m.Ack.request_id);
            const through = m.Ack.through_seq;
            this.answer(id, { ok: true, through_seq: through === null ? null : num(through) });
        }
        else if ('Rejected' in m) {
            this.answer(num(m.Rejected.request_id), { ok: false, code: m.Rejected.code, message: m.Rejected.message });
        }
        else if ('Pong' in m) {
            const done = this.pings.get(num(m.Pong.nonce));
            this.pings.delete(num(m.Pong.nonce));
            const w = m.Pong.world_time_ms;
            done?.resolve(w === null ? null : num(w));
        }
        else if ('Error' in m) {
            this.lastError = { code: m.Error.code, message: m.Error.message };
            const w = this.waiter;
            this.waiter = null;
            w?.reject(new ChannelError(`server error ${m.Error.code}: ${m.Error.message}`, m.Error.code));
        }
        else if ('Heartbeat' in m) {
            // The answer to ours: the connection is alive.
        }
        else {
            const kind = Object.keys(m)[0] ?? '';
            const w = this.waiter;
            if (w !== null && w.kinds.includes(kind)) {
                this.waiter = null;
                w.resolve(m);
            }
        }
    }
    answer(id, r) {
        const done = this.commands.get(id);
        this.commands.delete(id);
        done?.resolve(r);
    }
    wakeEvents() {
        const w = this.eventWaiter;
        this.eventWaiter = null;
        w?.();
    }
    ended(info) {
        this.closeInfo = info;
        if (this.heartbeat !== null)
            clearInterval(this.heartbeat);
        const err = this.closedError();
        this.waiter?.reject(err);
        this.waiter = null;
        // A command whose answer did not come may or may not have taken effect.
        for (const done of this.commands.values())
            done.reject(err);
        this.commands.clear();
        for (const done of this.pings.values())
            done.reject(err);
        this.pings.clear();
        this.wakeEvents();
        this.closedResolve(info);
    }
}
function joinedOf(m) {
    if (typeof m !== 'object' || !('SessionJoined' in m))
        throw new Error('not SessionJoined');
    const j = m.SessionJoined;
    return { session_id: j.session_id, scene: j.scene, next_seq: num(j.next_seq), ended: j.ended, snapshot: j.snapshot };
}
//# sourceMappingURL=connection.js.map