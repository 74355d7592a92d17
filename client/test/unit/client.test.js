// The Client against a fake transport: connection state, channels, sending, events.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AutoReconnect, Client, CometError } from '../../client.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

const URL = 'http://comet.test/comet';

/** A client on a fake transport, without AutoReconnect or heartbeats unless asked. */
function setup(options = {}) {
  const transport = new FakeTransport();
  const client = new Client({
    serverUrl: URL,
    transport,
    plugins: { autoReconnect: null },
    heartbeat: false, // the hello and its watchdog have tests of their own (heartbeat.test.js)
    ...options,
  });
  return { client, transport };
}

describe('opening and closing', () => {
  it('opens in the constructor, and is open once the transport is', () => {
    const { client, transport } = setup();
    const events = record(client, 'open', 'close');
    assert.deepEqual(transport.opened, [URL]);
    assert.equal(client.state, 'connecting');
    assert.equal(client.isOpened(), false);

    transport.accept();
    assert.equal(client.isOpened(), true);
    assert.equal(client.state, 'open');
    assert.deepEqual(events, [['open', { url: URL }]]);
  });

  it('waits for open() when autoOpen is false', () => {
    const { client, transport } = setup({ autoOpen: false });
    assert.deepEqual(transport.opened, []);
    assert.equal(client.state, 'closed');
    client.open();
    client.open(); // already connecting: nothing more
    assert.deepEqual(transport.opened, [URL]);
  });

  it('close() closes the transport, says `close` and is remembered', () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'close', 'forceClose');
    client.close();
    assert.equal(transport.closeCalls, 1);
    assert.equal(client.isOpened(), false);
    assert.equal(client.isForceClosed(), true);
    assert.deepEqual(events, [
      ['close', { code: 1000, reason: 'closed by client', wasClean: true }],
      ['forceClose', undefined],
    ]);

    client.open();
    assert.equal(client.isForceClosed(), false);
    assert.equal(transport.opened.length, 2);
  });

  it('a connection lost says `close` with its code; a failed attempt says nothing', () => {
    const { client, transport } = setup();
    const events = record(client, 'close');
    transport.drop(1006);
    assert.deepEqual(events, [], 'never opened, so never closed');
    assert.equal(client.state, 'closed');

    client.open();
    transport.accept();
    transport.drop(1001, 'Server shutting down');
    assert.deepEqual(events, [
      ['close', { code: 1001, reason: 'Server shutting down', wasClean: true }],
    ]);
    assert.equal(client.isForceClosed(), false);
  });

  it('ignores a transport that reports close after close()', () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'close');
    client.close();
    transport.drop(1000);
    assert.equal(events.length, 1);
  });
});

describe('server URL', () => {
  it('picks {workerIndex} among workersCount at each open', () => {
    const seen = new Set();
    const { client, transport } = setup({
      serverUrl: 'http://w{workerIndex}.comet.test/comet',
      workersCount: 3,
      autoOpen: false,
    });
    for (let i = 0; i < 200; i += 1) {
      client.open();
      transport.drop();
    }
    for (const url of transport.opened) seen.add(url);
    assert.deepEqual(
      [...seen].sort(),
      [0, 1, 2].map((i) => `http://w${i}.comet.test/comet`),
    );
    assert.equal(client.getServerUrl(), 'http://w{workerIndex}.comet.test/comet');
  });

  it('takes worker 0 without workersCount', () => {
    const { transport } = setup({ serverUrl: 'http://w{workerIndex}.comet.test/comet' });
    assert.deepEqual(transport.opened, ['http://w0.comet.test/comet']);
  });

  it('resolves a relative URL against the page location', (t) => {
    t.after(() => delete globalThis.location);
    globalThis.location = { href: 'https://chat.test/room/1' };
    const { transport } = setup({ serverUrl: '/comet' });
    assert.deepEqual(transport.opened, ['https://chat.test/comet']);
  });

  it('refuses a URL it cannot resolve, with a clear error', () => {
    assert.throws(
      () => setup({ serverUrl: '/comet' }),
      /serverUrl "\/comet" is not an absolute URL/,
    );
  });
});

