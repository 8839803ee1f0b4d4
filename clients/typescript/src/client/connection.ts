/**
 * `Connection`: one game channel connection, driven through the protocol's states —
 * Hello/Welcome, Authenticate/Authenticated, then create or join a session — with
 * commands answered by request id (`Ack` or `Rejected`), pings for round trips and the
 * server's world clock, a heartbeat, and the session's events as an async iterator.
 */
import type { Embedded, Int64 } from '../codec/schema.js';
import type {
  ClientMessage,
  GameCommand,
  GameEvent,
  ServerMessage,
  Snapshot,
} from '../types.js';
import { PROTOCOL_VERSION } from '../types.js';
import {
  type Channel,
  type CloseInfo,
  type Encoding,
  type TransportKind,
  openWebSocket,
  openWebTransport,
} from './transport.js';

/** How to connect. */
export interface ConnectOptions {
  /** The server's HTTP base URL (REST, and the WebSocket route on the same origin). */
  http: string;
  /** The access token of `POST /api/v1/auth/login`. */
  token: string;
  /** `websocket` (default) or `webtransport`. */
  transport?: TransportKind;
  /** On WebSocket: `binary` (default) or `json`. */
  encoding?: Encoding;
  /** The client's name in `Hello`. */
  client?: string;
  /** Heartbeat interval in ms (default 10,000; the server closes idle connections). */
  heartbeatMs?: number;
  /** A `fetch` to use for REST calls (default: the global one). */
  fetch?: typeof fetch;
}

/** The answer to create or join. */
export interface Joined {
  session_id: string;
  scene: string | null;
  next_seq: number;
  ended: boolean;
  snapshot: Snapshot;
}

/** One session event as it arrived. */
export interface SessionEvent {
  seq: number;
  at_ms: number;
  /** The event, or `{unknown}` for one this client does not know (skip it). */
  event: Embedded<GameEvent>;
}

/** The answer to a command. */
export type CommandResult =
  | { ok: true; through_seq: number | null }
  | { ok: false; code: string; message: string };

/** A failed step: the server's `Error`, or the connection closed. */
export class ChannelError extends Error {
  override name = 'ChannelError';
  constructor(
    message: string,
    /** The server's `ErrorCode` number, or the close code when the channel closed. */
    readonly code: number | null,
    readonly close?: CloseInfo,
  ) {
    super(message);
  }
}

/** The server's world clock, from ping round trips: world ms = local ms + offset. */
export interface ClockSample {
  offsetMs: number;
  rttMs: number;
}

type Waiter = { kinds: string[]; resolve: (m: ServerMessage) => void; reject: (e: Error) => void };

const now = (): number => globalThis.performance.now();

/** A number of a decoded integer (exact below 2^53, which is what the server sends). */
export function num(v: Int64): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** A game channel connection. Create with `Connection.open`. */
export class Connection {
  /** The user the connection is authenticated as. */
  userId = '';
  /** The server's version string from `Welcome`. */
  serverVersion = '';
  /** How the connection ended, once it has. */
  closeInfo: CloseInfo | null = null;
  /** The last `Error` message the server sent. */
  lastError: { code: number; message: string } | null = null;
  /** The best clock sample so far (smallest round trip). */
  clock: ClockSample | null = null;

