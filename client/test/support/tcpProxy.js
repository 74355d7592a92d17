/**
 * A TCP proxy for end-to-end tests of a dead network path: it forwards bytes both ways
 * between its clients and a target port until `freeze()`, after which the connections it
 * carries stay open but pass nothing, like a path through a dead router. Connections made
 * after `freeze()` are forwarded as usual. `cut()` is a network that is down: it drops every
 * connection and refuses new ones until `restore()`.
 */

import { once } from 'node:events';
import { connect, createServer } from 'node:net';

/**
 * Starts a proxy on a free port of 127.0.0.1 to `targetPort`.
 *
 * @param {number} targetPort
 * @returns {Promise<{ port: number, connections: number, freeze: () => void, cut: () => void, restore: () => void, stop: () => Promise<void> }>}
 */
export async function startTcpProxy(targetPort) {
  /** Every pair of sockets, client side and server side. @type {Set<[import('node:net').Socket, import('node:net').Socket]>} */
  const pairs = new Set();
  /** Pairs frozen, destroyed only by `stop()`. */
  const frozen = new Set();
  let connections = 0;
  let down = false;
  const server = createServer((downstream) => {
    if (down) {
      downstream.destroy();
      return;
    }
    connections += 1;
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = [downstream, upstream];
    pairs.add(pair);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const end = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: server.address().port,
    /** How many connections the proxy took so far. */
    get connections() {
      return connections;
    },
    freeze() {
      for (const [downstream, upstream] of pairs) {
        downstream.unpipe(upstream);
        upstream.unpipe(downstream);
        downstream.pause();
        upstream.pause();
        // Neither side hears of the other's end either: a dead path says nothing.
        downstream.removeAllListeners('close');
        upstream.removeAllListeners('close');
        frozen.add([downstream, upstream]);
      }
      pairs.clear();
    },
    /** Drops every connection it carries, and refuses new ones until `restore()`. */
    cut() {
      down = true;
      for (const [downstream, upstream] of pairs) {
        downstream.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    /** Forwards new connections again after `cut()`. */
    restore() {
      down = false;
    },
    async stop() {
      server.close();
      for (const [downstream, upstream] of [...pairs, ...frozen]) {
        downstream.destroy();
        upstream.destroy();
      }
      await once(server, 'close');
    },
  };
}
