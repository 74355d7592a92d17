/**
 * The comet client: one connection to a comet server, channels, and action requests.
 *
 * @module comet-client/lib/Client
 */

import { ClientErrorCode, ErrorCode } from '../codes.js';
import { AutoReconnect } from './AutoReconnect.js';
import { CometError } from './CometError.js';
import { Emitter } from './Emitter.js';
import {
  actionFrame,
  channelFrame,
  checkName,
  parseServerFrame,
  readPayload,
  subscribeFrame,
  unsubscribeFrame,
} from './protocol.js';
import { WebSocketTransport } from './WebSocketTransport.js';

/** The prefix of the per-channel event names: `channel:chat` fires for channel `chat`. */
const CHANNEL_EVENT_PREFIX = 'channel:';

/** Error codes in an `error` frame that mean "your subscription to this channel failed". */
const SUBSCRIBE_REFUSALS = new Set([
  ErrorCode.BAD_CHANNEL,
  ErrorCode.TOO_MANY_CHANNELS,
  ErrorCode.FORBIDDEN,
]);

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
 *   unsubscribes.
 * - `beforeSend` `{ message }`: a frame about to be sent; a handler may change `message`.
 * - `beforeRequest` `{ route, params }`: a request about to be sent; a handler may change
 *   `params` (e.g. add a token).
 * - `request` `{ route, params, error }`: the server answered a request; `params` is the
 *   answer, `error` a {@link CometError} when it is an error answer.
 * - `error` {@link CometError}: the server refused a frame, or the queue was full.
 * - `reconnecting` `{ attempt, delay, code }`: emitted by {@link AutoReconnect}.
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

  /** @type {'closed' | 'connecting' | 'open'} */
  #state = 'closed';
  #forceClosed = false;
  #serverUrl = '';
  /** The URL of the current (or last) connection. */
  #url = '';
  /** Channels the app wants to be subscribed to. @type {Set<string>} */
  #channels = new Set();
  /** Channels whose `subscribe` went out on the current connection. @type {Set<string>} */
  #sentChannels = new Set();
  /** @type {Map<string, Deferred>} */
  #subscribing = new Map();
  /** @type {Map<string, Deferred>} */
  #unsubscribing = new Map();
  /** Requests waiting for their answer, by `requestUid`. @type {Map<string, PendingRequest>} */
  #requests = new Map();
  /** Frames waiting for the connection to open. @type {{ text: string, requestUid?: string }[]} */
  #queue = [];
  #station = Math.random().toString(36).slice(2, 10);
  #lastUid = 0;

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

  /** Opens the connection, unless it is open or opening. */
  open() {
    this.#forceClosed = false;
    if (this.#state !== 'closed') return;
    this.#url = this.#connectUrl();
    this.#state = 'connecting';
    try {
      this.transport.open(this.#url);
    } catch (error) {
      this.#state = 'closed';
      throw error;
    }
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
      this.transport.close();
      this.#connectionEnded(wasOpen, { code: 1000, reason: 'closed by client', wasClean: true });
    }
    const queued = this.#queue;
    this.#queue = [];
    for (const { requestUid } of queued) {
      if (requestUid === undefined) continue;
      const route = this.#requests.get(requestUid)?.route;
      this.#settle(requestUid, {
        error: new CometError(
          ClientErrorCode.CANCELLED,
          `the client closed before "${route}" was sent`,
          { route },
        ),
      });
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
    super.on(name, handler);
    const channel = channelOfEvent(name);
    if (channel) this.subscribe(channel);
    return this;
  }

  /**
   * Removes `handler` (or every handler) of `name`; removing the last handler of
   * `channel:<name>` unsubscribes from the channel.
   *
   * @param {string} name
   * @param {(event: any) => void} [handler]
   * @returns {this}
   */
  off(name, handler) {
    super.off(name, handler);
    const channel = channelOfEvent(name);
    if (channel && this.listenerCount(name) === 0) this.unsubscribe(channel);
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
   * reconnection (see `autoSubscribeOnReconnect`).
   *
   * @param {string} channel
   * @returns {Promise<void>} resolved when the server confirms; rejected with a
   *   {@link CometError} when it refuses. Ignoring it is safe.
   */
  subscribe(channel) {
    checkName('channel', channel);
    if (this.#channels.has(channel)) {
      return this.#subscribing.get(channel)?.promise ?? Promise.resolve();
    }
    this.#channels.add(channel);
    const waiter = deferred();
    this.#subscribing.set(channel, waiter);
    if (this.#state === 'open') this.#sendSubscribe(channel);
    return waiter.promise;
  }

  /**
   * Unsubscribes from `channel`.
   *
   * @param {string} channel
   * @returns {Promise<void>} resolved when the server confirms, or at once when there is
   *   nothing to tell it. Ignoring it is safe.
   */
  unsubscribe(channel) {
    if (!this.#channels.delete(channel)) return Promise.resolve();
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
    if (this.#state !== 'open' || !this.#sentChannels.delete(channel)) return Promise.resolve();
    const waiter = this.#unsubscribing.get(channel) ?? deferred();
    this.#unsubscribing.set(channel, waiter);
    this.#sendFrame(unsubscribeFrame(channel));
    return waiter.promise;
  }

  /**
   * Publishes `data` to `channel`: a string as it is, anything else as JSON. Sent while
   * the connection is not open, it waits in the queue.
   *
   * @param {string} channel
   * @param {unknown} data
   * @returns {boolean} `false` when the queue was full and the message was dropped (an
   *   `error` event says so too)
   */
  send(channel, data) {
    checkName('channel', channel);
    const payload = typeof data === 'string' ? data : JSON.stringify(data);
    return this.#sendFrame(channelFrame(channel, payload));
  }

  /**
   * Calls the server action `route` with `params`.
   *
   * @param {string} route e.g. `site/test`
   * @param {object} [params] a JSON object
   * @param {{ timeout?: number }} [options] `timeout` in ms overrides `requestTimeout`
   * @returns {Promise<object>} the server's answer (an object with `requestUid`); rejected
   *   with a {@link CometError} on an error answer (`code` from the server), when no answer
   *   came in time (`timeout`), when the connection closed before the answer
   *   (`disconnected`), when the queue was full (`queue_full`) or when `close()` dropped it
   *   (`cancelled`)
   */
  request(route, params = {}, options = {}) {
    checkName('route', route);
    const requestUid = `${this.#station}-${(++this.#lastUid).toString(36)}`;
    const event = { route, params: { ...params, requestUid } };
    this.emit('beforeRequest', event);
    const data = { ...event.params, requestUid };
    const timeout = options.timeout ?? this.requestTimeout;
    return new Promise((resolve, reject) => {
      /** @type {PendingRequest} */
      const pending = { route, resolve, reject, timer: null, sent: false };
      this.#requests.set(requestUid, pending);
      if (timeout > 0 && Number.isFinite(timeout)) {
        pending.timer = setTimeout(() => {
          this.#settle(requestUid, {
            error: new CometError(
              ErrorCode.TIMEOUT,
              `no answer to "${route}" within ${timeout} ms`,
              { route },
            ),
          });
        }, timeout);
      }
      this.#sendFrame(actionFrame(route, data), requestUid);
    });
  }

  /**
   * Sends a frame now, or queues it until the connection opens.
   *
   * @param {string} text
   * @param {string} [requestUid] the request the frame carries
   * @returns {boolean} false when the queue was full
   */
  #sendFrame(text, requestUid) {
    const event = { message: text };
    this.emit('beforeSend', event);
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
    );
    if (requestUid === undefined) {
      this.emit('error', error);
    } else {
      error.route = this.#requests.get(requestUid)?.route;
      this.#settle(requestUid, { error });
    }
    return false;
  }

  /** Writes a frame to the open transport. */
  #write(text, requestUid) {
    if (requestUid !== undefined) {
      const pending = this.#requests.get(requestUid);
      if (!pending) return; // timed out while queued
      pending.sent = true;
    }
    this.transport.send(text);
  }

  #sendSubscribe(channel) {
    this.#sentChannels.add(channel);
    this.#sendFrame(subscribeFrame(channel));
  }

  /** Resolves or rejects a pending request, once. */
  #settle(requestUid, { answer, error }) {
    const pending = this.#requests.get(requestUid);
    if (!pending) return;
    this.#requests.delete(requestUid);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve(answer);
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
    for (const channel of this.#channels) this.#sendSubscribe(channel);
    const queued = this.#queue;
    this.#queue = [];
    for (const { text, requestUid } of queued) this.#write(text, requestUid);
    this.emit('open', { url: this.#url });
  }

  #onTransportClose(event = {}) {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#connectionEnded(wasOpen, {
      code: event.code,
      reason: event.reason ?? '',
      wasClean: event.wasClean ?? false,
    });
  }

  /** Settles what depended on the connection that just ended. */
  #connectionEnded(wasOpen, closeEvent) {
    for (const [requestUid, pending] of [...this.#requests]) {
      if (!pending.sent) continue;
      this.#settle(requestUid, {
        error: new CometError(
          ClientErrorCode.DISCONNECTED,
          `the connection closed before "${pending.route}" was answered`,
          { route: pending.route },
        ),
      });
    }
    if (!this.autoSubscribeOnReconnect) {
      for (const channel of this.#sentChannels) {
        this.#channels.delete(channel);
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
    this.#sentChannels.clear();
    for (const waiter of this.#unsubscribing.values()) waiter.resolve();
    this.#unsubscribing.clear();
    if (wasOpen) this.emit('close', closeEvent);
  }

  /** Reads one frame from the server. */
  #onTransportMessage(text) {
    const frame = parseServerFrame(text);
    switch (frame.type) {
      case 'channel': {
        const event = {
          channel: frame.channel,
          ...readPayload(frame.payload),
          payload: frame.payload,
        };
        this.emit(CHANNEL_EVENT_PREFIX + frame.channel, event);
        this.emit('channel', event);
        break;
      }
      case 'action':
        this.#onAnswer(frame.body);
        break;
      case 'subscribed':
        this.#subscribing.get(frame.channel)?.resolve();
        this.#subscribing.delete(frame.channel);
        break;
      case 'unsubscribed':
        this.#unsubscribing.get(frame.channel)?.resolve();
        this.#unsubscribing.delete(frame.channel);
        break;
      case 'error':
        this.#onError(frame.body);
        break;
      default:
        break; // unknown frames are for newer clients
    }
    this.emit('message', { message: text });
  }

  #onAnswer(answer) {
    const requestUid = answer?.requestUid;
    const pending = this.#requests.get(requestUid);
    if (!pending) return;
    const { route } = pending;
    const error = answer.error
      ? new CometError(
          String(answer.error.code ?? ErrorCode.INTERNAL),
          String(answer.error.message ?? `"${route}" failed`),
          { route, response: answer },
        )
      : undefined;
    this.#settle(requestUid, { answer, error });
    this.emit('request', { route, params: answer, error });
  }

  #onError(body) {
    if (!body) return;
    const channel = typeof body.channel === 'string' ? body.channel : undefined;
    const error = new CometError(
      String(body.code ?? ErrorCode.INTERNAL),
      String(body.message ?? 'the server refused a frame'),
      { channel, response: body },
    );
    const waiter = channel === undefined ? undefined : this.#subscribing.get(channel);
    if (waiter && SUBSCRIBE_REFUSALS.has(error.code)) {
      this.#subscribing.delete(channel);
      this.#channels.delete(channel);
      this.#sentChannels.delete(channel);
      waiter.reject(error);
    }
    this.emit('error', error);
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
 */

/**
 * @typedef {object} Transport
 * @property {(serverUrl: string) => void} open
 * @property {() => void} close
 * @property {(text: string) => void} send
 * @property {(name: string, handler: (event: any) => void) => unknown} on
 */

/** @typedef {{ attach(client: Client): void }} Plugin */

/**
 * @typedef {object} PendingRequest
 * @property {string} route
 * @property {(answer: object) => void} resolve
 * @property {(error: CometError) => void} reject
 * @property {ReturnType<typeof setTimeout> | null} timer
 * @property {boolean} sent whether the frame went out on the current connection
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

/** The channel of a `channel:<name>` event name, else null. */
function channelOfEvent(name) {
  return name.startsWith(CHANNEL_EVENT_PREFIX) && name.length > CHANNEL_EVENT_PREFIX.length
    ? name.slice(CHANNEL_EVENT_PREFIX.length)
    : null;
}
