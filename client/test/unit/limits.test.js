// What the client refuses at once instead of sending: frames over the server's limit,
// requests and publishes after close(), params that are not an object; and explicit
// subscriptions that outlive channel handlers.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Client, CometError } from '../../client.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

function setup(options = {}) {
  const transport = new FakeTransport();
  const client = new Client({
    serverUrl: 'http://comet.test/comet',
    transport,
    plugins: { autoReconnect: null },
    ...options,
  });
  return { client, transport };
}

describe('frames over the server limit', () => {
  it('rejects a request at once with too_large (default limit 64 KiB before hello)', async () => {
    const { client, transport } = setup();
    transport.accept();
    transport.take();
    const big = client.request('site/test', { s: 'x'.repeat(70_000) });
    await assert.rejects(big, (error) => {
      assert.ok(error instanceof CometError);
      assert.equal(error.code, 'too_large');
      assert.equal(error.route, 'site/test');
      assert.match(error.message, /over the server's limit of 65536/);
      return true;
    });
    assert.deepEqual(transport.take(), [], 'nothing was sent');
    // Just under the limit goes out.
    const overhead = 'action site/test {"requestUid":"xxxxxxxx-2","s":""}'.length;
    client.request('site/test', { s: 'x'.repeat(65_536 - overhead) }).catch(() => {});
    assert.equal(transport.take().length, 1);
  });

  it('send() returns false and says `error` with too_large and the channel', () => {
    const { client, transport } = setup();
    transport.accept();
    transport.take();
    const errors = record(client, 'error');
    assert.equal(client.send('room', 'é'.repeat(40_000)), false, '80,000 bytes in UTF-8');
    assert.deepEqual(transport.take(), []);
    assert.equal(errors.length, 1);
    assert.equal(errors[0][1].code, 'too_large');
    assert.equal(errors[0][1].channel, 'room');
    assert.equal(client.send('room', 'é'.repeat(30_000)), true);
  });

  it('follows the limit the server said in its hello, and refuses queued frames too', async () => {
    const { client, transport } = setup();
    transport.accept();
    transport.receive('hello {"heartbeat":25000,"max_frame_bytes":100,"max_pending_actions":64}');
    assert.equal(client.send('room', 'x'.repeat(100)), false);
    transport.drop();
    assert.equal(client.send('room', 'x'.repeat(100)), false, 'while not connected too');
    await assert.rejects(client.request('a/b', { s: 'x'.repeat(100) }), { code: 'too_large' });
    assert.equal(client.send('room', 'small'), true);
  });
});

describe('after close()', () => {
  it('a request rejects at once with `closed`, even without a timeout', async () => {
    const { client, transport } = setup({ requestTimeout: 0 });
    transport.accept();
    client.close();
    await assert.rejects(client.request('site/test'), { code: 'closed', route: 'site/test' });
    client.open();
    transport.accept();
    const answer = client.request('site/test');
    transport.answerLast({ ok: true });
    assert.equal((await answer).ok, true, 'open() takes requests again');
  });

  it('send() returns false and says `error` with `closed`; subscriptions wait for open()', () => {
    const { client, transport } = setup();
    transport.accept();
    transport.take();
    client.close();
    const errors = record(client, 'error');
    assert.equal(client.send('room', 'hi'), false);
    assert.equal(errors[0][1].code, 'closed');
    assert.equal(errors[0][1].channel, 'room');
    client.subscribe('room');
    client.open();
    transport.accept();
    assert.deepEqual(transport.take().slice(1), ['subscribe room']);
  });

  it('before the first open() (autoOpen: false) frames still queue, as in jii', () => {
    const { client, transport } = setup({ autoOpen: false });
    assert.equal(client.send('room', 'early'), true);
    client.open();
    transport.accept();
    assert.deepEqual(transport.take().slice(1), ['channel room early']);
  });
});

describe('request params', () => {
  it('must be a JSON object: arrays and other values throw a TypeError', () => {
    const { client, transport } = setup();
    transport.accept();
    transport.take();
    for (const bad of [[1, 2], 'text', 7, true]) {
      assert.throws(() => client.request('site/test', bad), TypeError, JSON.stringify(bad));
    }
    assert.deepEqual(transport.take(), [], 'nothing was sent');
    client.request('site/test', null).catch(() => {});
    client.request('site/test').catch(() => {});
    assert.deepEqual(
      transport.take().map((frame) => Object.keys(JSON.parse(frame.split(' ')[2]))),
      [['requestUid'], ['requestUid']],
    );
  });
});

describe('explicit subscriptions and channel handlers', () => {
  it("removing the last handler keeps a subscribe()'d channel", () => {
    const { client, transport } = setup({ heartbeat: false });
    transport.accept();
    client.subscribe('x');
    const handler = () => {};
    client.on('channel:x', handler);
    assert.deepEqual(transport.take(), ['subscribe x']);
    client.off('channel:x', handler);
    client.once('channel:x', () => {});
    transport.receive('channel x {}'); // the once handler fires and goes
    assert.equal(client.hasChannelHandlers('x'), false);
    assert.deepEqual(transport.take(), [], 'still subscribed');

    client.unsubscribe('x');
    assert.deepEqual(transport.take(), ['unsubscribe x']);
  });

  it('unsubscribe() keeps a channel that still has handlers, until the last goes', () => {
    const { client, transport } = setup({ heartbeat: false });
    transport.accept();
    const handler = () => {};
    client.on('channel:y', handler);
    client.subscribe('y');
    assert.deepEqual(transport.take(), ['subscribe y']);
    client.unsubscribe('y');
    assert.deepEqual(transport.take(), []);
    client.off('channel:y', handler);
    assert.deepEqual(transport.take(), ['unsubscribe y']);
  });
});
