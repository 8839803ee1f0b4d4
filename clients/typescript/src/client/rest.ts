/**
 * The REST calls a game client needs: register, log in, the scenes, the caller's
 * sessions, and the WebTransport endpoint with its certificate hashes.
 */

/** An HTTP error answer, with the server's error code and message when it sent one. */
export class RestError extends Error {
  override name = 'RestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** The answer of `POST /api/v1/auth/login`. */
export interface Login {
  access_token: string;
  token_type: string;
  expires_at: string;
  session_id: string;
  user: { id: string; email: string; [k: string]: unknown };
}

/** One scene of `GET /api/v1/game/scenes`. */
export interface SceneSummary {
  id: string;
  title: string;
  locked: boolean;
  start: boolean;
}

/** `GET /api/v1/game/webtransport`. */
export interface WebTransportInfo {
  url: string;
  certificate_hashes: Array<{ algorithm: string; value: string }>;
  expires_at: string;
}

/** A REST client bound to a base URL such as `http://127.0.0.1:8080`. */
export class Rest {
  readonly base: string;
  private readonly fetchFn: typeof fetch;

  constructor(base: string, fetchFn?: typeof fetch) {
    this.base = base.replace(/\/+$/, '');
    this.fetchFn = fetchFn ?? globalThis.fetch.bind(globalThis);
  }

  /** Sends a request; the JSON answer, or a `RestError`. */
  async call<T>(method: string, path: string, token?: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.fetchFn(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = text;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
      const retry = res.headers.get('retry-after');
      throw new RestError(res.status, err?.code ?? '', err?.message ?? text, retry === null ? null : Number(retry));
    }
    return json as T;
  }

  /** Creates an account; `false` when the email is already registered. */
  async register(email: string, password: string): Promise<boolean> {
    try {
      await this.call('POST', '/api/v1/auth/register', undefined, { email, password });
      return true;
    } catch (e) {
      if (e instanceof RestError && e.status === 409) return false;
      throw e;
    }
  }

  /** Logs in. */
  login(email: string, password: string): Promise<Login> {
    return this.call<Login>('POST', '/api/v1/auth/login', undefined, { email, password });
  }

  /** The world's scenes. */
  scenes(token: string): Promise<SceneSummary[]> {
    return this.call<SceneSummary[]>('GET', '/api/v1/game/scenes', token);
  }

  /** The caller's game sessions, newest first. */
  sessions(token: string): Promise<{ items: Array<Record<string, unknown>> }> {
    return this.call('GET', '/api/v1/game/sessions', token);
  }

  /** The WebTransport endpoint and the hashes of the certificates to pin. */
  webtransport(): Promise<WebTransportInfo> {
    return this.call<WebTransportInfo>('GET', '/api/v1/game/webtransport');
  }
}
