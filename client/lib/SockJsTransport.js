/**
 * The SockJS transport: the stock `sockjs-client` library, for browsers and networks where
 * a WebSocket does not get through (it falls back to xhr-streaming, jsonp-polling, …).
 *
 * @module comet-client/lib/SockJsTransport
 */

import { SocketTransport } from './SocketTransport.js';

/**
 * Carries the client's text frames over a SockJS connection to the comet prefix URL
 * (the server serves SockJS at the prefix itself).
 *
 * `sockjs-client` is not bundled: load it first (it sets the global `SockJS`), or pass
 * the constructor:
 *
 * ```js
 * import SockJS from 'sockjs-client';
 * new Client({ serverUrl, transport: new SockJsTransport({ SockJS, transports: ['xhr-streaming'] }) });
 * ```
 *
 * Events: `open`, `message` (the frame's text), `close` (`{ code, reason, wasClean }`).
 * After `close()` it emits nothing more about that connection.
 */
export class SockJsTransport extends SocketTransport {
  /** @type {any} */
  #SockJS;

  /**
   * @param {object} [options]
   * @param {Function} [options.SockJS] the `sockjs-client` constructor; default the global
   *   `SockJS`
   * @param {string[]} [options.transports] the SockJS transports to try, in order (e.g.
   *   `['websocket', 'xhr-streaming', 'xhr-polling']`); default all of them
   * @param {object} [options.sockjsOptions] any other `sockjs-client` options
   */
  constructor(options = {}) {
    super();
    const SockJS = options.SockJS ?? globalThis.SockJS;
    if (typeof SockJS !== 'function') {
      throw new TypeError(
        'comet: no SockJS here: load sockjs-client first (it sets window.SockJS), ' +
          'or pass it: new SockJsTransport({ SockJS })',
      );
    }
    this.#SockJS = SockJS;
    /** The SockJS transports to try; `undefined` lets SockJS try all it knows. */
    this.transports = options.transports;
    /** Other options for `new SockJS(url, null, options)`. */
    this.sockjsOptions = options.sockjsOptions ?? {};
  }

  /**
   * The SockJS URL for a comet prefix URL: SockJS wants `http(s):` even for WebSockets.
   *
   * @param {string} serverUrl an absolute `http(s):` or `ws(s):` URL
   * @returns {string}
   */
  url(serverUrl) {
    const url = new URL(serverUrl);
    url.protocol = url.protocol.replace(/^ws/, 'http');
    url.pathname = url.pathname.replace(/\/+$/, '');
    return url.href;
  }

  /**
   * Opens a connection to the comet server at `serverUrl`, dropping any previous one.
   *
   * @param {string} serverUrl
   */
  open(serverUrl) {
    const options = { ...this.sockjsOptions };
    if (this.transports) options.transports = this.transports;
    this.connect(() => new this.#SockJS(this.url(serverUrl), null, options));
  }
}
