/**
 * The comet client: one connection to a comet server, channels, and action requests.
 *
 * @module comet-client/lib/Client
 */

import { ClientErrorCode, CloseCode, ErrorCode } from '../codes.js';
import { Auth } from './Auth.js';
import { AutoReconnect } from './AutoReconnect.js';
import { CometError } from './CometError.js';
import { Emitter } from './Emitter.js';
import { channelEvent, historyParams, readHistory } from './History.js';
import { defaultHeartbeatGrace, Heartbeat } from './Heartbeat.js';
import {
  actionFrame,
  channelFrame,
  checkName,
  helloFrame,
  historyFrame,
  parseServerFrame,
  presenceFrame,
  utf8Length,
} from './protocol.js';
import { emitJoinLeave, readPresence, readPresenceStats } from './Presence.js';
import { Requests } from './Requests.js';
import { Subscriptions } from './Subscriptions.js';
import { WebSocketTransport } from './WebSocketTransport.js';

/** The prefix of the per-channel event names: `channel:chat` fires for channel `chat`. */
const CHANNEL_EVENT_PREFIX = 'channel:';

/** The largest frame a comet server takes by default (its `max_frame_bytes`), in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

export { defaultHeartbeatGrace } from './Heartbeat.js';

/**
 * The comet prefix this module was served from, when it was served by a comet server
 * (`<prefix>/lib/Client.js`): the default `serverUrl`, so that a page importing
 * `/comet/client.js` connects to the server it came from.
 */
const SERVED_FROM = /^https?:/.test(import.meta.url) ? new URL('..', import.meta.url).href : null;

/**
 * A connection to a comet server, the successor of jii's `Jii.comet.client.Client` with
 * the same methods and events.
 *
 * ```js
 * const client = new Client({ serverUrl: 'http://127.0.0.1:4100/comet' });
 * client.on('channel:chat', (event) => console.log(event.params));
 * client.send('chat', { text: 'hi' });
 * const answer = await client.request('site/test', { a: 1 });
 * ```
 *
 * Events (`on`, `once`, `off`):
 * - `open` `{ url }`: the connection is open (again); subscriptions are renewed.
 * - `close` `{ code, reason, wasClean }`: an open connection closed.
 * - `message` `{ message }`: any frame from the server, as text.
 * - `channel` and `channel:<name>` `{ channel, params, message, payload }`: a message on a
 *   channel. `params` is the payload parsed when it is a JSON object or array, else
 *   `null`, and then `message` is the text (jii's shape); `payload` is always the text.
 *   Handling `channel:<name>` subscribes to `<name>`; removing its last handler
 *   unsubscribes, unless the app also called `subscribe(<name>)`. On a channel subscribed
 *   with `recover`, the event also has `offset`, the publication's place in the channel's
 *   history (an integer).
 * - `recovered` `{ channel, recovered }`: after each resubscription of a channel subscribed
 *   with `recover` (each reconnection) and after a first subscribe given `since`, whether
 *   every missed publication was delivered (`true`), or some are lost (`false`: reload the
 *   state); also `false` when the server lost publications of a live subscription (`gap`).
 * - `beforeSend` `{ message }`: a frame about to be sent; a handler may change `message`.
 * - `beforeRequest` `{ route, params }`: a request about to be sent; a handler may change
 *   `params` (e.g. add a token).
 * - `request` `{ route, params, error }`: the server answered a request; `params` is the
 *   answer, `error` a {@link CometError} when it is an error answer.
 * - `error` {@link CometError}: the server refused a frame, or the client refused to send
 *   one (`queue_full`, `too_large`, `closed`), or the server refused the connection
 *   (close codes 4100–4199: `closeCode`), or a token could not be had (`no_token`,
 *   `cannot_refresh`).
 * - `disconnect` `{ code, reason, wasClean }`: a connection, or an attempt to open one,
 *   ended without the app's `close()` (AutoReconnect listens to it); `code` 4000 when the
 *   client itself found the connection dead (no frame for heartbeat + grace).
 * - `reconnecting` `{ attempt, delay, code }`: emitted by {@link AutoReconnect}.
 * - `authenticated` `{ user, exp, connection }`: the server took the client's token (at
 *   connect, and after each refresh).
 * - `join` and `join:<name>`, `leave` and `leave:<name>` `{ channel, connection, user,
 *   info }`: a connection joined or left a channel subscribed with `joinLeave` (one event
 *   per connection, even when the server sent several in one frame; never about this
 *   client's own connection). Handling them does not subscribe.
 * - `forceClose`: the app called `close()`; plugins stop what they were doing.
 */
