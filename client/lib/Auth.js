/**
 * Who the connection is: the client's half of comet's authentication (the `auth`,
 * `authenticated` and `refresh` frames, and the 4100–4199 close codes).
 *
 * @module comet-client/lib/Auth
 */

import { ClientErrorCode, CloseCode, ErrorCode, shouldReconnect } from '../codes.js';
import { CometError } from './CometError.js';
import { authFrame, isToken } from './protocol.js';

/** The client's error code for each "do not reconnect" close code that has a name. */
const REFUSAL_CODES = new Map([
  [CloseCode.FORBIDDEN, ErrorCode.FORBIDDEN],
  [CloseCode.UNAUTHORIZED, ErrorCode.UNAUTHORIZED],
  [CloseCode.TOKEN_EXPIRED, ClientErrorCode.TOKEN_EXPIRED],
  [CloseCode.AUTH_TIMEOUT, ClientErrorCode.AUTH_TIMEOUT],
]);

/**
 * The token of a client and what it does with it. The client gives it each connection as
 * it opens; it keeps the token out of URLs (they end up in proxy logs) and out of
 * `beforeSend` (plugins log frames): the token goes only in the `auth` frame.
 *
 * - With `token` (a string), every connection starts with `auth <token>`; the client cannot
 *   refresh it, so the server's `refresh` is said as an `error` (`cannot_refresh`).
 * - With `getToken()` (async), the client calls it before each connection opens and on
 *   each `refresh`, and answers the latter with `auth <new token>` on the same connection.
 * - With neither, nothing is sent: the server sees an anonymous connection (or one
 *   identified by cookies or the URL's own `?token=`, if the app put one there).
 */
export class Auth {
  /** @type {import('./Client.js').Client} */
  #client;
  /** @type {string | null} */
  #token;
  /** @type {(() => string | Promise<string>) | null} */
  #getToken;
  /** The connection a refresh is being fetched for, so that two `refresh` make one call. */
  #refreshing = null;

  /**
   * @param {import('./Client.js').Client} client
   * @param {{ token?: string, getToken?: () => string | Promise<string> }} options
   */
  constructor(client, { token, getToken } = {}) {
    if (token !== undefined && token !== null && !isToken(token)) {
      throw new TypeError('comet: `token` is a non-empty string without spaces');
    }
    if (getToken !== undefined && getToken !== null && typeof getToken !== 'function') {
      throw new TypeError('comet: `getToken` is a function that returns (a promise of) a token');
    }
    this.#client = client;
    this.#token = token ?? null;
    this.#getToken = getToken ?? null;
  }

  /** Whether the client authenticates at all (it has a `token` or a `getToken()`). */
  get enabled() {
    return this.#token !== null || this.#getToken !== null;
  }

  /** Whether the client can get a new token by itself (it has `getToken()`). */
  get canRefresh() {
    return this.#getToken !== null;
  }

  /** Whether a token must be fetched (asynchronously) before each connection opens. */
  get fetchesOnConnect() {
    return this.#getToken !== null;
  }

  /**
   * Calls `getToken()` for a connection about to open. A failure is said as an `error`
   * (`no_token`).
   *
   * @returns {Promise<string | null>} the token (give it to {@link use} if that
   *   connection is still wanted), or null when none came
   */
  fetchForConnect() {
    return this.#fetch('connect');
  }

  /**
   * The token for the next {@link firstFrame}s.
   *
   * @param {string} token
   */
  use(token) {
    this.#token = token;
  }

  /** The frame that opens each connection (`auth <token>`), or null without a token. */
  firstFrame() {
    return this.#token === null ? null : authFrame(this.#token);
  }

  /**
   * The server's `authenticated {"user","exp","connection"}`: keeps who the connection is
   * and says `authenticated`.
   *
   * @param {Record<string, any> | null} body
   */
  onAuthenticated(body) {
    if (!body) return;
    const user =
      typeof body.user === 'string' || typeof body.user === 'number' ? String(body.user) : null;
    const identity = {
      user,
      exp: typeof body.exp === 'number' ? body.exp : null,
      connection: typeof body.connection === 'string' ? body.connection : null,
    };
    this.#client.user = user;
    this.#client.identity = identity;
    this.#client.emit('authenticated', identity);
  }

  /**
   * The server's `refresh {"exp","in"}`: the token runs out soon. Fetches a new one and
   * sends it on the same connection (`write` drops it if that connection has ended since).
   *
   * @param {Record<string, any> | null} body
   * @param {(text: string) => boolean} write sends on the connection the `refresh` came on,
   *   if it is still open; says whether it did
   */
  onRefresh(body, write) {
    if (!this.canRefresh) {
      const when = typeof body?.in === 'number' ? ` in ${Math.round(body.in / 1000)} s` : '';
      this.#client.emit(
        'error',
        new CometError(
          ClientErrorCode.CANNOT_REFRESH,
          `the server asks for a fresh token (this one expires${when}), but the client has ` +
            'only a static `token`: give it `getToken()` to stay connected',
          { response: body ?? undefined },
        ),
      );
      return;
    }
    if (this.#refreshing === write) return;
    this.#refreshing = write;
    this.#fetch('refresh').then((token) => {
      if (this.#refreshing === write) this.#refreshing = null;
      if (token !== null) write(authFrame(token));
    });
  }

  /**
   * Whether AutoReconnect should reconnect after a close with `code`: as
   * {@link shouldReconnect}, and also after 4102 (token expired) when `getToken()` can
   * fetch a new token for the next connection.
   *
   * @param {number | undefined} code
   */
  shouldReconnect(code) {
    return shouldReconnect(code) || (code === CloseCode.TOKEN_EXPIRED && this.canRefresh);
  }

  /**
   * The `error` to say for a connection the server closed with `code`: one for each
   * "do not reconnect" code (4100–4199), except 4102 when the client can fetch a new
   * token (it reconnects instead); null for every other code.
   *
   * @param {number | undefined} code
   * @param {string} reason
   * @returns {CometError | null}
   */
  refusal(code, reason) {
    if (this.shouldReconnect(code)) return null;
    const errorCode = REFUSAL_CODES.get(/** @type {number} */ (code)) ?? ClientErrorCode.REFUSED;
    return new CometError(
      errorCode,
      `the server refused the connection (${code}${reason ? ` ${reason}` : ''}); not reconnecting`,
      { closeCode: code, reason },
    );
  }

  /**
   * Calls `getToken()`, saying a failure as an `error` (`no_token`).
   *
   * @param {'connect' | 'refresh'} why
   * @returns {Promise<string | null>}
   */
  async #fetch(why) {
    let token;
    try {
      token = await /** @type {() => string | Promise<string>} */ (this.#getToken)();
    } catch (error) {
      this.#noToken(why, `getToken() failed: ${error?.message ?? error}`, error);
      return null;
    }
    if (!isToken(token)) {
      this.#noToken(why, `getToken() gave ${JSON.stringify(token)}, not a token`);
      return null;
    }
    return token;
  }

  #noToken(why, message, cause) {
    const what = why === 'connect' ? 'not connecting' : 'the token is not refreshed';
    const error = new CometError(ClientErrorCode.NO_TOKEN, `${message}; ${what}`);
    if (cause !== undefined) error.cause = cause;
    this.#client.emit('error', error);
  }
}
