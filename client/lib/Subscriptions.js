/**
 * The client's channels: which it wants, which the server confirmed, their subscription
 * tokens, which recover (and from where), which get join and leave events, and the
 * promises of `subscribe()` and `unsubscribe()`.
 *
 * @module comet-client/lib/Subscriptions
 */

import { ClientErrorCode, ErrorCode } from '../codes.js';
import { CometError } from './CometError.js';
import { Positions } from './Positions.js';
import { readPosition, subscribeFrame, unsubscribeFrame } from './protocol.js';

/**
 * Error codes in an `error` frame that mean "your subscription to this channel failed"
 * (`not_found`: a subscribe with `joinLeave` in a namespace without join and leave).
 */
const SUBSCRIBE_REFUSALS = new Set([
  ErrorCode.BAD_CHANNEL,
  ErrorCode.TOO_MANY_CHANNELS,
  ErrorCode.FORBIDDEN,
  ErrorCode.NOT_FOUND,
]);

/**
 * How often a subscribe the server dropped for its rate limit (`rate_limited`) is sent
 * again on the same connection, and after how long (times the try's number), before the
 * subscription is given up like a refused one.
 */
const RATE_LIMIT_RETRIES = 3;
const RATE_LIMIT_RETRY_MS = 1000;

/**
 * The subscriptions of one client, across its connections. A channel is wanted for
 * `subscribe()` (explicitly) or for its `channel:<name>` handlers; each wanted channel is
 * subscribed on every connection as it opens (with its subscription token, if any), until
 * it is not wanted any more or the server refused it. A channel subscribed with `recover`
 * has a position (its last offset and epoch) once the server said one, and each later
 * `subscribe` of it resumes from there.
 */
export class Subscriptions {
  /** Channels to be subscribed to, explicitly or for handlers. @type {Set<string>} */
  #channels = new Set();
  /** Channels the app subscribed to with `subscribe()`. @type {Set<string>} */
  #explicit = new Set();
  /** Channels whose `subscribe` went out on the current connection. @type {Set<string>} */
  #sent = new Set();
  /** Of those, the ones the server has not confirmed yet. @type {Set<string>} */
  #unconfirmed = new Set();
  /** Subscription tokens, by channel. @type {Map<string, SubscriptionToken>} */
  #tokens = new Map();
  /** Channels subscribed with `recover`. @type {Set<string>} */
  #recover = new Set();
  /** Channels subscribed with `joinLeave`. @type {Set<string>} */
  #joinLeave = new Set();
  /** Where the recovering channels stand. */
  #positions = new Positions();
  /** @type {Map<string, Deferred>} */
  #subscribing = new Map();
  /** @type {Map<string, Deferred>} */
  #unsubscribing = new Map();
  /** Subscribes sent again after `rate_limited` on this connection, by channel. */
  #retries = new Map();
  /** @type {Link} */
  #link;

  /** @param {Link} link what the subscriptions need of the client */
  constructor(link) {
    this.#link = link;
  }

  /**
   * The app subscribes to `channel` (`subscribe()`), with a token for this and the later
   * `subscribe` frames, if given, and with positions (`recover`), from `since` if given.
   * `recover` and `since` count from the next `subscribe` frame of the channel: `since`
   * only when that frame would have no position of its own to resume from. `joinLeave`
   * asks for the channel's join and leave events, from the next `subscribe` frame on;
   * `joinLeave: false` stops asking from then on.
   *
   * @param {string} channel
   * @param {SubscribeOptions} [options]
   * @returns {Promise<void>}
   */
  subscribe(channel, { token, recover, since, joinLeave } = {}) {
    if (token !== undefined && typeof token !== 'function' && typeof token !== 'string') {
      throw new TypeError('comet: a subscription token is a string or a function');
    }
    if (recover !== undefined && typeof recover !== 'boolean') {
      throw new TypeError(`comet: recover is true or false, not ${JSON.stringify(recover)}`);
    }
    if (joinLeave !== undefined && typeof joinLeave !== 'boolean') {
      throw new TypeError(`comet: joinLeave is true or false, not ${JSON.stringify(joinLeave)}`);
    }
    const start = since === undefined || since === null ? null : readPosition(since);
    if (start === null && since !== undefined && since !== null) {
      throw new TypeError(
        `comet: since is a position { offset, epoch } (as position() gives), not ${JSON.stringify(since)}`,
      );
    }
    if (start !== null && recover !== true) {
      throw new TypeError('comet: since goes with recover: true');
    }
    if (token !== undefined) this.#tokens.set(channel, token);
    if (recover === true) this.#recover.add(channel);
    if (joinLeave === true) this.#joinLeave.add(channel);
    if (joinLeave === false) this.#joinLeave.delete(channel);
    if (start !== null && !this.#sent.has(channel) && this.#positions.get(channel) === null) {
      this.#positions.start(channel, start);
    }
    this.#explicit.add(channel);
    return this.want(channel);
  }