  private waiter: Waiter | null = null;
  private commands = new Map<number, { resolve: (r: CommandResult) => void; reject: (e: Error) => void }>();
  private pings = new Map<number, { resolve: (world: number | null) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  private nextNonce = 1;
  private events: SessionEvent[] = [];
  private eventWaiter: (() => void) | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private closedResolve!: (info: CloseInfo) => void;
  /** Resolves when the connection has closed, with why. */
  readonly closed: Promise<CloseInfo> = new Promise((r) => (this.closedResolve = r));

  private constructor(private readonly channel: Channel) {
    channel.onmessage = (m) => this.dispatch(m);
    channel.onclose = (info) => this.ended(info);
  }

  /** The transport in use. */
  get transport(): TransportKind {
    return this.channel.transport;
  }

  /** Connects, says hello and authenticates. */
  static async open(opts: ConnectOptions): Promise<Connection> {
    const kind = opts.transport ?? 'websocket';
    const channel =
      kind === 'webtransport'
        ? await openWebTransport(opts.http, opts.fetch)
        : await openWebSocket(opts.http, opts.encoding ?? 'binary');
    const c = new Connection(channel);
    try {
      const welcome = await c.request(
        { Hello: { protocol_version: PROTOCOL_VERSION, client: opts.client ?? '@pixsim/client' } },
        ['Welcome'],
      );
      if ('Welcome' in welcome) c.serverVersion = welcome.Welcome.server_version;
      const auth = await c.request({ Authenticate: { token: opts.token } }, ['Authenticated']);
      if ('Authenticated' in auth) c.userId = auth.Authenticated.user_id;
      const every = opts.heartbeatMs ?? 10_000;
      c.heartbeat = setInterval(() => c.send({ Heartbeat: { client_time_ms: Date.now() } }), every);
      (c.heartbeat as { unref?: () => void }).unref?.();
      return c;
    } catch (e) {
      c.close();
      throw e;
    }
  }

  /** Sends a raw message. */
  send(msg: ClientMessage): void {
    this.channel.send(msg);
  }

  /** Sends `msg` and waits for the next message of one of `kinds` (or an `Error`). */
  private request(msg: ClientMessage, kinds: string[]): Promise<ServerMessage> {
    if (this.closeInfo !== null) return Promise.reject(this.closedError());
    if (this.waiter !== null) return Promise.reject(new Error('one request at a time'));
    return new Promise((resolve, reject) => {
      this.waiter = { kinds, resolve, reject };
      this.send(msg);
    });
  }

  /** Creates a session (the world's start scene when `scene` is not given) and joins it. */
  async createSession(scene?: string | null, world?: string | null): Promise<Joined> {
    const m = await this.request({ CreateSession: { scene: scene ?? null, world: world ?? null } }, ['SessionJoined']);
    return joinedOf(m);
  }

  /**
   * Joins (or rejoins) one of the caller's sessions. The snapshot reflects every event
   * below `next_seq`; events with `lastSeq < seq < next_seq` are sent again after it
   * (already reflected), then live ones.
   */
  async joinSession(sessionId: string, lastSeq: number | null): Promise<Joined> {
    const m = await this.request(
      { JoinSession: { session_id: sessionId, last_seq: lastSeq } },
      ['SessionJoined'],
    );
    return joinedOf(m);
  }

  /**
   * Sends a command; resolves with its `Ack` or `Rejected`, rejects with a
   * `ChannelError` when the connection closes first (the command may have taken effect).
   */
  command(command: GameCommand): Promise<CommandResult> {
    if (this.closeInfo !== null) return Promise.reject(this.closedError());
    const request_id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.commands.set(request_id, { resolve, reject });
      this.send({ Command: { request_id, command } });
    });
  }

  /** One ping: its round trip and the server's world time (null when no simulation runs). */
  ping(): Promise<{ rttMs: number; worldTimeMs: number | null; sample: ClockSample | null }> {
    if (this.closeInfo !== null) return Promise.reject(this.closedError());
    const nonce = this.nextNonce++;
    const t0 = now();
    return new Promise((resolve, reject) => {
      const done = (world: number | null): void => {
        const t3 = now();
        const rttMs = t3 - t0;
        const sample = world === null ? null : { offsetMs: world - (t0 + t3) / 2, rttMs };
        if (sample !== null && (this.clock === null || sample.rttMs <= this.clock.rttMs)) this.clock = sample;
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
  async timeSync(samples = 5): Promise<ClockSample | null> {
    for (let i = 0; i < samples; i++) await this.ping();
    return this.clock;
  }

  /** The server's world time now (ms), estimated; null before a time sync. */
  worldNow(): number | null {
    return this.clock === null ? null : Math.floor(now() + this.clock.offsetMs);
  }

  /** The next session event; null once the connection has closed and all are read. */
  async nextEvent(): Promise<SessionEvent | null> {
    for (;;) {
      const e = this.events.shift();
      if (e !== undefined) return e;
      if (this.closeInfo !== null) return null;
      await new Promise<void>((r) => (this.eventWaiter = r));
    }
  }

  /** The session's events as they arrive, until the connection closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<SessionEvent> {
    for (;;) {
      const e = await this.nextEvent();
      if (e === null) return;
      yield e;
    }
  }

  /** Closes the connection (the session stays; it can be joined again). */
  close(): void {
    this.channel.close();
  }

  private closedError(): ChannelError {
    const info = this.closeInfo ?? { code: null, reason: 'closed' };
    const err = this.lastError === null ? '' : ` (server error ${this.lastError.code}: ${this.lastError.message})`;
    const why = info.error === undefined ? '' : `: ${info.error}`;
    return new ChannelError(`connection closed: ${info.code ?? '-'} ${info.reason}${why}${err}`, info.code, info);
  }

  private dispatch(m: ServerMessage): void {
    if (typeof m !== 'object') return;
    if ('Event' in m) {
      const { seq, at_ms, event } = m.Event;
      this.events.push({ seq: num(seq), at_ms: num(at_ms), event });
      this.wakeEvents();
    } else if ('Ack' in m) {
      const id = num(m.Ack.request_id);
      const through = m.Ack.through_seq;
      this.answer(id, { ok: true, through_seq: through === null ? null : num(through) });
    } else if ('Rejected' in m) {
      this.answer(num(m.Rejected.request_id), { ok: false, code: m.Rejected.code, message: m.Rejected.message });
    } else if ('Pong' in m) {
      const done = this.pings.get(num(m.Pong.nonce));
      this.pings.delete(num(m.Pong.nonce));
      const w = m.Pong.world_time_ms;
      done?.resolve(w === null ? null : num(w));
    } else if ('Error' in m) {
      this.lastError = { code: m.Error.code, message: m.Error.message };
      const w = this.waiter;
      this.waiter = null;
      w?.reject(new ChannelError(`server error ${m.Error.code}: ${m.Error.message}`, m.Error.code));
    } else if ('Heartbeat' in m) {
      // The answer to ours: the connection is alive.
    } else {
      const kind = Object.keys(m)[0] ?? '';
      const w = this.waiter;
      if (w !== null && w.kinds.includes(kind)) {
        this.waiter = null;
        w.resolve(m);
      }
    }
  }

  private answer(id: number, r: CommandResult): void {
    const done = this.commands.get(id);
    this.commands.delete(id);
    done?.resolve(r);
  }

  private wakeEvents(): void {
    const w = this.eventWaiter;
    this.eventWaiter = null;
    w?.();
  }

  private ended(info: CloseInfo): void {
    this.closeInfo = info;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    const err = this.closedError();
    this.waiter?.reject(err);
    this.waiter = null;
    // A command whose answer did not come may or may not have taken effect.
    for (const done of this.commands.values()) done.reject(err);
    this.commands.clear();
    for (const done of this.pings.values()) done.reject(err);
    this.pings.clear();
    this.wakeEvents();
    this.closedResolve(info);
  }
}

function joinedOf(m: ServerMessage): Joined {
  if (typeof m !== 'object' || !('SessionJoined' in m)) throw new Error('not SessionJoined');
  const j = m.SessionJoined;
  return { session_id: j.session_id, scene: j.scene, next_seq: num(j.next_seq), ended: j.ended, snapshot: j.snapshot };
}
