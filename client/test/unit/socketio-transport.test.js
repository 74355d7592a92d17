// SocketIoTransport against a fake `io`: jii frames out become the server's Socket.IO
// events, and its events and acks come back as jii frames.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SocketIoTransport } from '../../client.js';

/** A fake socket.io-client socket: records emits, lets the test fire events. */
class FakeSocket {
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.handlers = new Map();
    this.any = [];
    this.emitted = [];
    this.closed = false;
  }
  on(event, handler) {
    this.handlers.set(event, handler);
  }
  onAny(handler) {
    this.any.push(handler);
  }
  emit(...args) {
    this.emitted.push(args);
  }
  close() {
    this.closed = true;
  }
  fire(event, ...args) {
    this.handlers.get(event)?.(...args);
    for (const handler of this.any) handler(event, ...args);
  }
}

function setup(options = {}) {
  const sockets = [];
  const io = (url, opts) => {
    const socket = new FakeSocket(url, opts);
    sockets.push(socket);
    return socket;
  };
  const transport = new SocketIoTransport({ io, ...options });
  const events = [];
  for (const name of ['open', 'message', 'close']) {
    transport.on(name, (value) => events.push([name, value]));
  }
  return { transport, sockets, events };
}

describe('SocketIoTransport', () => {
  it('connects to <prefix>/socket.io with its own reconnection off', () => {
    const { transport, sockets } = setup({ transports: ['websocket'], auth: { token: 't' } });
    transport.open('https://example.com/comet/');
    const [socket] = sockets;
    assert.equal(socket.url, 'https://example.com');
    assert.equal(socket.options.path, '/comet/socket.io');
    assert.equal(socket.options.reconnection, false);
    assert.deepEqual(socket.options.transports, ['websocket']);
    assert.deepEqual(socket.options.auth, { token: 't' });
    assert.equal(transport.url('ws://h:1/x').origin, 'http://h:1');
  });

  it('turns frames into events and acks into frames', () => {
    const { transport, sockets, events } = setup();
    transport.open('http://h/comet');
    const [socket] = sockets;
    socket.fire('connect');
    transport.send('subscribe news');
    transport.send('subscribe vip {"token":"x"}');
    transport.send('unsubscribe old');
    transport.send('channel news {"a":1}');
    transport.send('action site/test {"requestUid":"7","a":1}');
    transport.send('hello {"heartbeat":true}');
    transport.send('auth tok');
    assert.deepEqual(
      socket.emitted.map((args) => args.filter((a) => typeof a !== 'function')),
      [
        ['subscribe', 'news'],
        ['subscribe', 'vip', { token: 'x' }],
        ['unsubscribe', 'old'],
        ['channel', 'news', '{"a":1}'],
        ['action', 'site/test', { a: 1 }],
        ['hello', { heartbeat: true }],
        ['auth', 'tok'],
      ],
    );
    const ack = (i) => socket.emitted[i].at(-1);
    ack(0)({ channel: 'news' });
    ack(1)({ error: { code: 'forbidden', message: 'no', channel: 'vip' } });
    ack(2)({ channel: 'old' });
    ack(4)({ echo: { a: 1 } });
    ack(6)({ user: '42' });
    socket.fire('channel', 'news', { a: 1 });
    socket.fire('channel', 'news', 'text');
    socket.fire('comet:hello', { heartbeat: 25000 });
    socket.fire('comet:ping');
    socket.fire('comet:error', { code: 'bad_frame', message: 'm' });
    assert.deepEqual(
      events.map(([name, value]) => (name === 'message' ? value : name)),
      [
        'open',
        'subscribed news',
        'error {"code":"forbidden","message":"no","channel":"vip"}',
        'unsubscribed old',
        'action {"echo":{"a":1},"requestUid":"7"}',
        'authenticated {"user":"42"}',
        'channel news {"a":1}',
        'channel news text',
        'hello {"heartbeat":25000}',
        'ping',
        'error {"code":"bad_frame","message":"m"}',
      ],
    );
  });

  it('carries positions: a recover subscribe answered with its position, offsets on messages', () => {
    const { transport, sockets, events } = setup();
    transport.open('http://h/comet');
    const [socket] = sockets;
    socket.fire('connect');
    transport.send('subscribe feed {"recover":true,"offset":3,"epoch":"e1"}');
    assert.deepEqual(socket.emitted[0].slice(0, 3), [
      'subscribe',
      'feed',
      { recover: true, offset: 3, epoch: 'e1' },
    ]);
    socket.fire('channel', 'feed', { n: 4 }, 4);
    socket.emitted[0].at(-1)({ channel: 'feed', offset: 4, epoch: 'e1', recovered: true });
    socket.fire('channel', 'feed', 'five', 5);
    assert.deepEqual(
      events.map(([name, value]) => (name === 'message' ? value : name)),
      [
        'open',
        'pub feed 4 {"n":4}',
        'subscribed feed {"offset":4,"epoch":"e1","recovered":true}',
        'pub feed 5 five',
      ],
    );
  });

  it('carries presence: joinLeave subscribes, presence requests on acks, join and leave events', () => {
    const { transport, sockets, events } = setup();
    transport.open('http://h/comet');
    const [socket] = sockets;
    socket.fire('connect');
    transport.send('subscribe room {"joinLeave":true}');
    transport.send('presence room {"requestUid":"u1"}');
    transport.send('presence_stats room {"requestUid":"u2"}');
    transport.send('presence other {"requestUid":"u3"}');
    assert.deepEqual(
      socket.emitted.map((args) => args.filter((a) => typeof a !== 'function')),
      [
        ['subscribe', 'room', { joinLeave: true }],
        ['presence', 'room'],
        ['presence_stats', 'room'],
        ['presence', 'other'],
      ],
    );
    const ack = (i) => socket.emitted[i].at(-1);
    const ann = { connection: 'ab12.7', user: '42', info: { name: 'Ann' } };
    const anon = { connection: 'cd34.1', user: null, info: null };
    ack(0)({ channel: 'room' });
    ack(1)({ clients: { 'ab12.7': ann } });
    ack(2)({ clients: 2, users: 1 });
    ack(3)({ error: { code: 'not_found', message: 'no presence' } });
    socket.fire('join', 'room', [ann, anon]);
    socket.fire('leave', 'room', [anon]);
    socket.fire('join', 'room', 'not entries');
    assert.deepEqual(
      events.map(([name, value]) => (name === 'message' ? value : name)),
      [
        'open',
        'subscribed room',
        `action {"clients":{"ab12.7":${JSON.stringify(ann)}},"requestUid":"u1"}`,
        'action {"clients":2,"users":1,"requestUid":"u2"}',
        'action {"error":{"code":"not_found","message":"no presence"},"requestUid":"u3"}',
        `join room ${JSON.stringify([ann, anon])}`,
        `leave room ${JSON.stringify([anon])}`,
      ],
    );
  });

  it('reads history on an ack: the options go as an object, the answer comes back as an action', () => {
    const { transport, sockets, events } = setup();
    transport.open('http://h/comet');
    const [socket] = sockets;
    socket.fire('connect');
    transport.send('history feed {"requestUid":"h1","since":3,"limit":2}');
    transport.send('history feed {"requestUid":"h2"}');
    assert.deepEqual(
      socket.emitted.map((args) => args.filter((a) => typeof a !== 'function')),
      [
        ['history', 'feed', { since: 3, limit: 2 }],
        ['history', 'feed', {}],
      ],
    );
    socket.emitted[0].at(-1)({
      publications: [{ offset: 4, payload: 'a' }],
      offset: 5,
      epoch: 'e1',
    });
    socket.emitted[1].at(-1)({ error: { code: 'not_found', message: 'no history' } });
    assert.deepEqual(
      events.map(([name, value]) => (name === 'message' ? value : name)),
      [
        'open',
        'action {"publications":[{"offset":4,"payload":"a"}],"offset":5,"epoch":"e1","requestUid":"h1"}',
        'action {"error":{"code":"not_found","message":"no history"},"requestUid":"h2"}',
      ],
    );
  });

  it('closes with the code the server gave, or 1006', () => {
    const { transport, sockets, events } = setup();
    transport.open('http://h/comet');
    sockets[0].fire('comet:close', { code: 4001, reason: 'Slow consumer' });
    sockets[0].fire('disconnect', 'transport close');
    transport.open('http://h/comet');
    sockets[1].fire('disconnect', 'transport close');
    transport.open('http://h/comet');
    sockets[2].fire(
      'connect_error',
      Object.assign(new Error('Unauthorized'), { data: { code: 4101 } }),
    );
    assert.deepEqual(
      events.filter(([name]) => name === 'close').map(([, value]) => [value.code, value.reason]),
      [
        [4001, 'Slow consumer'],
        [1006, 'transport close'],
        [4101, 'Unauthorized'],
      ],
    );
  });

  it('says nothing more about a connection it closed', () => {
    const { transport, sockets, events } = setup();
    transport.open('http://h/comet');
    transport.close();
    assert.equal(sockets[0].closed, true);
    sockets[0].fire('channel', 'x', 1);
    sockets[0].fire('disconnect', 'io client disconnect');
    assert.deepEqual(events, []);
  });

  it('needs io', () => {
    assert.throws(() => new SocketIoTransport(), TypeError);
  });
});
