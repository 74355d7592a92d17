/**
 * What the built-in transports share: one socket at a time (a WebSocket, or a SockJS
 * connection, which has the same face), whose events are relayed while it is the current
 * one, and nothing from a socket that was replaced or closed.
 *
 * @module comet-client/lib/SocketTransport
 */

import { Emitter } from './Emitter.js';

/**
 * The base of `WebSocketTransport` and `SockJsTransport`: they say how to make a socket
 * for a server URL (`open`), this class does the rest.
 *
 * Events: `open`, `message` (the frame's text), `close` (`{ code, reason, wasClean }`).
 */
export class SocketTransport extends Emitter {
  /** @type {any} */
  #socket = null;

  /**
   * Drops the current socket, if any, and makes the one `create` gives the current one.
   *
   * @param {() => any} create makes a socket with `onopen`, `onmessage`, `onclose`,
   *   `onerror`, `send(text)` and `close(code)`
   */
  connect(create) {
    this.close();
    const socket = create();
    this.#socket = socket;
    const current = () => this.#socket === socket;
    socket.onopen = () => {
      if (current()) this.emit('open');
    };
    socket.onmessage = (event) => {
      if (current() && typeof event.data === 'string') this.emit('message', event.data);
    };
    socket.onclose = (event) => {
      if (!current()) return;
      this.#socket = null;
      this.emit('close', { code: event.code, reason: event.reason, wasClean: event.wasClean });
    };
    // A failure is followed by `close`, which says all there is to say. The handler must
    // stay set: the `ws` package throws an `error` event that nobody listens to.
    socket.onerror = () => {};
  }

  /**
   * Sends one text frame; the client calls it only while the connection is open.
   *
   * @param {string} text
   */
  send(text) {
    this.#socket?.send(text);
  }

  /** Closes the connection (code 1000), if any, and forgets it. */
  close() {
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000);
  }
}
