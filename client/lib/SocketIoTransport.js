/**
 * The Socket.IO transport: the stock `socket.io-client` library against the server's
 * Socket.IO endpoint (`<prefix>/socket.io/`), for apps that already ship it or need its
 * long-polling fallback and upgrade.
 *
 * The client speaks jii frames; this transport turns them into the server's Socket.IO
 * events and back (docs/PROTOCOL.md, "Socket.IO"), so that the `Client` works the same over
 * it as over a WebSocket.
 *
 * @module comet-client/lib/SocketIoTransport
 */

import { Emitter } from './Emitter.js';

/** A frame's keyword and the rest. */
function split(text) {
  const space = text.indexOf(' ');
  return space < 0 ? [text, ''] : [text.slice(0, space), text.slice(space + 1)];
}

/** An event argument back as frame text: strings as they are, the rest as JSON. */
function asText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Carries the client's frames over one Socket.IO connection at a time.
 *
 * `socket.io-client` is not bundled: load it first (it sets the global `io`), or pass
 * its `io`:
 *
 * ```js
 * import { io } from 'socket.io-client';
 * new Client({ serverUrl, transport: new SocketIoTransport({ io, transports: ['websocket'] }) });
 * ```
 *
 * Socket.IO's own reconnection is off: the `Client`'s `AutoReconnect` decides, from the
 * close codes the server sends (event `comet:close`).
 *
 * Events: `open`, `message` (a frame's text), `close` (`{ code, reason, wasClean }`).
 * After `close()` it emits nothing more about that connection.
 */
export class SocketIoTransport extends Emitter {
  /** @type {any} */
  #io;
  /** @type {any} */
  #socket = null;

  /**
   * @param {object} [options]
   * @param {Function} [options.io] the `io` function of `socket.io-client`; default the
   *   global `io`
   * @param {string[]} [options.transports] Socket.IO's transports, in order; default
   *   `['polling', 'websocket']` (long-polling, upgraded to WebSocket)
   * @param {string} [options.path] the path below the comet prefix; default `/socket.io`
   * @param {object} [options.auth] Socket.IO's `auth` (e.g. `{ token }`): the token the
   *   connection starts with
   * @param {object} [options.socketOptions] any other `io()` options
   */
  constructor(options = {}) {
    super();
    const io = options.io ?? globalThis.io;
    if (typeof io !== 'function') {
      throw new TypeError(
        'comet: no io here: load socket.io-client first (it sets window.io), ' +
          'or pass it: new SocketIoTransport({ io })',
      );
    }
    this.#io = io;
    /** Socket.IO's transports to use; `undefined` lets it choose. */
    this.transports = options.transports;
    /** The path of the endpoint below the comet prefix. */
    this.path = options.path ?? '/socket.io';
    /** Socket.IO's `auth` payload of the CONNECT. */
    this.auth = options.auth;
    /** Other options for `io(url, options)`. */
    this.socketOptions = options.socketOptions ?? {};
  }

  /**
   * The server origin and the Socket.IO path for a comet prefix URL.
   *
   * @param {string} serverUrl an absolute `http(s):` or `ws(s):` URL
   * @returns {{ origin: string, path: string }}
   */
  url(serverUrl) {
    const url = new URL(serverUrl);
    url.protocol = url.protocol.replace(/^ws/, 'http');
    return { origin: url.origin, path: url.pathname.replace(/\/+$/, '') + this.path };
  }

  /**
   * Opens a connection to the comet server at `serverUrl`, dropping any previous one.
   *
   * @param {string} serverUrl
   */
  open(serverUrl) {
    this.close();
    const { origin, path } = this.url(serverUrl);
    const options = { ...this.socketOptions, path, reconnection: false, forceNew: true };
    if (this.transports) options.transports = this.transports;
    if (this.auth) options.auth = this.auth;
    const socket = this.#io(origin, options);
    this.#socket = socket;
    const current = () => this.#socket === socket;
    const message = (text) => {
      if (current()) this.emit('message', text);
    };
    let closing = null;
    const closed = (code, reason) => {
      if (!current()) return;
      this.#socket = null;
      socket.close();
      const told = closing ?? { code, reason };
      this.emit('close', { code: told.code, reason: told.reason, wasClean: closing !== null });
    };
    socket.on('connect', () => {
      if (current()) this.emit('open');
    });
    // A subscription with `recover` gets its messages' offsets as a third argument.
    socket.on('channel', (channel, payload, offset) =>
      message(
        Number.isInteger(offset)
          ? `pub ${channel} ${offset} ${asText(payload ?? '')}`
          : `channel ${channel} ${asText(payload ?? '')}`,
      ),
    );
    // A subscription with `joinLeave` gets who joined and left, several at once at times.
    for (const type of ['join', 'leave']) {
      socket.on(type, (channel, entries) => {
        if (typeof channel === 'string' && Array.isArray(entries)) {
          message(`${type} ${channel} ${JSON.stringify(entries)}`);
        }
      });
    }
    socket.on('connect_error', (err) => {
      const code = typeof err?.data?.code === 'number' ? err.data.code : 1006;
      closed(code, err?.message ?? 'connect_error');
    });
    socket.on('disconnect', (reason) => closed(1006, reason));
    socket.onAny((event, arg) => {
      if (typeof event !== 'string' || !event.startsWith('comet:')) return;
      const keyword = event.slice('comet:'.length);
      if (keyword === 'close') {
        closing = { code: arg?.code ?? 1006, reason: arg?.reason ?? '' };
        return;
      }
      message(arg === undefined ? keyword : `${keyword} ${asText(arg)}`);
    });
  }

  /**
   * Sends one jii frame, as the server's Socket.IO event.
   *
   * @param {string} text
   */
  send(text) {
    const socket = this.#socket;
    if (!socket) return;
    const reply = (text) => {
      if (this.#socket === socket) this.emit('message', text);
    };
    const [keyword, rest] = split(text);
    switch (keyword) {
      case 'subscribe':
      case 'unsubscribe': {
        const [channel, options] = split(rest);
        const ack = (answer) => {
          if (answer?.error) return reply(`error ${JSON.stringify(answer.error)}`);
          // A subscribe with `recover` is answered with its position.
          const { channel: _, ...position } = answer ?? {};
          const positioned = keyword === 'subscribe' && Number.isInteger(position.offset);
          return reply(
            positioned
              ? `subscribed ${channel} ${JSON.stringify(position)}`
              : `${keyword}d ${channel}`,
          );
        };
        if (options) socket.emit(keyword, channel, JSON.parse(options), ack);
        else socket.emit(keyword, channel, ack);
        break;
      }
      case 'channel': {
        const [channel, payload] = split(rest);
        socket.emit('channel', channel, payload);
        break;
      }
      case 'action': {
        const [route, json] = split(rest);
        const { requestUid, ...params } = JSON.parse(json);
        socket.emit('action', route, params, (answer) =>
          reply(`action ${JSON.stringify({ ...answer, requestUid })}`),
        );
        break;
      }
      case 'history':
      case 'presence':
      case 'presence_stats': {
        // `history <channel> {"requestUid":…,"since"?,"limit"?}`, `presence <channel>
        // {"requestUid":…}`: the answer comes on the ack, as an action's does.
        const [channel, json] = split(rest);
        const { requestUid, ...params } = JSON.parse(json);
        const ack = (answer) => reply(`action ${JSON.stringify({ ...answer, requestUid })}`);
        if (keyword === 'history') socket.emit(keyword, channel, params, ack);
        else socket.emit(keyword, channel, ack);
        break;
      }
      case 'auth':
        socket.emit('auth', rest, (answer) => reply(`authenticated ${JSON.stringify(answer)}`));
        break;
      case 'hello':
        socket.emit('hello', rest ? JSON.parse(rest) : {});
        break;
      default:
        socket.emit(keyword, rest);
    }
  }

  /** Closes the connection, if any, and forgets it. */
  close() {
    const socket = this.#socket;
    this.#socket = null;
    socket?.close();
  }
}
