/**
 * A chat client that a test can take offline and bring back when it wants: its sockets
 * are in reach (to drop one), and its reconnections can be held back.
 */

import WebSocket from 'ws';

import { AutoReconnect, Client } from '../../client.js';
import { tokensFor } from './chatServer.js';

/**
 * A client logged in as `nick` that retries quickly, whose sockets the test can reach
 * (`sockets`, the newest last) and whose reconnections it can hold back: while `hold()`
 * is in force, no connection opens (its `getToken()` waits), so the client stays offline
 * for as long as the test needs; `release()` lets it reconnect.
 *
 * @param {{ cometUrl: string, url: string }} server a running chat server
 * @param {string} nick
 * @returns {{ client: Client, sockets: WebSocket[], hold: () => void, release: () => void }}
 */
export function offlineCapable(server, nick) {
  const sockets = [];
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }
  const token = tokensFor(server, nick);
  let gate = null;
  let open = () => {};
  const client = new Client({
    serverUrl: server.cometUrl,
    WebSocket: TrackedWebSocket,
    getToken: async () => {
      await gate;
      return token();
    },
    plugins: {
      autoReconnect: new AutoReconnect({ minRetryInterval: 50, maxRetryInterval: 400 }),
    },
  });
  return {
    client,
    sockets,
    hold() {
      gate = new Promise((resolve) => {
        open = resolve;
      });
    },
    release() {
      gate = null;
      open();
    },
  };
}
