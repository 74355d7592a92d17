/**
 * The default transport: a native WebSocket to `<prefix>/websocket`, no library needed.
 *
 * @module comet-client/lib/WebSocketTransport
 */

import { SocketTransport } from './SocketTransport.js';

/**
 * Carries the client's text frames over one WebSocket at a time.
 *
 * Browsers and Node 22+ have a global `WebSocket`; Node 20 has none (unless started with
 * `--experimental-websocket`), so pass a constructor such as the `ws` package's:
 *
 * ```js
 * import WebSocket from 'ws';
 * new Client({ serverUrl, transport: new WebSocketTransport({ WebSocket }) });
 * ```
 *
 * Events: `open`, `message` (the frame's text), `close` (`{ code, reason, wasClean }`).
 * After `close()` it emits nothing more about that connection.
 */
export class WebSocketTransport extends SocketTransport {
  /** @type {typeof WebSocket} */
  #WebSocket;

  /**
   * @param {object} [options]
   * @param {typeof WebSocket} [options.WebSocket] the WebSocket constructor; default the
   *   global one
   * @param {string} [options.path] appended to the server URL; default `/websocket`
   */
  constructor(options = {}) {
    super();
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WebSocketImpl !== 'function') {
      throw new TypeError(
        'comet: no WebSocket here (Node 20 has no global one): pass one, e.g. ' +
          "new WebSocketTransport({ WebSocket }) with WebSocket from the 'ws' package",
      );
    }
    this.#WebSocket = WebSocketImpl;
    /** The path below the comet prefix where the server takes WebSockets. */
    this.path = options.path ?? '/websocket';
  }

  /**
   * The WebSocket URL for a comet prefix URL: `http://h/comet` → `ws://h/comet/websocket`.
   *
   * @param {string} serverUrl an absolute `http(s):` or `ws(s):` URL
   * @returns {string}
   */
  url(serverUrl) {
    const url = new URL(serverUrl);
    url.protocol = url.protocol.replace(/^http/, 'ws');
    url.pathname = url.pathname.replace(/\/+$/, '') + this.path;
    return url.href;
  }

  /**
   * Opens a connection to the comet server at `serverUrl` (the prefix URL), dropping any
   * previous one.
   *
   * @param {string} serverUrl
   */
  open(serverUrl) {
    this.connect(() => new this.#WebSocket(this.url(serverUrl)));
  }
}
