// The heartbeat extension and the frame limit against the real chat server: the server
// answers `hello` with its interval and limits and sends `ping`s; a client behind a
// network path that freezes notices and reconnects; frames over the limit are refused at
// once, by the client and by the server.
//
// The chat server runs with a 1 s heartbeat (`--heartbeat-ms 1000`), so the frozen-path
// test takes about 2 s (1 s + the 1 s grace it sets).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { AutoReconnect, Client, CloseCode } from '../../client.js';
import { startChat, stopAllChats } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';
import { startTcpProxy } from '../support/tcpProxy.js';

/** The chat server's heartbeat interval (`--heartbeat-ms`), in ms. */
const HEARTBEAT_MS = 1_000;
/** Long enough for a ping, and for a frozen connection to be noticed, with room to spare. */
const SLOW_EVENT_MS = HEARTBEAT_MS + 20_000;

describe('heartbeats and frame limits, against the chat server', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startChat({ args: ['--heartbeat-ms', String(HEARTBEAT_MS)] });
  });

  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
    await stopAllChats();
  });

  function client(options = {}) {
    const made = new Client({ serverUrl: server.cometUrl, WebSocket, ...options });
    clients.push(made);
    return made;
  }

  const isHello = ({ message }) => message.startsWith('hello ');

  it('the server answers hello with its heartbeat interval and limits', async () => {
    const c = client();
    await nextEvent(c, 'message', isHello);
    assert.deepEqual(c.serverLimits, {
      heartbeat: HEARTBEAT_MS,
      maxFrameBytes: 65536,
      maxPendingActions: 64,
    });
  });

  it('a frozen path is noticed: pending requests reject, the client reconnects', async (t) => {
    const proxy = await startTcpProxy(server.port);
    t.after(() => proxy.stop());
    const behindProxy = client({
      serverUrl: `http://127.0.0.1:${proxy.port}/comet`,
      heartbeatGrace: 1000,
      plugins: { autoReconnect: new AutoReconnect({ minRetryInterval: 50 }) },
    });
    const direct = client();
    await Promise.all([
      nextEvent(behindProxy, 'message', isHello),
      nextEvent(direct, 'message', isHello),
    ]);
    const listener = client();
    await listener.subscribe('frozen');

    proxy.freeze();
    const pending = behindProxy.request('site/sleep', { ms: 5000 }, { timeout: 120_000 });
    const rejected = assert.rejects(pending, { code: 'disconnected', route: 'site/sleep' });
    const pinged = nextEvent(direct, 'message', ({ message }) => message === 'ping', SLOW_EVENT_MS);
    const closed = nextEvent(behindProxy, 'close', () => true, SLOW_EVENT_MS);
    const reopened = nextEvent(behindProxy, 'open', () => true, SLOW_EVENT_MS);

    // The healthy connection gets its ping and stays open; the frozen one is given up.
    await pinged;
    const { code, reason } = await closed;
    assert.equal(code, CloseCode.HEARTBEAT_TIMEOUT);
    assert.match(reason, /nothing from the server for \d+ ms/);
    await rejected;
    assert.equal(direct.state, 'open');

    // Sent while reconnecting: queued, and delivered over the new connection.
    const heard = nextEvent(listener, 'channel:frozen');
    behindProxy.send('frozen', { after: 'reconnect' });
    await reopened;
    assert.equal(proxy.connections, 2);
    assert.deepEqual((await heard).params, { after: 'reconnect' });
    assert.equal((await behindProxy.request('site/test', { ok: 1 })).echo.ok, 1);
  });

  it('a request over the limit rejects at once: by the client, else by the server', async () => {
    const c = client({ requestTimeout: 0 });
    await nextEvent(c, 'message', isHello);
    const big = { s: 'x'.repeat(70_000) };
    await assert.rejects(c.request('site/test', big), { code: 'too_large', route: 'site/test' });

    // A client that lets it through: the server's answer names the requestUid.
    c.maxFrameBytes = Infinity;
    await assert.rejects(c.request('site/test', big), (error) => {
      assert.equal(error.code, 'too_large');
      assert.equal(error.route, 'site/test');
      assert.match(
        error.message,
        /action `site\/test`: frame of \d+ bytes exceeds the limit of 65536/,
      );
      return true;
    });
  });

  it('a publish over the limit is refused; the server names its channel', async () => {
    const c = client();
    await nextEvent(c, 'message', isHello);
    const refused = nextEvent(c, 'error');
    assert.equal(c.send('room', 'x'.repeat(70_000)), false);
    assert.deepEqual([(await refused).code, (await refused).channel], ['too_large', 'room']);

    c.maxFrameBytes = Infinity;
    const answered = nextEvent(c, 'error');
    assert.equal(c.send('room', 'x'.repeat(70_000)), true);
    const error = await answered;
    assert.equal(error.code, 'too_large');
    assert.equal(error.channel, 'room');
    assert.equal(c.isOpened(), true);
  });
});