describe('channels', () => {
  it('subscribes now when open, and resolves on the server ack', async () => {
    const { client, transport } = setup();
    transport.accept();
    let acked = false;
    const subscribed = client.subscribe('chat').then(() => (acked = true));
    assert.deepEqual(transport.take(), ['subscribe chat']);
    await Promise.resolve();
    assert.equal(acked, false);
    transport.receive('subscribed chat');
    await subscribed;
    assert.equal(acked, true);
    await client.subscribe('chat'); // already subscribed: resolved at once, nothing sent
    assert.deepEqual(transport.take(), []);
  });

  it('subscribes on open what was asked while connecting', async () => {
    const { client, transport } = setup();
    const subscribed = client.subscribe('a');
    client.subscribe('b');
    client.subscribe('a');
    transport.accept();
    assert.deepEqual(transport.take(), ['subscribe a', 'subscribe b']);
    transport.receive('subscribed a');
    await subscribed;
  });

  it('renews subscriptions after a reconnection', () => {
    const { client, transport } = setup();
    transport.accept();
    client.subscribe('a');
    client.subscribe('b');
    client.unsubscribe('b');
    transport.take();
    transport.drop();
    client.open();
    transport.accept();
    assert.deepEqual(transport.take(), ['subscribe a']);
  });

  it('forgets them after a reconnection when autoSubscribeOnReconnect is off', async () => {
    const { client, transport } = setup({ autoSubscribeOnReconnect: false });
    const early = client.subscribe('early');
    transport.accept();
    const late = client.subscribe('late');
    transport.take();
    transport.drop();
    await assert.rejects(early, { code: 'disconnected' });
    await assert.rejects(late, { code: 'disconnected' });
    const whileClosed = client.subscribe('while-closed');
    client.open();
    transport.accept();
    assert.deepEqual(transport.take(), ['subscribe while-closed']);
    transport.receive('subscribed while-closed');
    await whileClosed;
    // Forgotten channels can be subscribed again.
    client.subscribe('early');
    assert.deepEqual(transport.take(), ['subscribe early']);
  });

  it('unsubscribes, resolving on the ack; at once when not subscribed or not open', async () => {
    const { client, transport } = setup();
    transport.accept();
    client.subscribe('a');
    transport.receive('subscribed a');
    const left = client.unsubscribe('a');
    assert.deepEqual(transport.take(), ['subscribe a', 'unsubscribe a']);
    transport.receive('unsubscribed a');
    await left;
    await client.unsubscribe('never');
    client.subscribe('b');
    transport.take();
    transport.drop();
    await client.unsubscribe('b');
    client.open();
    transport.accept();
    assert.deepEqual(transport.take(), [], 'b is gone for good');
  });

  it('an unsubscribe waiting for its ack resolves when the connection ends', async () => {
    const { client, transport } = setup();
    transport.accept();
    client.subscribe('a');
    const left = client.unsubscribe('a');
    transport.drop();
    await left;
  });

  it('unsubscribing before the ack cancels the subscribe', async () => {
    const { client, transport } = setup();
    transport.accept();
    const subscribed = client.subscribe('a');
    client.unsubscribe('a');
    await assert.rejects(subscribed, { name: 'CometError', code: 'cancelled', channel: 'a' });
  });

  it('a refused subscription rejects, says `error`, and is not renewed', async () => {
    const { client, transport } = setup();
    transport.accept();
    const errors = record(client, 'error');
    const subscribed = client.subscribe('busy');
    transport.receive(
      'error {"code":"too_many_channels","message":"at most 1 channels per connection","channel":"busy"}',
    );
    await assert.rejects(subscribed, { code: 'too_many_channels', channel: 'busy' });
    assert.equal(errors.length, 1);
    assert.ok(errors[0][1] instanceof CometError);
    transport.take();
    transport.drop();
    client.open();
    transport.accept();
    assert.deepEqual(transport.take(), []);
  });

  it('a failed publish on a channel being subscribed does not cancel the subscription', async () => {
    const { client, transport } = setup();
    transport.accept();
    const subscribed = client.subscribe('news');
    transport.receive('error {"code":"unavailable","message":"hub down","channel":"news"}');
    transport.receive('subscribed news');
    await subscribed;
  });

  it('on("channel:x") subscribes; the last off unsubscribes', () => {
    const { client, transport } = setup();
    transport.accept();
    const first = () => {};
    const second = () => {};
    client.on('channel:x', first);
    client.on('channel:x', second);
    assert.deepEqual(transport.take(), ['subscribe x']);
    assert.equal(client.hasChannelHandlers('x'), true);
    client.off('channel:x', first);
    assert.deepEqual(transport.take(), []);
    client.off('channel:x', second);
    assert.deepEqual(transport.take(), ['unsubscribe x']);
    assert.equal(client.hasChannelHandlers('x'), false);

    client.once('channel:y', () => {});
    transport.receive('channel y {}');
    assert.deepEqual(transport.take(), ['subscribe y', 'unsubscribe y']);
  });

  it('delivers channel messages to `channel:<name>` then `channel`, then `message`', () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'channel:chat', 'channel', 'message');
    transport.receive('channel chat {"text":"hi there"}');
    const json = {
      channel: 'chat',
      params: { text: 'hi there' },
      message: null,
      payload: '{"text":"hi there"}',
    };
    assert.deepEqual(events, [
      ['channel:chat', json],
      ['channel', json],
      ['message', { message: 'channel chat {"text":"hi there"}' }],
    ]);
  });

  it('gives text payloads (and JSON that is not an object or array) as `message`', () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'channel');
    transport.receive('channel news hello  world ');
    transport.receive('channel news 42');
    transport.receive('channel news {broken');
    transport.receive('channel news [1,2]');
    assert.deepEqual(
      events.map(([, event]) => [event.params, event.message]),
      [
        [null, 'hello  world '],
        [null, '42'],
        [null, '{broken'],
        [[1, 2], null],
      ],
    );
  });

  it('refuses channel names the server would refuse', () => {
    const { client } = setup();
    assert.throws(() => client.subscribe(''), TypeError);
    assert.throws(() => client.subscribe('two words'), TypeError);
    assert.throws(() => client.send('a\tb', 'x'), TypeError);
    assert.throws(() => client.request('site test'), TypeError);
  });
});