export class Client extends Emitter {
  static EVENT_OPEN = 'open';
  static EVENT_CLOSE = 'close';
  static EVENT_MESSAGE = 'message';
  static EVENT_CHANNEL = 'channel';
  static EVENT_CHANNEL_NAME = CHANNEL_EVENT_PREFIX;
  static EVENT_BEFORE_SEND = 'beforeSend';
  static EVENT_BEFORE_REQUEST = 'beforeRequest';
  static EVENT_REQUEST = 'request';
  static EVENT_ERROR = 'error';
  static EVENT_RECOVERED = 'recovered';

  /** @type {'closed' | 'connecting' | 'open'} */
  #state = 'closed';
  #forceClosed = false;
  #serverUrl = '';
  /** The URL of the current (or last) connection. */
  #url = '';
  /** The channels, across connections. */
  #subscriptions = new Subscriptions({
    send: (text) => this.#sendFrame(text),
    isOpen: () => this.#state === 'open',
    connection: () => this.#connection,
    error: (error) => this.emit('error', error),
  });
  /** Requests waiting for their answer. */
  #requests = new Requests();
  /** Frames waiting for the connection to open. @type {{ text: string, requestUid?: string }[]} */
  #queue = [];
  #station = Math.random().toString(36).slice(2, 10);
  #lastUid = 0;
  /** Counts connection attempts: what an async step (a token fetch) belongs to. */
  #connection = 0;
  /** Watches the open connection for silence. */
  #heartbeat = new Heartbeat((silent) => this.#onSilent(silent));
  /** The token and what is done with it. @type {Auth} */
  #auth;
  /** Sends on the open connection, and never on a later one. @type {(text: string) => boolean} */
  #writeHere = () => false;

  /**
   * Makes a client and, unless `autoOpen` is `false`, opens its connection.
   *
   * @param {ClientOptions} [options]
   */
  constructor(options = {}) {
    super();
    /** Pick `{workerIndex}` in `serverUrl` among this many workers (jii's balancing). */
    this.workersCount = options.workersCount ?? null;
    /** Renew the subscriptions when a connection opens again. */
    this.autoSubscribeOnReconnect = options.autoSubscribeOnReconnect ?? true;
    /** How long a request waits for its answer, in ms; 0 waits for ever. */
    this.requestTimeout = options.requestTimeout ?? 30_000;
    /** How many frames may wait for the connection to open; more are refused. */
    this.maxQueuedFrames = options.maxQueuedFrames ?? 100;
    /**
     * Ask the server for a `ping` every heartbeat interval (`hello {"heartbeat":true}`),
     * and close and reopen a connection on which nothing arrived for the interval plus
     * `heartbeatGrace`.
     */
    this.heartbeat = options.heartbeat ?? true;
    /** ms; `null` for {@link defaultHeartbeatGrace} of the server's interval. */
    this.heartbeatGrace = options.heartbeatGrace ?? null;
    /**
     * The largest frame the client sends, in bytes (UTF-8): the server's `max_frame_bytes`
     * once it said it (in its `hello`), {@link DEFAULT_MAX_FRAME_BYTES} before. A larger
     * frame is refused at once (`too_large`) instead of being sent.
     */
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    /**
     * What the server said in answer to the client's `hello`: its heartbeat interval and
     * limits; `null` before (or from a server without the extension).
     * @type {{ heartbeat: number, maxFrameBytes: number, maxPendingActions: number } | null}
     */
    this.serverLimits = null;
    /**
     * The user id the server gave in its last `authenticated` answer (`null` for an
     * anonymous connection, or before any answer). @type {string | null}
     */
    this.user = null;
    /**
     * The server's last `authenticated` answer: `{ user, exp, connection }`, `exp` in unix
     * seconds (`null` without expiry).
     * @type {{ user: string | null, exp: number | null, connection: string | null } | null}
     */
    this.identity = null;
    this.#auth = new Auth(this, options);
    this.setServerUrl(options.serverUrl ?? SERVED_FROM ?? '');

    /** The transport carrying the frames. */
    this.transport = options.transport ?? new WebSocketTransport({ WebSocket: options.WebSocket });
    this.transport.on('open', () => this.#onTransportOpen());
    this.transport.on('close', (event) => this.#onTransportClose(event));
    this.transport.on('message', (text) => this.#onTransportMessage(text));

    /** The installed plugins, by name. @type {Record<string, Plugin>} */
    this.plugins = {};
    const plugins = { autoReconnect: AutoReconnect, ...options.plugins };
    for (const [name, plugin] of Object.entries(plugins)) {
      if (!plugin) continue;
      const instance = typeof plugin === 'function' ? new plugin() : plugin;
      instance.attach(this);
      this.plugins[name] = instance;
    }

    if (options.autoOpen ?? true) this.open();
  }

  /**
   * Sets the comet prefix URL, e.g. `http://127.0.0.1:4100/comet`, `/comet` (against the
   * page's location) or `//comet{workerIndex}.example.com/comet`. It is resolved, and
   * `{workerIndex}` picked, each time a connection opens.
   *
   * @param {string} url
   */
  setServerUrl(url) {
    this.#serverUrl = String(url);
  }

  /** @returns {string} the comet prefix URL as it was set */
  getServerUrl() {
    return this.#serverUrl;
  }

  /** @returns {string} an id of this client, the prefix of its `requestUid`s */
  getStationUid() {
    return this.#station;
  }

  /** @returns {'closed' | 'connecting' | 'open'} where the connection stands */
  get state() {
    return this.#state;
  }

  /** @returns {boolean} whether the connection is open */
  isOpened() {
    return this.#state === 'open';
  }

  /** @returns {boolean} whether the app closed the connection (and did not reopen it) */
  isForceClosed() {
    return this.#forceClosed;
  }

  /**
   * Opens the connection, unless it is open or opening. With `getToken()`, the token is
   * fetched first, and the transport opens once it came.
   */
  open() {
    this.#forceClosed = false;
    if (this.#state !== 'closed') return;
    this.#url = this.#connectUrl();
    this.#state = 'connecting';
    const connection = ++this.#connection;
    if (!this.#auth.fetchesOnConnect) {
      this.#openTransport();
      return;
    }
    this.#auth.fetchForConnect().then((token) => {
      if (connection !== this.#connection || this.#state !== 'connecting') return;
      if (token === null) {
        this.#onTransportClose({ reason: 'no token', wasClean: false });
        return;
      }
      this.#auth.use(token);
      try {
        this.#openTransport();
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    });
  }

  #openTransport() {
    try {
      this.transport.open(this.#url);
    } catch (error) {
      this.#state = 'closed';
      throw error;
    }
  }

  /**
   * Whether to reconnect after the server closed a connection with `code`: not after
   * 4100–4199 ("do not reconnect as you are"), except 4102 (token expired) when
   * `getToken()` can fetch a new token. AutoReconnect asks this.
   *
   * @param {number | undefined} code
   * @returns {boolean}
   */
  shouldReconnect(code) {
    return this.#auth.shouldReconnect(code);
  }

  /**
   * Closes the connection for good: it is not reopened until `open()` is called. Requests
   * waiting for an answer or in the queue are rejected; subscriptions are kept for the
   * next `open()`.
   */
  close() {
    this.#forceClosed = true;
    const wasOpen = this.#state === 'open';
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#heartbeat.stop();
      this.transport.close();
      this.#connectionEnded(wasOpen, { code: 1000, reason: 'closed by client', wasClean: true });
    }
    const queued = this.#queue;
    this.#queue = [];
    for (const { requestUid } of queued) {
      if (requestUid !== undefined) this.#requests.cancel(requestUid);
    }
    this.emit('forceClose');
  }

  /**
   * Adds `handler` for `name`; a `channel:<name>` handler subscribes to the channel.
   *
   * @param {string} name
   * @param {(event: any) => void} handler
   * @returns {this}
   */
  on(name, handler) {
    const channel = channelOfEvent(name);
    if (channel) checkName('channel', channel);
    super.on(name, handler);
    if (channel) this.#subscriptions.want(channel);
    return this;
  }

  /**
   * Removes `handler` (or every handler) of `name`; removing the last handler of
   * `channel:<name>` unsubscribes from the channel, unless the app subscribed to it with
   * `subscribe()`.
   *
   * @param {string} name
   * @param {(event: any) => void} [handler]
   * @returns {this}
   */
  off(name, handler) {
    super.off(name, handler);
    const channel = channelOfEvent(name);
    if (channel && this.listenerCount(name) === 0 && !this.#subscriptions.isExplicit(channel)) {
      this.#subscriptions.unwant(channel);
    }
    return this;
  }

  /**
   * @param {string} channel
   * @returns {boolean} whether `channel:<channel>` has handlers
   */
  hasChannelHandlers(channel) {
    return this.listenerCount(CHANNEL_EVENT_PREFIX + channel) > 0;
  }

  /**
   * Subscribes to `channel`, now or as soon as the connection opens, and again after each
   * reconnection (see `autoSubscribeOnReconnect`). The subscription lasts until
   * `unsubscribe(channel)`, whatever `channel:<name>` handlers come and go.
   *
   * A subscription token (`options.token`) goes with each `subscribe` of the channel
   * (`subscribe <channel> {"token":"…"}`), this one and those after each reconnection;
   * give a function to fetch a fresh one each time. A later `subscribe(channel, { token })`
   * replaces the token for the next time.
   *
   * With `recover: true` the channel's messages come with their `offset`, the client keeps
   * the channel's position ({@link Client#position}), and each resubscription after a
   * reconnection resumes from it (`subscribe <channel> {"recover":true,"offset":N,"epoch":"E"}`):
   * the server sends what was missed first, as ordinary channel events, then says whether
   * that was all (the `recovered` event). `since` (a position kept from before, e.g. in
   * sessionStorage across a page reload) makes the first subscribe resume from there too.
   * Both count from the channel's next `subscribe` frame: give them in its first
   * `subscribe()`, before a `channel:<name>` handler subscribed it on an open connection.
   *
   * @param {string} channel
   * @param {import('./Subscriptions.js').SubscribeOptions} [options]
   * @returns {Promise<void>} resolved when the server confirms (with `recover`: after the
   *   missed messages were delivered); rejected with a {@link CometError} when it refuses
   *   (e.g. `forbidden`, after which it is not renewed), or when a token function fails
   *   (`no_token`). Ignoring it is safe.
   */
  subscribe(channel, options = {}) {
    checkName('channel', channel);
    return this.#subscriptions.subscribe(channel, options ?? {});
  }

  /**
   * Where a channel subscribed with `recover` stands: the offset of the last message
   * delivered (or the channel's offset when the subscription began, when none was) and
   * its history's epoch. Keep it (e.g. in sessionStorage) to resume after a page reload
   * with `subscribe(channel, { recover: true, since })`.
   *
   * @param {string} channel
   * @returns {{ offset: number, epoch: string } | null} a copy; null while no position is
   *   known (not subscribed with `recover`, or before its `subscribed` answer; after
   *   `unsubscribe`)
   */
  position(channel) {
    return this.#subscriptions.position(channel);
  }

  /**
   * Reads the history of `channel` (allowed to whoever may subscribe to it, subscribed or
   * not): the publications after `since`, or the newest `limit` without `since`, or all it
   * keeps without either. Sent as `history <channel> {"requestUid":…,"since":N,"limit":L}`.
   *
   * @param {string} channel
   * @param {{ since?: number | { offset: number, epoch: string } | null, limit?: number | null }} [options]
   *   `since`: an offset, or a position (its offset is sent); `limit`: at most that many
   *   publications. Anything else throws a TypeError.
   * @returns {Promise<{ publications: object[], offset: number, epoch: string }>} the
   *   publications oldest first, each shaped like a channel event
   *   (`{ channel, params, message, payload, offset }`), and the channel's position now;
   *   rejected with a {@link CometError} (with `channel`) on an error answer (`forbidden`,
   *   `not_found`: the namespace keeps no history, `unavailable`), and as a request is
   *   (`timeout`, `disconnected`, `queue_full`, `too_large`, `cancelled`, `closed`)
   */
  history(channel, options = {}) {
    checkName('channel', channel);
    const params = historyParams(options);
    const answer = this.#read(channel, 'history', (requestUid) =>
      historyFrame(channel, { requestUid, ...params }),
    );
    return answer.then((body) => readHistory(channel, body));
  }

  /**
   * Who is in `channel` (a namespace with `presence`; allowed to whoever may subscribe to
   * it, subscribed or not): one entry per connection subscribed to it, a user with two tabs
   * twice. Sent as `presence <channel> {"requestUid":…}`.
   *
   * @param {string} channel
   * @returns {Promise<{ clients: Record<string, import('./Presence.js').PresenceEntry> }>}
   *   `{ clients: { <connection id>: { connection, user, info } } }` (`user` null for an
   *   anonymous connection); rejected like `history()` (`not_found`: the namespace keeps
   *   no presence; `too_large`: more entries than the server lists, see `presenceStats`)
   */
  presence(channel) {
    checkName('channel', channel);
    const answer = this.#read(channel, 'presence', (requestUid) =>
      presenceFrame('presence', channel, requestUid),
    );
    return answer.then((body) => readPresence(channel, body));
  }

  /**
   * How many connections and distinct users are in `channel`, without the list (anonymous
   * connections count as clients, not users). Sent as `presence_stats <channel>
   * {"requestUid":…}`.
   *
   * @param {string} channel
   * @returns {Promise<{ clients: number, users: number }>} rejected like `presence()`
   */
  presenceStats(channel) {
    checkName('channel', channel);
    const answer = this.#read(channel, 'presence stats', (requestUid) =>
      presenceFrame('presence_stats', channel, requestUid),
    );
    return answer.then((body) => readPresenceStats(channel, body));
  }

  /**
   * Sends a read of `channel` (its history or presence), answered like a request.
   *
   * @param {string} channel
   * @param {'history' | 'presence' | 'presence stats'} read
   * @param {(requestUid: string) => string} frame the frame, given its `requestUid`
   * @returns {Promise<Record<string, any>>} the answer
   */
  #read(channel, read, frame) {
    if (this.#forceClosed) {
      return Promise.reject(
        new CometError(
          ClientErrorCode.CLOSED,
          `the client is closed: the ${read} of "${channel}" not read`,
          { channel },
        ),
      );
    }
    const requestUid = this.#nextRequestUid();
    const answer = this.#requests.add(requestUid, { channel, read }, this.requestTimeout);
    this.#sendFrame(frame(requestUid), { requestUid });
    return answer;
  }

  /**
   * Ends the subscription made by `subscribe(channel)`; the channel stays subscribed
   * while it has `channel:<name>` handlers.
   *
   * @param {string} channel
   * @returns {Promise<void>} resolved when the server confirms, or at once when there is
   *   nothing to tell it. Ignoring it is safe.
   */
  unsubscribe(channel) {
    return this.#subscriptions.unsubscribe(channel, this.hasChannelHandlers(channel));
  }

  /**
   * Publishes `data` to `channel`: a string as it is, anything else as JSON. Sent while
   * the connection is not open, it waits in the queue.
   *
   * @param {string} channel
   * @param {unknown} data
   * @returns {boolean} `false` when the message was dropped, and an `error` event says
   *   why: `queue_full` (not connected and the queue is full), `too_large` (the frame is
   *   over `maxFrameBytes`) or `closed` (the app called `close()` and not `open()` since)
   */
  send(channel, data) {
    checkName('channel', channel);
    if (this.#forceClosed) {
      this.emit(
        'error',
        new CometError(
          ClientErrorCode.CLOSED,
          `the client is closed: nothing sent to "${channel}"`,
          {
            channel,
          },
        ),
      );
      return false;
    }
    const payload = typeof data === 'string' ? data : JSON.stringify(data);
    return this.#sendFrame(channelFrame(channel, payload), { channel });
  }

  /**
   * Calls the server action `route` with `params`.
   *
   * @param {string} route e.g. `site/test`
   * @param {object | null} [params] a JSON object (not an array); `null` or left out for
   *   none. Anything else throws a TypeError.
   * @param {{ timeout?: number }} [options] `timeout` in ms overrides `requestTimeout`
   * @returns {Promise<object>} the server's answer (an object with `requestUid`); rejected
   *   with a {@link CometError} on an error answer (`code` from the server), when no answer
   *   came in time (`timeout`), when the connection closed before the answer
   *   (`disconnected`), when the queue was full (`queue_full`), when its frame is over
   *   `maxFrameBytes` (`too_large`), when `close()` dropped it (`cancelled`), or at once
   *   when it was made after `close()` and before the next `open()` (`closed`)
   */
  request(route, params = {}, options = {}) {
    checkName('route', route);
    if (params !== null && (typeof params !== 'object' || Array.isArray(params))) {
      throw new TypeError(
        `comet: the params of "${route}" are a JSON object, not ${Array.isArray(params) ? 'an array' : typeof params}`,
      );
    }
    if (this.#forceClosed) {
      return Promise.reject(
        new CometError(ClientErrorCode.CLOSED, `the client is closed: "${route}" not sent`, {
          route,
        }),
      );
    }
    const requestUid = this.#nextRequestUid();
    const event = { route, params: { ...params, requestUid } };
    this.emit('beforeRequest', event);
    // requestUid first, so that a server can answer even a frame too large to parse.
    const data = { requestUid, ...event.params, requestUid };
    const timeout = options.timeout ?? this.requestTimeout;
    const answer = this.#requests.add(requestUid, { route }, timeout);
    this.#sendFrame(actionFrame(route, data), { requestUid });
    return answer;
  }

  /** @returns {string} a new `requestUid`: the station, and a counter */
  #nextRequestUid() {
    return `${this.#station}-${(++this.#lastUid).toString(36)}`;
  }

  /**
   * Sends a frame now, or queues it until the connection opens.
   *
   * @param {string} text
   * @param {{ requestUid?: string, channel?: string }} [about] the request the frame
   *   carries, or the channel it publishes to
   * @returns {boolean} false when the frame was refused (queue full, too large)
   */
  #sendFrame(text, { requestUid, channel } = {}) {
    const event = { message: text };
    this.emit('beforeSend', event);
    const bytes = utf8Length(event.message);
    if (bytes > this.maxFrameBytes) {
      const what =
        requestUid === undefined ? 'frame' : `request for ${this.#requests.describe(requestUid)}`;
      this.#refuse(
        requestUid,
        new CometError(
          ErrorCode.TOO_LARGE,
          `the ${what} is ${bytes} bytes, over the server's limit of ${this.maxFrameBytes}`,
          { channel },
        ),
      );
      return false;
    }
    if (this.#state === 'open') {
      this.#write(event.message, requestUid);
      return true;
    }
    if (this.#queue.length < this.maxQueuedFrames) {
      this.#queue.push({ text: event.message, requestUid });
      return true;
    }
    const error = new CometError(
      ClientErrorCode.QUEUE_FULL,
      `not connected, and ${this.maxQueuedFrames} frames already wait to be sent`,
      { channel },
    );
    this.#refuse(requestUid, error);
    return false;
  }

  /** Rejects the request `requestUid` with `error`, or says `error` for any other frame. */
  #refuse(requestUid, error) {
    if (requestUid === undefined) this.emit('error', error);
    else this.#requests.refuse(requestUid, error);
  }

  /** Writes a frame to the open transport. */
  #write(text, requestUid) {
    if (requestUid !== undefined && !this.#requests.markSent(requestUid)) return; // timed out
    this.transport.send(text);
  }

  /** Where to connect now: `serverUrl` resolved, with its `{workerIndex}` picked. */
  #connectUrl() {
    let url = this.#serverUrl;
    if (url.includes('{workerIndex}')) {
      const workers = Math.max(Number(this.workersCount) || 0, 1);
      url = url.replaceAll('{workerIndex}', String(Math.floor(Math.random() * workers)));
    }
    const base = globalThis.location?.href;
    try {
      return new URL(url, base).href;
    } catch {
      throw new TypeError(
        `comet: serverUrl "${url}" is not an absolute URL (such as http://127.0.0.1:4100/comet)`,
      );
    }
  }

  #onTransportOpen() {
    if (this.#state !== 'connecting') return;
    this.#state = 'open';
    this.#writeHere = this.#writerForConnection();
    this.#heartbeat.received();
    // Who we are comes first: a server that requires it closes a connection whose first
    // frame is anything else. Not through beforeSend, so that no plugin logs the token.
    const auth = this.#auth.firstFrame();
    if (auth !== null) this.transport.send(auth);
    if (this.heartbeat) this.transport.send(helloFrame({ heartbeat: true }));
    this.#subscriptions.renew();
    const queued = this.#queue;
    this.#queue = [];
    for (const { text, requestUid } of queued) this.#write(text, requestUid);
    this.emit('open', { url: this.#url });
  }

  #onTransportClose(event = {}) {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    const closeEvent = {
      code: event.code,
      reason: event.reason ?? '',
      wasClean: event.wasClean ?? false,
    };
    this.#connectionEnded(wasOpen, closeEvent);
    const refusal = this.#auth.refusal(closeEvent.code, closeEvent.reason);
    if (refusal) this.emit('error', refusal);
    this.emit('disconnect', closeEvent);
  }

  /**
   * A function that sends a frame on the current connection while it is open, and later
   * does nothing (for answers that come after an async step, such as a token refresh).
   *
   * @returns {(text: string) => boolean} says whether it sent
   */
  #writerForConnection() {
    const connection = this.#connection;
    return (text) => {
      if (connection !== this.#connection || this.#state !== 'open') return false;
      this.transport.send(text);
      return true;
    };
  }

  /** Nothing came for too long: the socket may never say it is gone, so drop it. */
  #onSilent(silent) {
    this.transport.close();
    this.#onTransportClose({
      code: CloseCode.HEARTBEAT_TIMEOUT,
      reason: `nothing from the server for ${silent} ms`,
      wasClean: false,
    });
  }

  /** The server answered `hello`: keep its limits, and watch the connection if it pings. */
  #onHello(body) {
    if (!body) return;
    const number = (value) => (typeof value === 'number' && value > 0 ? value : 0);
    const heartbeat = number(body.heartbeat);
    this.serverLimits = {
      heartbeat,
      maxFrameBytes: number(body.max_frame_bytes) || DEFAULT_MAX_FRAME_BYTES,
      maxPendingActions: number(body.max_pending_actions),
    };
    this.maxFrameBytes = this.serverLimits.maxFrameBytes;
    if (this.heartbeat && heartbeat > 0) {
      this.#heartbeat.start(heartbeat + (this.heartbeatGrace ?? defaultHeartbeatGrace(heartbeat)));
    }
  }

  /** Settles what depended on the connection that just ended. */
  #connectionEnded(wasOpen, closeEvent) {
    this.#heartbeat.stop();
    this.#requests.connectionEnded();
    this.#subscriptions.connectionEnded(this.autoSubscribeOnReconnect);
    if (wasOpen) this.emit('close', closeEvent);
  }

  /** Reads one frame from the server. */
  #onTransportMessage(text) {
    this.#heartbeat.received();
    const frame = parseServerFrame(text);
    switch (frame.type) {
      case 'channel':
        this.#emitChannel(frame.channel, frame.payload);
        break;
      case 'action':
        this.#onAnswer(frame.body);
        break;
      case 'pub':
        if (this.#subscriptions.onPublication(frame.channel, frame.offset)) {
          this.#emitChannel(frame.channel, frame.payload, frame.offset);
        }
        break;
      case 'subscribed': {
        const recovered = this.#subscriptions.onSubscribed(frame.channel, frame.body);
        if (recovered !== undefined) {
          this.emit('recovered', { channel: frame.channel, recovered });
        }
        break;
      }
      case 'gap':
        if (this.#subscriptions.onGap(frame.channel, frame.body)) {
          this.emit('recovered', { channel: frame.channel, recovered: false });
        }
        break;
      case 'unsubscribed':
        this.#subscriptions.onUnsubscribed(frame.channel);
        break;
      case 'join':
      case 'leave':
        if (this.#subscriptions.hasJoinLeave(frame.channel)) {
          emitJoinLeave(this, frame.type, frame.channel, frame.entries);
        }
        break;
      case 'error':
        this.#onError(frame.body);
        break;
      case 'hello':
        this.#onHello(frame.body);
        break;
      case 'authenticated':
        this.#auth.onAuthenticated(frame.body);
        break;
      case 'refresh':
        this.#auth.onRefresh(frame.body, this.#writeHere);
        break;
      case 'ping':
        break; // a heartbeat: that it arrived is all it says
      default:
        break; // unknown frames are for newer clients
    }
    this.emit('message', { message: text });
  }

  /** Says a message on `channel`: `channel:<name>`, then `channel`. */
  #emitChannel(channel, payload, offset) {
    const event = channelEvent(channel, payload, offset);
    this.emit(CHANNEL_EVENT_PREFIX + channel, event);
    this.emit('channel', event);
  }

  #onAnswer(answer) {
    const answered = this.#requests.onAnswer(answer);
    const route = answered?.about.route;
    if (route !== undefined) {
      this.emit('request', { route, params: answer, error: answered?.error });
    }
  }

  #onError(body) {
    if (!body) return;
    const channel = typeof body.channel === 'string' ? body.channel : undefined;
    const error = new CometError(
      String(body.code ?? ErrorCode.INTERNAL),
      String(body.message ?? 'the server refused a frame'),
      { channel, response: body },
    );
    if (!this.#subscriptions.onError(error)) this.emit('error', error);
  }
}

