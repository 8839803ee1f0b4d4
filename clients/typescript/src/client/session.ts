/**
 * `GameSession`: one game session across connections. It keeps the session's state
 * (the join's snapshot plus each live event) and the last sequence number seen, and
 * resumes after a dropped connection by joining again with `last_seq`: the new snapshot
 * replaces the state, the events sent again after it (already reflected in it) are
 * delivered as `replayed`, and no event is ever delivered twice.
 */
import type { GameCommand, GameEvent, Snapshot } from '../types.js';
import { type CommandResult, type ConnectOptions, Connection, type Joined, type SessionEvent } from './connection.js';
import { applyEvent, cloneSnapshot } from './state.js';
import { isUnknown } from '../codec/schema.js';
import type { CloseInfo } from './transport.js';

/** What a session delivers, in order. */
export type SessionUpdate =
  /** A (re)join: `state` was replaced by this snapshot (it reflects seq < next_seq). */
  | { type: 'joined'; joined: Joined; resumed: boolean }
  /**
   * An event. `replayed`: sent again after a rejoin and already reflected in the
   * snapshot (not applied to the state again); `unknown`: an event of a newer server,
   * skipped.
   */
  | { type: 'event'; seq: number; at_ms: number; event: GameEvent; replayed: boolean }
  | { type: 'unknown'; seq: number; name: string };

/** Close codes after which joining again cannot help. */
const FINAL_CLOSE_CODES = new Set([
  2, // version mismatch
  4, // unauthenticated
  11, // session taken over by another connection
]);

/** Session options. */
export interface SessionOptions extends ConnectOptions {
  /** Rejoin automatically when the connection drops (default true). */
  autoResume?: boolean;
  /** Attempts per resume (default 5), 250 ms apart, doubling. */
  resumeAttempts?: number;
}

/** A game session that survives connection drops. */
export class GameSession {
  /** The session's state now. */
  state: Snapshot;
  /** The last event sequence number delivered. */
  lastSeq: number | null = null;
  /** The current join's `next_seq`: events below it are reflected in its snapshot. */
  joinedAt: number;
  /** Resumes so far. */
  resumes = 0;
  private pending: SessionUpdate[] = [];
  private stopped = false;

  private constructor(
    readonly opts: SessionOptions,
    public connection: Connection,
    readonly joined: Joined,
  ) {
    this.state = cloneSnapshot(joined.snapshot);
    this.joinedAt = joined.next_seq;
    this.pending.push({ type: 'joined', joined, resumed: false });
  }

  /** The session id. */
  get id(): string {
    return this.joined.session_id;
  }

  /** Connects and creates a new session of `scene` (the world's start scene when null). */
  static async create(opts: SessionOptions, scene?: string | null): Promise<GameSession> {
    const c = await Connection.open(opts);
    try {
      return new GameSession(opts, c, await c.createSession(scene));
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /**
   * Connects and joins an existing session: afresh (its snapshot, no history), or, with
   * the `lastSeq` a previous run of this client saw (kept across a page reload), with
   * the events after it sent again as `replayed` (already reflected in the snapshot).
   */
  static async join(opts: SessionOptions, sessionId: string, lastSeq: number | null = null): Promise<GameSession> {
    const c = await Connection.open(opts);
    try {
      const s = new GameSession(opts, c, await c.joinSession(sessionId, lastSeq));
      s.lastSeq = lastSeq;
      return s;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /** Sends a command on the current connection. */
  command(cmd: GameCommand): Promise<CommandResult> {
    return this.connection.command(cmd);
  }

  /** The server's world time now (ms), estimated; null before a time sync. */
  worldNow(): number | null {
    return this.connection.worldNow();
  }

  /**
   * Joins again on a new connection with `last_seq`: the snapshot replaces the state,
   * the resent events follow. The old connection, if still open, is closed first.
   */
  async resume(): Promise<Joined> {
    this.connection.close();
    const attempts = this.opts.resumeAttempts ?? 5;
    let wait = 250;
    for (let i = 1; ; i++) {
      try {
        const c = await Connection.open(this.opts);
        let joined: Joined;
        try {
          joined = await c.joinSession(this.id, this.lastSeq);
        } catch (e) {
          c.close();
          throw e;
        }
        this.connection = c;
        this.state = cloneSnapshot(joined.snapshot);
        this.joinedAt = joined.next_seq;
        this.resumes += 1;
        if (c.clock === null && this.clockWanted) await c.timeSync();
        this.pending.push({ type: 'joined', joined, resumed: true });
        return joined;
      } catch (e) {
        if (i >= attempts) throw e;
        await new Promise((r) => setTimeout(r, wait));
        wait *= 2;
      }
    }
  }

  private clockWanted = false;

  /** Syncs the world clock (and again after each resume). */
  async timeSync(samples = 5): Promise<void> {
    this.clockWanted = true;
    await this.connection.timeSync(samples);
  }

  /** Ends the updates and closes the connection (the session stays on the server). */
  close(): void {
    this.stopped = true;
    this.connection.close();
  }

  /** The next update: applies it to the state first. Null when the session is over
   * (closed by `close()`, or the connection dropped and cannot be resumed). */
  async next(): Promise<SessionUpdate | null> {
    for (;;) {
      const queued = this.pending.shift();
      if (queued !== undefined) return queued;
      if (this.stopped) return null;
      const e = await this.connection.nextEvent();
      if (e !== null) {
        const u = this.accept(e);
        if (u !== null) return u;
        continue;
      }
      const info = this.connection.closeInfo as CloseInfo;
      if (this.stopped) return null;
      if (this.opts.autoResume === false || (info.code !== null && FINAL_CLOSE_CODES.has(info.code))) {
        throw new Error(
          `the connection closed: ${info.code ?? '-'} ${info.reason}${info.error ? `: ${info.error}` : ''}` +
            (this.connection.lastError ? ` (server error: ${this.connection.lastError.message})` : ''),
        );
      }
      await this.resume();
    }
  }

  /** The updates as they come (see `next`). */
  async *[Symbol.asyncIterator](): AsyncGenerator<SessionUpdate> {
    for (;;) {
      const u = await this.next();
      if (u === null) return;
      yield u;
    }
  }

  /** An arrived event: dropped when seen already, applied when live. */
  private accept(e: SessionEvent): SessionUpdate | null {
    if (this.lastSeq !== null && e.seq <= this.lastSeq) return null;
    this.lastSeq = e.seq;
    if (isUnknown(e.event)) return { type: 'unknown', seq: e.seq, name: e.event.unknown };
    const replayed = e.seq < this.joinedAt;
    if (!replayed) applyEvent(this.state, e.event);
    return { type: 'event', seq: e.seq, at_ms: e.at_ms, event: e.event, replayed };
  }
}
