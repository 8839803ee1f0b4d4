/**
 * The REST calls a game client needs: register, log in, the scenes, the caller's
 * sessions, and the WebTransport endpoint with its certificate hashes.
 */
/** An HTTP error answer, with the server's error code and message when it sent one. */
export class RestError extends Error {
    status;
    code;
    retryAfter;
    name = 'RestError';
    constructor(status, code, message, retryAfter) {
        super(`${status} ${code}: ${message}`);
        this.status = status;
        this.code = code;
        this.retryAfter = retryAfter;
    }
}
/** A REST client bound to a base URL such as `http://127.0.0.1:8080`. */
export class Rest {
    base;
    fetchFn;
    constructor(base, fetchFn) {
        this.base = base.replace(/\/+$/, '');
        this.fetchFn = fetchFn ?? globalThis.fetch.bind(globalThis);
    }
    /** Sends a request; the JSON answer, or a `RestError`. */
    async call(method, path, token, body) {
        const headers = {};
        if (token !== undefined)
            headers.authorization = `Bearer ${token}`;
        if (body !== undefined)
            headers['content-type'] = 'application/json';
        const res = await this.fetchFn(`${this.base}${path}`, {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        let json = null;
        try {
            json = text === '' ? null : JSON.parse(text);
        }
        catch {
            json = text;
        }
        if (!res.ok) {
            const err = json?.error;
            const retry = res.headers.get('retry-after');
            throw new RestError(res.status, err?.code ?? '', err?.message ?? text, retry === null ? null : Number(retry));
        }
        return json;
    }
    /** Creates an account; `false` when the email is already registered. */
    async register(email, password) {
        try {
            await this.call('POST', '/api/v1/auth/register', undefined, { email, password });
            return true;
        }
        catch (e) {
            if (e instanceof RestError && e.status === 409)
                return false;
            throw e;
        }
    }
    /** Logs in. */
    login(email, password) {
        return this.call('POST', '/api/v1/auth/login', undefined, { email, password });
    }
    /** The world's scenes. */
    scenes(token) {
        return this.call('GET', '/api/v1/game/scenes', token);
    }
    /** The caller's game sessions, newest first. */
    sessions(token) {
        return this.call('GET', '/api/v1/game/sessions', token);
    }
    /** The WebTransport endpoint and the hashes of the certificates to pin. */
    webtransport() {
        return this.call('GET', '/api/v1/game/webtransport');
    }
}
//# sourceMappingURL=rest.js.map