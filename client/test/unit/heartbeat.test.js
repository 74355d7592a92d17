// The heartbeat extension against a fake transport and fake timers: the client asks for
// pings, and a connection on which nothing arrives for the interval plus the grace counts
// as dead (a frozen network path never says it closed).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AutoReconnect, Client, CloseCode } from '../../client.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

const HELLO = 'hello {"heartbeat":25000,"max_frame_bytes":65536,"max_pending_actions":64}';

/** A client with AutoReconnect (retrying after 1 s) on fake timers and a fake clock. */
function setup(t, options = {}) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const transport = new FakeTransport();
  const client = new Client({
    serverUrl: 'http://comet.test/comet',
    transport,
    plugins: {
      autoReconnect: new AutoReconnect({ minRetryInterval: 1000, random: () => 0 }),
    },
    ...options,
  });
  return { client, transport };
}

describe('heartbeat', () => {
  it('says hello first on every connection, before subscriptions and queued frames', (t) => {
    const { client, transport } = setup(t);
    client.subscribe('room');
    client.send('room', 'queued');
    transport.accept();
    assert.deepEqual(transport.take(), [
      'hello {"heartbeat":true}',
      'subscribe room',
      'channel room queued',
    ]);
    transport.drop();
    t.mock.timers.tick(1000);
    transport.accept();
    assert.equal(transport.take()[0], 'hello {"heartbeat":true}');
  });

  it('keeps what the server answered: its heartbeat and limits', (t) => {
    const { client, transport } = setup(t);
    assert.equal(client.serverLimits, null);
    assert.equal(client.maxFrameBytes, 65536);
    transport.accept();
    transport.receive('hello {"heartbeat":1000,"max_frame_bytes":1000,"max_pending_actions":8}');
    assert.deepEqual(client.serverLimits, {
      heartbeat: 1000,
      maxFrameBytes: 1000,
      maxPendingActions: 8,
    });
    assert.equal(client.maxFrameBytes, 1000);
  });

  it('closes and reconnects when nothing arrived for heartbeat + grace (max(5 s, half))', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'close', 'reconnecting', 'open');
    transport.accept();
    transport.receive(HELLO); // heartbeat 25 s: grace 12.5 s, dead after 37.5 s of silence

    // Pings keep it alive, however long it lasts.
    for (let i = 0; i < 10; i += 1) {
      t.mock.timers.tick(25_000);
      transport.receive('ping');
    }
    assert.equal(client.state, 'open');

    // Then the path freezes: nothing more arrives, not even the answer.
    const sent = client.request('slow/thing', {}, { timeout: 60_000 });
    transport.take();
    t.mock.timers.tick(37_499);
    assert.equal(client.state, 'open');
    t.mock.timers.tick(1);
    assert.equal(client.state, 'closed');
    assert.equal(transport.closeCalls, 1, 'the silent socket is dropped');
    await assert.rejects(sent, { code: 'disconnected', route: 'slow/thing' });
    assert.equal(events[1][0], 'close');
    assert.equal(events[1][1].code, CloseCode.HEARTBEAT_TIMEOUT);
    assert.equal(events[1][1].wasClean, false);
    assert.match(events[1][1].reason, /nothing from the server for 37500 ms/);
    assert.equal(events[2][0], 'reconnecting');

    // Sent while reconnecting: queued, and out on the next connection after its hello.
    assert.equal(client.send('room', 'later'), true);
    t.mock.timers.tick(1000);
    assert.equal(transport.opened.length, 2);
    transport.accept();
    assert.deepEqual(transport.take(), ['hello {"heartbeat":true}', 'channel room later']);
  });

  it('counts any frame as a sign of life, not only pings', (t) => {
    const { client, transport } = setup(t, { heartbeatGrace: 1000 });
    transport.accept();
    transport.receive('hello {"heartbeat":2000}');
    for (let i = 0; i < 10; i += 1) {
      t.mock.timers.tick(2900);
      transport.receive('channel x busy');
    }
    assert.equal(client.state, 'open');
    t.mock.timers.tick(3000);
    assert.equal(client.state, 'closed');
  });

  it('watches nothing without the server saying its interval, nor after close()', (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    t.mock.timers.tick(10 * 60_000); // a server without the extension never answers hello
    assert.equal(client.state, 'open');

    transport.receive(HELLO);
    client.close();
    t.mock.timers.tick(10 * 60_000);
    assert.equal(transport.opened.length, 1);
    assert.equal(transport.closeCalls, 1);
  });

  it('heartbeat: false sends no hello and never times out', (t) => {
    const { client, transport } = setup(t, { heartbeat: false });
    transport.accept();
    assert.deepEqual(transport.take(), []);
    transport.receive(HELLO);
    t.mock.timers.tick(10 * 60_000);
    assert.equal(client.state, 'open');
  });
});