describe('sending and queueing', () => {
  it('publishes strings as they are and anything else as JSON', () => {
    const { client, transport } = setup();
    transport.accept();
    assert.equal(client.send('chat', 'plain text'), true);
    client.send('chat', { a: [1, 'two'] });
    client.send('chat', 7);
    assert.deepEqual(transport.take(), [
      'channel chat plain text',
      'channel chat {"a":[1,"two"]}',
      'channel chat 7',
    ]);
  });

  it('queues frames while connecting and flushes them in order on open, after subscriptions', async () => {
    const { client, transport } = setup();
    client.send('chat', 'one');
    client.subscribe('chat');
    client.send('chat', 'two');
    const answer = client.request('site/test', { n: 1 });
    assert.deepEqual(transport.sent, []);
    transport.accept();
    const sent = transport.take();
    assert.deepEqual(sent.slice(0, 3), ['subscribe chat', 'channel chat one', 'channel chat two']);
    assert.match(sent[3], /^action site\/test \{"requestUid":"[^"]+","n":1\}$/);
    const { requestUid } = JSON.parse(sent[3].split(' ')[2]);
    transport.receive(`action {"requestUid":"${requestUid}"}`);
    await answer;
  });

  it('keeps the queue across failed attempts', () => {
    const { client, transport } = setup();
    client.send('chat', 'kept');
    transport.drop();
    client.open();
    transport.drop();
    client.open();
    transport.accept();
    assert.deepEqual(transport.take(), ['channel chat kept']);
  });

  it('bounds the queue: a message past it is dropped and said, a request rejected', async () => {
    const { client, transport } = setup({ maxQueuedFrames: 2 });
    const errors = record(client, 'error');
    assert.equal(client.send('chat', '1'), true);
    assert.equal(client.send('chat', '2'), true);
    assert.equal(client.send('chat', '3'), false);
    assert.equal(errors.length, 1);
    assert.equal(errors[0][1].code, 'queue_full');
    await assert.rejects(client.request('site/test'), { code: 'queue_full', route: 'site/test' });
    transport.accept();
    assert.deepEqual(transport.take(), ['channel chat 1', 'channel chat 2']);
  });

  it('lets beforeSend change every frame, queued or not', () => {
    const { client, transport } = setup();
    client.on('beforeSend', (event) => {
      event.message = `${event.message}!`;
    });
    client.send('chat', 'queued');
    transport.accept();
    client.send('chat', 'direct');
    assert.deepEqual(transport.take(), ['channel chat queued!', 'channel chat direct!']);
  });
});

describe('plugins', () => {
  it('installs AutoReconnect by default', () => {
    const client = new Client({ serverUrl: URL, transport: new FakeTransport(), autoOpen: false });
    assert.ok(client.plugins.autoReconnect instanceof AutoReconnect);
    assert.equal(client.plugins.autoReconnect.client, client);
  });

  it('attaches given plugins, instances or classes, beside the default', () => {
    const attached = [];
    class Counter {
      attach(client) {
        attached.push(['class', client]);
      }
    }
    const instance = { attach: (client) => attached.push(['instance', client]) };
    const client = new Client({
      serverUrl: URL,
      transport: new FakeTransport(),
      autoOpen: false,
      plugins: { counter: Counter, instance },
    });
    assert.deepEqual(Object.keys(client.plugins), ['autoReconnect', 'counter', 'instance']);
    assert.deepEqual(attached, [
      ['class', client],
      ['instance', client],
    ]);
    assert.ok(client.plugins.counter instanceof Counter);
  });

  it('removes the default with null or false', () => {
    for (const off of [null, false]) {
      const client = new Client({
        serverUrl: URL,
        transport: new FakeTransport(),
        autoOpen: false,
        plugins: { autoReconnect: off },
      });
      assert.deepEqual(client.plugins, {});
    }
  });
});

describe('events', () => {
  it('a throwing handler does not stop the others nor the client', (t) => {
    const reported = [];
    globalThis.reportError = (error) => reported.push(error);
    t.after(() => delete globalThis.reportError);
    const { client, transport } = setup();
    const events = record(client, 'open');
    client.on('open', () => {
      throw new Error('app bug');
    });
    client.on('open', () => events.push(['second']));
    transport.accept();
    assert.deepEqual(
      reported.map((error) => error.message),
      ['app bug'],
    );
    assert.deepEqual(
      events.map(([name]) => name),
      ['open', 'second'],
    );
    assert.equal(client.isOpened(), true);
  });

  it('says `error` for frames the server refused, with their code', () => {
    const { client, transport } = setup();
    transport.accept();
    const errors = record(client, 'error');
    transport.receive('error {"code":"bad_frame","message":"unknown frame keyword `x`"}');
    const [[, error]] = errors;
    assert.ok(error instanceof CometError);
    assert.equal(error.code, 'bad_frame');
    assert.equal(error.message, 'unknown frame keyword `x`');
    assert.equal(error.channel, undefined);
  });

  it('ignores frames it does not know, and broken answers, but still says `message`', () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'message', 'error', 'channel');
    transport.receive('welcome {"v":2}');
    transport.receive('action not json');
    transport.receive('error');
    transport.receive('channel only-a-name');
    assert.deepEqual(
      events.map(([name]) => name),
      ['message', 'message', 'message', 'message'],
    );
  });
});