  /**
   * @param {string} channel
   * @returns {import('./Positions.js').Position | null} where the channel stands, when it
   *   is subscribed with `recover` and a position is known
   */
  position(channel) {
    return this.#positions.get(channel);
  }

  /**
   * The app ends its `subscribe()`; the channel stays while it has handlers.
   *
   * @param {string} channel
   * @param {boolean} hasHandlers
   * @returns {Promise<void>}
   */
  unsubscribe(channel, hasHandlers) {
    this.#explicit.delete(channel);
    return hasHandlers ? Promise.resolve() : this.unwant(channel);
  }

  /**
   * @param {string} channel
   * @returns {boolean} whether the channel is subscribed with `joinLeave` (its `join` and
   *   `leave` frames are said as events)
   */
  hasJoinLeave(channel) {
    return this.#joinLeave.has(channel) && this.#channels.has(channel);
  }

  /** @param {string} channel @returns {boolean} whether the app called `subscribe(channel)` */
  isExplicit(channel) {
    return this.#explicit.has(channel);
  }

  /**
   * Subscribes to `channel` unless it is already (for `subscribe()` or a handler).
   *
   * @param {string} channel
   * @returns {Promise<void>} resolved when the server confirms
   */
  want(channel) {
    if (this.#channels.has(channel)) {
      return this.#subscribing.get(channel)?.promise ?? Promise.resolve();
    }
    this.#channels.add(channel);
    const waiter = deferred();
    this.#subscribing.set(channel, waiter);
    if (this.#link.isOpen()) this.#sendSubscribe(channel);
    return waiter.promise;
  }

  /**
   * Unsubscribes from `channel`, whoever wanted it.
   *
   * @param {string} channel
   * @returns {Promise<void>} resolved when the server confirms, or at once when there is
   *   nothing to tell it
   */
  unwant(channel) {
    if (!this.#channels.delete(channel)) return Promise.resolve();
    this.#tokens.delete(channel);
    this.#joinLeave.delete(channel);
    this.#forgetRecovery(channel);
    this.#unconfirmed.delete(channel);
    this.#retries.delete(channel);
    this.#subscribing
      .get(channel)
      ?.reject(
        new CometError(
          ClientErrorCode.CANCELLED,
          `unsubscribed from "${channel}" before the server confirmed`,
          { channel },
        ),
      );
    this.#subscribing.delete(channel);
    if (!this.#link.isOpen() || !this.#sent.delete(channel)) return Promise.resolve();
    const waiter = this.#unsubscribing.get(channel) ?? deferred();
    this.#unsubscribing.set(channel, waiter);
    this.#link.send(unsubscribeFrame(channel));
    return waiter.promise;
  }

  /** A connection opened: subscribes to every wanted channel. */
  renew() {
    for (const channel of this.#channels) this.#sendSubscribe(channel);
  }

  /**
   * The server's `subscribed <channel> {…}?`: confirms the subscription; for a recovering
   * channel, keeps the position it says.
   *
   * @param {string} channel
   * @param {Record<string, any> | null} body the frame's JSON object, if any
   * @returns {boolean | undefined} its `recovered` (true or false) when it answers a
   *   recovering subscribe that gave a position, else undefined
   */
  onSubscribed(channel, body) {
    let recovered;
    if (this.#recover.has(channel) && this.#channels.has(channel)) {
      const position = readPosition(body);
      if (position !== null) this.#positions.subscribed(channel, position);
      if (typeof body?.recovered === 'boolean') recovered = body.recovered;
    }
    this.#confirmed(channel);
    return recovered;
  }

  /**
   * A `pub <channel> <offset>` frame: advances the channel's position.
   *
   * @param {string} channel
   * @param {number} offset
   * @returns {boolean} false for a duplicate of what was delivered already: drop it
   */
  onPublication(channel, offset) {
    return this.#positions.published(channel, offset);
  }

  /**
   * The server's `gap <channel> {"offset","epoch"}`: the channel lost publications and
   * jumped to that position.
   *
   * @param {string} channel
   * @param {Record<string, any> | null} body
   * @returns {boolean} whether it is about a recovering channel (to be said as `recovered`
   *   `false`)
   */
  onGap(channel, body) {
    if (!this.#recover.has(channel) || !this.#channels.has(channel)) return false;
    const position = readPosition(body);
    if (position !== null) this.#positions.jumped(channel, position);
    return true;
  }

  /** The subscription to `channel` is in effect. */
  #confirmed(channel) {
    this.#unconfirmed.delete(channel);
    this.#retries.delete(channel);
    this.#subscribing.get(channel)?.resolve();
    this.#subscribing.delete(channel);
  }

  /** @param {string} channel the server's `unsubscribed <channel>` */
  onUnsubscribed(channel) {
    this.#unsubscribing.get(channel)?.resolve();
    this.#unsubscribing.delete(channel);
  }

  /**
   * The server's `error` frame: a refusal of a subscribe not confirmed yet (the first, or
   * one renewed after a reconnection) ends the subscription, so that it is not renewed
   * blindly; a refusal of anything else (a publish) leaves the subscription alone.
   * `rate_limited` for a subscribe not confirmed yet sends it again a little later (a few
   * times; harmless if it was a publish that met the limit and the subscribe went through).
   *
   * @param {CometError} error
   * @returns {boolean} whether it was a subscription's refusal (and is said already)
   */
  onError(error) {
    const channel = error.channel;
    if (channel === undefined) return false;
    if (error.code === ErrorCode.RATE_LIMITED && this.#unconfirmed.has(channel)) {
      const tries = (this.#retries.get(channel) ?? 0) + 1;
      if (tries > RATE_LIMIT_RETRIES) {
        this.#drop(channel, error);
        return true;
      }
      this.#retries.set(channel, tries);
      const connection = this.#link.connection();
      setTimeout(() => {
        const current = connection === this.#link.connection() && this.#link.isOpen();
        if (current && this.#unconfirmed.has(channel)) this.#sendSubscribe(channel);
      }, RATE_LIMIT_RETRY_MS * tries);
      return false;
    }
    if (!SUBSCRIBE_REFUSALS.has(error.code)) return false;
    if (!this.#subscribing.has(channel) && !this.#unconfirmed.has(channel)) return false;
    this.#drop(channel, error);
    return true;
  }

  /**
   * The connection ended: nothing is sent or confirmed on it any more. Without `renew`
   * (`autoSubscribeOnReconnect: false`) the channels subscribed on it are forgotten.
   *
   * @param {boolean} renew
   */
  connectionEnded(renew) {
    if (!renew) {
      for (const channel of this.#sent) {
        this.#channels.delete(channel);
        this.#explicit.delete(channel);
        this.#tokens.delete(channel);
        this.#joinLeave.delete(channel);
        this.#forgetRecovery(channel);
        this.#subscribing
          .get(channel)
          ?.reject(
            new CometError(
              ClientErrorCode.DISCONNECTED,
              `the connection closed before "${channel}" was confirmed`,
              { channel },
            ),
          );
        this.#subscribing.delete(channel);
      }
    }
    this.#sent.clear();
    this.#unconfirmed.clear();
    this.#retries.clear();
    for (const waiter of this.#unsubscribing.values()) waiter.resolve();
    this.#unsubscribing.clear();
  }

  /**
   * Sends `subscribe <channel>`, with the channel's token (fetched first, if a function),
   * `joinLeave` and, for a recovering channel, its position:
   * `{"token"?,"joinLeave"?:true,"recover":true,"offset"?,"epoch"?}`.
   */
  #sendSubscribe(channel) {
    this.#sent.add(channel);
    this.#unconfirmed.add(channel);
    const token = this.#tokens.get(channel);
    if (typeof token !== 'function') {
      this.#link.send(subscribeFrame(channel, this.#options(channel, token)));
      return;
    }
    const connection = this.#link.connection();
    const stillWanted = () =>
      connection === this.#link.connection() &&
      this.#link.isOpen() &&
      this.#unconfirmed.has(channel);
    Promise.resolve()
      .then(() => token(channel))
      .then((value) => {
        if (!stillWanted()) return;
        if (typeof value !== 'string') throw new TypeError(`it gave ${JSON.stringify(value)}`);
        this.#link.send(subscribeFrame(channel, this.#options(channel, value)));
      })
      .catch((error) => {
        if (!stillWanted()) return;
        this.#drop(
          channel,
          new CometError(
            ClientErrorCode.NO_TOKEN,
            `the token function of "${channel}" failed (${error?.message ?? error}): not subscribed`,
            { channel },
          ),
        );
      });
  }

  /**
   * The options of a `subscribe` of `channel`: its token, `joinLeave`, and `recover` with
   * the position to resume from (when one is known).
   *
   * @param {string} channel
   * @param {string | undefined} token
   * @returns {Record<string, unknown>}
   */
  #options(channel, token) {
    /** @type {Record<string, unknown>} */
    const options = token === undefined ? {} : { token };
    if (this.#joinLeave.has(channel)) options.joinLeave = true;
    if (!this.#recover.has(channel)) return options;
    options.recover = true;
    const position = this.#positions.get(channel);
    if (position !== null) {
      options.offset = position.offset;
      options.epoch = position.epoch;
    }
    return options;
  }

  /** The subscription to `channel` ended: it recovers no more, and its position goes. */
  #forgetRecovery(channel) {
    this.#recover.delete(channel);
    this.#positions.delete(channel);
  }

  /** Forgets the subscription to `channel` (refused): rejects its waiter, says `error`. */
  #drop(channel, error) {
    const waiter = this.#subscribing.get(channel);
    this.#subscribing.delete(channel);
    this.#channels.delete(channel);
    this.#explicit.delete(channel);
    this.#sent.delete(channel);
    this.#unconfirmed.delete(channel);
    this.#retries.delete(channel);
    this.#tokens.delete(channel);
    this.#joinLeave.delete(channel);
    this.#forgetRecovery(channel);
    waiter?.reject(error);
    this.#link.error(error);
  }
}

/**
 * What {@link Subscriptions} needs of the client.
 *
 * @typedef {object} Link
 * @property {(text: string) => boolean} send sends a frame (through `beforeSend`, the
 *   size check and the queue)
 * @property {() => boolean} isOpen whether the connection is open
 * @property {() => number} connection the number of the current connection
 * @property {(error: CometError) => void} error says `error`
 */

/**
 * A subscription token, or a function that gives one (called for each `subscribe`).
 *
 * @typedef {string | ((channel: string) => string | Promise<string>)} SubscriptionToken
 */

/**
 * The options of `subscribe()`.
 *
 * @typedef {object} SubscribeOptions
 * @property {SubscriptionToken} [token] sent with each `subscribe` of the channel
 * @property {boolean} [recover] subscribe with positions, and resume from the last one
 *   after each reconnection
 * @property {import('./Positions.js').Position | null} [since] with `recover`: start after
 *   this position (e.g. one stored before a page reload); null for none
 * @property {boolean} [joinLeave] ask for the channel's join and leave events (the
 *   namespace must have `join_leave`), now and after each reconnection
 */

/** @typedef {{ promise: Promise<void>, resolve: () => void, reject: (error: Error) => void }} Deferred */

/**
 * A promise with its settle functions. Its rejection counts as handled, so that an app
 * that ignores what `subscribe()` returns (as jii apps do) never sees an unhandled
 * rejection; an app that awaits it still gets the error.
 *
 * @returns {Deferred}
 */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}