/**
 * @typedef {object} ClientOptions
 * @property {string} [serverUrl] the comet prefix URL; default: where this module was
 *   served from, when a comet server served it
 * @property {Transport} [transport] default a {@link WebSocketTransport}
 * @property {typeof WebSocket} [WebSocket] the WebSocket constructor for the default
 *   transport (e.g. the `ws` package in Node 20)
 * @property {Record<string, Plugin | (new () => Plugin) | null | false>} [plugins] added to
 *   the default `{ autoReconnect: AutoReconnect }`; `null` or `false` removes one
 * @property {boolean} [autoOpen] open in the constructor; default true
 * @property {number | null} [workersCount] how many workers `{workerIndex}` picks from
 * @property {boolean} [autoSubscribeOnReconnect] default true
 * @property {number} [requestTimeout] ms; default 30000; 0 waits for ever
 * @property {number} [maxQueuedFrames] default 100
 * @property {boolean} [heartbeat] ask the server for pings and reconnect when nothing
 *   arrived for its heartbeat interval plus `heartbeatGrace`; default true
 * @property {number | null} [heartbeatGrace] ms; default {@link defaultHeartbeatGrace}
 * @property {number} [maxFrameBytes] the frame limit until the server says its own;
 *   default {@link DEFAULT_MAX_FRAME_BYTES}
 * @property {string} [token] sent as `auth <token>`, the first frame of every connection
 * @property {() => string | Promise<string>} [getToken] called before each connection
 *   opens and on each `refresh` from the server; its token is sent as `auth <token>`
 */

/**
 * @typedef {object} Transport
 * @property {(serverUrl: string) => void} open
 * @property {() => void} close
 * @property {(text: string) => void} send
 * @property {(name: string, handler: (event: any) => void) => unknown} on
 */

/** @typedef {{ attach(client: Client): void }} Plugin */

/** The channel of a `channel:<name>` event name, else null. */
function channelOfEvent(name) {
  return name.startsWith(CHANNEL_EVENT_PREFIX) && name.length > CHANNEL_EVENT_PREFIX.length
    ? name.slice(CHANNEL_EVENT_PREFIX.length)
    : null;
}
