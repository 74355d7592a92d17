/**
 * The plugin installed by default: reopens a connection that closed on its own.
 *
 * @module comet-client/lib/AutoReconnect
 */

import { CloseCode, shouldReconnect } from '../codes.js';

/**
 * Close codes that say "too much, too fast" (4002 rate limit exceeded, 4003 too many
 * connections): the back-off goes on growing across the opens in between, else a server
 * that accepts and then closes at once would be retried at the shortest wait for ever.
 */
const THROTTLES = new Set([CloseCode.RATE_LIMITED, CloseCode.TOO_MANY_CONNECTIONS]);

/**
 * Reopens the connection after it closed, or after an attempt to open it failed, waiting
 * longer after each failure: exponential backoff with full jitter. The n-th retry in a
 * row waits a random time between `minRetryInterval` and
 * `min(maxRetryInterval, minRetryInterval · 2ⁿ)`, so a thousand clients of a restarted
 * server do not all come back in the same instant.
 *
 * It counts from zero again once a connection opens (unless the server then closes it with
 * 4002 or 4003: too much, too fast), never retries after the app called `client.close()`
 * (until it calls `open()` again), and does not retry a connection the server closed with
 * a "do not reconnect" code (4100–4199, see `codes.js`), except 4102 (token expired) when
 * the client has `getToken()` to fetch a new token (`client.shouldReconnect(code)`).
 *
 * Before each wait it emits `reconnecting` on the client with `{ attempt, delay, code }`.
 */
export class AutoReconnect {
  /** @type {ReturnType<typeof setTimeout> | null} */
  #timer = null;
  /** `attempt` before the last open, resumed when the server throttles. */
  #attemptBeforeOpen = 0;

  /**
   * @param {object} [options]
   * @param {boolean} [options.enable] whether to reconnect at all; default `true`
   * @param {number} [options.minRetryInterval] shortest wait in ms; default 1000
   * @param {number} [options.maxRetryInterval] longest wait in ms; default 20000
   * @param {() => number} [options.random] a number in [0, 1); default `Math.random`
   */
  constructor(options = {}) {
    /** Whether to reconnect at all (jii's name); may be changed at any time. */
    this.enable = options.enable ?? true;
    /** Shortest wait before a retry, in ms. */
    this.minRetryInterval = options.minRetryInterval ?? 1000;
    /** Longest wait before a retry, in ms. */
    this.maxRetryInterval = options.maxRetryInterval ?? 20000;
    /** How many retries in a row have been scheduled since the last successful open. */
    this.attempt = 0;
    /** @type {import('./Client.js').Client | null} */
    this.client = null;
    this.random = options.random ?? Math.random;
  }

  /**
   * Called once by the client it is given to.
   *
   * @param {import('./Client.js').Client} client
   */
  attach(client) {
    this.client = client;
    client.on('disconnect', (event) => this.#onClose(event));
    client.on('open', () => {
      this.#attemptBeforeOpen = this.attempt;
      this.attempt = 0;
      this.#cancel();
    });
    client.on('forceClose', () => this.#cancel());
  }

  /** Whether a retry is scheduled. */
  get isWaiting() {
    return this.#timer !== null;
  }

  /**
   * The wait before retry number `attempt` (1 for the first): a random time in
   * `[minRetryInterval, min(maxRetryInterval, minRetryInterval · 2^attempt)]`.
   *
   * @param {number} attempt
   * @returns {number} milliseconds
   */
  delay(attempt) {
    const min = this.minRetryInterval;
    const cap = Math.max(min, Math.min(this.maxRetryInterval, min * 2 ** attempt));
    return Math.round(min + this.random() * (cap - min));
  }

  /** @param {{ code?: number }} [event] */
  #onClose(event = {}) {
    const client = this.client;
    if (!client || !this.enable || client.isForceClosed()) return;
    const retry =
      typeof client.shouldReconnect === 'function'
        ? client.shouldReconnect(event.code)
        : shouldReconnect(event.code);
    if (!retry) return;
    this.#cancel();
    if (THROTTLES.has(/** @type {number} */ (event.code))) {
      this.attempt = Math.max(this.attempt, this.#attemptBeforeOpen);
    }
    this.#attemptBeforeOpen = 0;
    this.attempt += 1;
    const delay = this.delay(this.attempt);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.enable && !client.isForceClosed()) client.open();
    }, delay);
    client.emit('reconnecting', { attempt: this.attempt, delay, code: event.code });
  }

  #cancel() {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}
