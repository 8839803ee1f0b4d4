import { Connection } from './connection.js';
import { applyEvent, cloneSnapshot } from './state.js';
import { isUnknown } from '../codec/schema.js';
/** Close codes after which joining again cannot help. */
const FINAL_CLOSE_CODES = new Set([
    2, // version mismatch
    4, // unauthenticated
    11, // session taken over by another connection
]);
/** A game session that survives connection drops. */
export class GameSession {
    opts;
    connection;
    joined;
    /** The session's state now. */
    state;
    /** The last event sequence number delivered. */
    lastSeq = null;
    /** The current join's `next_seq`: events below it are reflected in its snapshot. */
    joinedAt;
    /** Resumes so far. */
    resumes = 0;
    pending = [];
    stopped = false;
    constructor(opts, connection, joined) {
        this.opts = opts;
        this.connection = connection;
        this.joined = joined;
        this.state = cloneSnapshot(joined.snapshot);
        this.joinedAt = joined.next_seq;
        this.pending.push({ type: 'joined', joined, resumed: false });
    }
    /** The session id. */
    get id() {
        return this.joined.session_id;
    }
    /** Connects and creates a new session of `scene` (the world's start scene when null). */
    static async create(opts, scene) {
        const c = await Connection.open(opts);
        try {
            return new GameSession(opts, c, await c.createSession(scene));
        }
        catch (e) {
            c.close();
            throw e;
        }
    }
    /**
     * Connects and joins an existing session: afresh (its snapshot, no history), or, with
     * the `lastSeq` a previous run of this client saw (kept across a page reload), with
     * the events after it sent again as `replayed` (already reflected in the snapshot).
     */
    static async join(opts, sessionId, lastSeq = null) {
        const c = await Connection.open(opts);
        try {
            const s = new GameSession(opts, c, await c.joinSession(sessionId, lastSeq));
            s.lastSeq = lastSeq;
            return s;
        }
        catch (e) {
            c.close();
            throw e;
        }
    }
    /** Sends a command on the current connection. */
    command(cmd) {
        return this.connection.command(cmd);
    }
    /** The server's world time now (ms), estimated; null before a time sync. */
    worldNow() {
        return this.connection.worldNow();
    }
    /**
     * Joins again on a new connection with `last_seq`: the snapshot replaces the state,
     * the resent events follow. The old connection, if still open, is closed first.
     */
    async resume() {
        this.connection.close();
        const attempts = this.opts.resumeAttempts ?? 5;
        let wait = 250;
        for (let i = 1;; i++) {
            try {
                const c = await Connection.open(this.opts);
                let joined;
                try {
                    joined = await c.joinSession(this.id, this.lastSeq);
                }
                catch (e) {
                    c.close();
                    throw e;
                }
                this.connection = c;
                this.state = cloneSnapshot(joined.snapshot);
                this.joinedAt = joined.next_seq;
                this.resumes += 1;
                if (c.clock === null && this.clockWanted)
                    await c.timeSync();
                this.pending.push({ type: 'joined', joined, resumed: true });
                return joined;
            }
            catch (e) {
                if (i >= attempts)
                    throw e;
                await new Promise((r) => setTimeout(r, wait));
                wait *= 2;
            }
        }
    }
    clockWanted = false;
    /** Syncs the world clock (and again after each resume). */
    async timeSync(samples = 5) {
        this.clockWanted = true;
        await this.connection.timeSync(samples);
    }
    /** Ends the updates and closes the connection (the session stays on the server). */
    close() {
        this.stopped = true;
        this.connection.close();
    }
    /** The next update: applies it to the state first. Null when the session is over
     * (closed by `close()`, or the connection dropped and cannot be resumed). */
    async next() {
        for (;;) {
            const queued = this.pending.shift();
            if (queued !== undefined)
                return queued;
            if (this.stopped)
                return null;
            const e = await this.connection.nextEvent();
            if (e !== null) {
                const u = this.accept(e);
                if (u !== null)
                    return u;
                continue;
            }
            const info = this.connection.closeInfo;
            if (this.stopped)
                return null;
            if (this.opts.autoResume === false || (info.code !== null && FINAL_CLOSE_CODES.has(info.code))) {
                throw new Error(`the connection closed: ${info.code ?? '-'} ${info.reason}${info.error ? `: ${info.error}` : ''}` +
                    (this.connection.lastError ? ` (server error: ${this.connection.lastError.message})` : ''));
            }
            await this.resume();
        }
    }
    /** The updates as they come (see `next`). */
    async *[Symbol.asyncIterator]() {
        for (;;) {
            const u = await this.next();
            if (u === null)
                return;
            yield u;
        }
    }
    /** An arrived event: dropped when seen already, applied when live. */
    accept(e) {
        if (this.lastSeq !== null && e.seq <= this.lastSeq)
            return null;
        this.lastSeq = e.seq;
        if (isUnknown(e.event))
            return { type: 'unknown', seq: e.seq, name: e.event.unknown };
        const replayed = e.seq < this.joinedAt;
        if (!replayed)
            applyEvent(this.state, e.event);
        return { type: 'event', seq: e.seq, at_ms: e.at_ms, event: e.event, replayed };
    }
}
//# sourceMappingURL=session.js.map