// Drives the stock npm `socket.io-client` (4.8) against comet's Socket.IO transport:
// long-polling only, WebSocket only, and long-polling upgraded to WebSocket; then a
// Socket.IO client, a raw WebSocket client and a SockJS client in one channel.
//
// The server is `examples/socketio-testsrv` (comet at /comet), started here on a free
// port; its path comes from SOCKETIO_TESTSRV (scripts/test builds it and sets it).
// Run: `npm ci && npm test`.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { io } = require('socket.io-client');
const WebSocket = require('ws');
const SockJS = require('sockjs-client');

const TIMEOUT_MS = 10000;

let server;
let base;

before(async () => {
  const bin = process.env.SOCKETIO_TESTSRV;
  if (!bin) {
    throw new Error('set SOCKETIO_TESTSRV to the socketio-testsrv binary (scripts/test does)');
  }
  // A 1 s heartbeat, so that the pings and pongs of long-polling run during the tests.
  server = spawn(bin, ['--bind', '127.0.0.1:0', '--heartbeat-ms', '1000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('socketio-testsrv did not start')), 30000);
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const found = out.match(/listening on (http:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`socketio-testsrv exited with ${code}`)));
  });
});

after(() => {
  if (server) server.kill();
});

function within(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/// A Socket.IO client of comet whose `channel` events can be awaited.
function connect(transports, upgrade = true, extra = {}) {
  const socket = io(base, {
    path: '/comet/socket.io',
    transports,
    upgrade,
    reconnection: false,
    forceNew: true,
    ...extra,
  });
  socket.inbox = [];
  socket.waiters = [];
  socket.on('channel', (channel, payload) => {
    socket.inbox.push({ channel, payload });
    for (const wake of socket.waiters.splice(0)) wake();
  });
  return socket;
}

/// The next message of `channel` that `socket` receives, matching `pred`.
async function message(socket, channel, pred = () => true) {
  const find = () => {
    const at = socket.inbox.findIndex((m) => m.channel === channel && pred(m.payload));
    return at < 0 ? undefined : socket.inbox.splice(at, 1)[0];
  };
  return within(
    (async () => {
      for (;;) {
        const found = find();
        if (found) return found.payload;
        await new Promise((resolve) => socket.waiters.push(resolve));
      }
    })(),
    `a message on ${channel}`,
  );
}

/// Frames received by a raw WebSocket or SockJS client, awaitable.
class Inbox {
  constructor() {
    this.frames = [];
    this.waiters = [];
  }

  push(frame) {
    this.frames.push(frame);
    for (const wake of this.waiters.splice(0)) wake();
  }

  until(frame) {
    return within(
      (async () => {
        while (!this.frames.includes(frame)) {
          await new Promise((resolve) => this.waiters.push(resolve));
        }
      })(),
      frame,
    );
  }
}

const once = (emitter, event) =>
  within(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), event);

const ask = (socket, ...args) => within(socket.emitWithAck(...args), `the ack of ${args[0]}`);

const MODES = [
  { name: 'polling only', transports: ['polling'], upgrade: false, server: 'socketio-polling' },
  { name: 'websocket only', transports: ['websocket'], upgrade: true, server: 'socketio-websocket' },
  { name: 'polling upgraded to websocket', transports: ['polling', 'websocket'], upgrade: true, server: 'socketio-polling' },
];

for (const mode of MODES) {
  test(`socket.io-client, ${mode.name}: subscribe, publish, actions, refusals`, async () => {
    const socket = connect(mode.transports, mode.upgrade);
    const upgraded = mode.transports.length > 1 ? once(socket.io, 'open').then(() => once(socket.io.engine, 'upgrade')) : null;
    try {
      await once(socket, 'connect');
      assert.equal(typeof socket.id, 'string');
      if (upgraded) {
        const [transport] = await upgraded;
        assert.equal(transport.name, 'websocket');
      }
      const channel = `sio-${mode.transports.join('-')}`;
      assert.deepEqual(await ask(socket, 'subscribe', channel), { channel });

      // Own messages come back (JSON text arrives parsed, other text as a string).
      socket.emit('channel', channel, { n: 1, text: 'héllo' });
      assert.deepEqual(await message(socket, channel), { n: 1, text: 'héllo' });
      socket.emit('channel', channel, 'plain text');
      assert.equal(await message(socket, channel), 'plain text');
      assert.deepEqual(await ask(socket, 'channel', channel, 'acked'), { channel });
      assert.equal(await message(socket, channel), 'acked');

      // Actions: the answer object, errors inside.
      assert.deepEqual(await ask(socket, 'action', 'test/echo', { a: 1 }), {
        echo: { a: 1 },
        transport: mode.server,
      });
      const missing = await ask(socket, 'action', 'no/such');
      assert.equal(missing.error.code, 'not_found');
      const badParams = await ask(socket, 'action', 'test/echo', 'not an object');
      assert.equal(badParams.error.code, 'bad_json');

      // A server-side publish reaches the socket.
      await ask(socket, 'action', 'test/publish', { channel, message: { from: 'server' }, count: 3 });
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await message(socket, channel), { from: 'server' });
      }

      // Refusals: binary attachments, bad channels, unknown events.
      const binary = await ask(socket, 'channel', channel, Buffer.from([1, 2, 3]));
      assert.equal(binary.error.code, 'bad_frame');
      assert.match(binary.error.message, /binary/);
      const badChannel = await ask(socket, 'subscribe', 'two words');
      assert.equal(badChannel.error.code, 'bad_channel');
      const cometError = once(socket, 'comet:error');
      socket.emit('no-such-event', 1);
      const [error] = await cometError;
      assert.equal(error.code, 'bad_frame');
      const tooLong = await ask(socket, 'subscribe', 'x'.repeat(300));
      assert.equal(tooLong.error.code, 'bad_channel');

      assert.deepEqual(await ask(socket, 'unsubscribe', channel), { channel });
      await ask(socket, 'action', 'test/publish', { channel, message: 'after' });
      socket.emit('channel', `${channel}-other`, 'marker');
      assert.equal(socket.inbox.length, 0);
    } finally {
      socket.close();
    }
  });
}

test('socket.io-client, polling only: the server pings, the client answers, the session lives', async () => {
  const socket = connect(['polling'], false);
  try {
    await once(socket, 'connect');
    // The server pings every second (--heartbeat-ms 1000); each `ping` is answered
    // with a `pong` POST. Three in a row keep the session alive.
    for (let i = 0; i < 3; i++) await once(socket.io.engine, 'ping');
    assert.equal(socket.connected, true);
    assert.deepEqual(await ask(socket, 'subscribe', 'still-here'), { channel: 'still-here' });
  } finally {
    socket.close();
  }
});

test('socket.io-client: a namespace other than the main one is refused', async () => {
  const socket = io(`${base}/other`, {
    path: '/comet/socket.io',
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  try {
    const [err] = await once(socket, 'connect_error');
    assert.equal(err.message, 'Invalid namespace');
  } finally {
    socket.close();
  }
});

test('socket.io-client: a message to a big channel fans out to every socket', async () => {
  const sockets = MODES.map((m) => connect(m.transports, m.upgrade));
  try {
    await Promise.all(sockets.map((s) => once(s, 'connect')));
    await Promise.all(sockets.map((s) => ask(s, 'subscribe', 'fanout')));
    for (let i = 0; i < 20; i++) sockets[i % 3].emit('channel', 'fanout', { i });
    for (const socket of sockets) {
      const seen = [];
      for (let i = 0; i < 20; i++) seen.push((await message(socket, 'fanout')).i);
      // One sender's messages arrive in its order.
      for (let from = 0; from < 3; from++) {
        const mine = seen.filter((i) => i % 3 === from);
        assert.deepEqual(mine, [...mine].sort((a, b) => a - b));
      }
    }
  } finally {
    sockets.forEach((s) => s.close());
  }
});

test('Socket.IO, raw WebSocket and SockJS clients in one channel see each other', async () => {
  const channel = 'mixed';
  const socket = connect(['polling', 'websocket']);
  const raw = new WebSocket(`${base.replace('http', 'ws')}/comet/websocket`);
  const rawOpen = once(raw, 'open');
  const rawInbox = new Inbox();
  raw.on('message', (data) => rawInbox.push(String(data)));
  const sockjs = new SockJS(`${base}/comet`, null, { transports: ['xhr-streaming'] });
  const sockjsInbox = new Inbox();
  sockjs.onmessage = (e) => sockjsInbox.push(e.data);
  const sockjsOpen = within(new Promise((resolve) => (sockjs.onopen = resolve)), 'sockjs open');
  const until = (inbox, frame) => inbox.until(frame);
  try {
    await once(socket, 'connect');
    await rawOpen;
    await sockjsOpen;
    raw.send(`subscribe ${channel}`);
    sockjs.send(`subscribe ${channel}`);
    await ask(socket, 'subscribe', channel);
    await until(rawInbox, `subscribed ${channel}`);
    await until(sockjsInbox, `subscribed ${channel}`);

    socket.emit('channel', channel, { from: 'socket.io' });
    raw.send(`channel ${channel} {"from":"raw"}`);
    sockjs.send(`channel ${channel} from sockjs`);
    for (const frame of [
      `channel ${channel} {"from":"socket.io"}`,
      `channel ${channel} {"from":"raw"}`,
      `channel ${channel} from sockjs`,
    ]) {
      await until(rawInbox, frame);
      await until(sockjsInbox, frame);
    }
    const got = [await message(socket, channel), await message(socket, channel), await message(socket, channel)];
    assert.deepEqual(
      got.map((p) => (typeof p === 'string' ? p : p.from)).sort(),
      ['from sockjs', 'raw', 'socket.io'],
    );
  } finally {
    socket.close();
    raw.close();
    sockjs.close();
  }
});

/// Starts `command args`, resolving with its child once a line of its output matches.
function startUntil(command, args, pattern) {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  return within(
    new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const found = out.match(pattern);
        if (found) resolve({ child, found });
      });
      child.on('exit', (code) => reject(new Error(`${command} exited with ${code}: ${out}`)));
    }),
    `${command} to start`,
  );
}

test('across two processes on a Redis of the test: Socket.IO, raw WebSocket and SockJS clients meet', async () => {
  const net = require('node:net');
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const children = [];
  const clients = [];
  try {
    const redis = await startUntil(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      /Ready to accept connections/,
    );
    children.push(redis.child);
    const redisUrl = `redis://127.0.0.1:${port}/`;
    const servers = [];
    for (let i = 0; i < 2; i++) {
      const srv = await startUntil(
        process.env.SOCKETIO_TESTSRV,
        ['--bind', '127.0.0.1:0', '--redis', redisUrl],
        /listening on (http:\/\/\S+)/,
      );
      children.push(srv.child);
      servers.push(srv.found[1]);
    }
    const [a, b] = servers;
    const channel = 'cluster';
    const socket = io(a, { path: '/comet/socket.io', reconnection: false, forceNew: true });
    clients.push(() => socket.close());
    socket.inbox = [];
    socket.waiters = [];
    socket.on('channel', (ch, payload) => {
      socket.inbox.push({ channel: ch, payload });
      for (const wake of socket.waiters.splice(0)) wake();
    });
    const raw = new WebSocket(`${b.replace('http', 'ws')}/comet/websocket`);
    clients.push(() => raw.close());
    const rawOpen = once(raw, 'open');
    const rawInbox = new Inbox();
    raw.on('message', (data) => rawInbox.push(String(data)));
    const sockjs = new SockJS(`${b}/comet`, null, { transports: ['xhr-streaming'] });
    clients.push(() => sockjs.close());
    const sockjsInbox = new Inbox();
    sockjs.onmessage = (e) => sockjsInbox.push(e.data);
    const sockjsOpen = within(new Promise((resolve) => (sockjs.onopen = resolve)), 'sockjs open');

    await once(socket, 'connect');
    await rawOpen;
    await sockjsOpen;
    await ask(socket, 'subscribe', channel);
    raw.send(`subscribe ${channel}`);
    sockjs.send(`subscribe ${channel}`);
    await rawInbox.until(`subscribed ${channel}`);
    await sockjsInbox.until(`subscribed ${channel}`);

    socket.emit('channel', channel, { from: 'socket.io on A' });
    raw.send(`channel ${channel} from raw on B`);
    sockjs.send(`channel ${channel} from sockjs on B`);
    for (const inbox of [rawInbox, sockjsInbox]) {
      await inbox.until(`channel ${channel} {"from":"socket.io on A"}`);
      await inbox.until(`channel ${channel} from raw on B`);
      await inbox.until(`channel ${channel} from sockjs on B`);
    }
    const got = [];
    for (let i = 0; i < 3; i++) {
      const payload = await message(socket, channel);
      got.push(typeof payload === 'string' ? payload : payload.from);
    }
    assert.deepEqual(got.sort(), ['from raw on B', 'from sockjs on B', 'socket.io on A']);
  } finally {
    clients.forEach((close) => close());
    children.reverse().forEach((child) => child.kill());
  }
});

for (const mode of MODES) {
  test(`socket.io-client, ${mode.name}: presence, presence_stats, join and leave`, async () => {
    // examples/socketio-testsrv has a `room` namespace with presence and join/leave.
    const alice = connect(mode.transports, mode.upgrade);
    const bob = connect(mode.transports, mode.upgrade);
    try {
      await Promise.all([once(alice, 'connect'), once(bob, 'connect')]);
      const room = `room:sio-${mode.transports.join('-')}`;
      assert.deepEqual(await ask(alice, 'subscribe', room, { joinLeave: true }), { channel: room });
      const alone = await ask(alice, 'presence', room);
      const [aliceId] = Object.keys(alone.clients);
      assert.deepEqual(alone, { clients: { [aliceId]: { connection: aliceId, user: null, info: null } } });

      const joined = once(alice, 'join');
      assert.deepEqual(await ask(bob, 'subscribe', room), { channel: room });
      const [channel, entries] = await joined;
      assert.equal(channel, room);
      assert.equal(entries.length, 1);
      const [bobEntry] = entries;
      assert.deepEqual(bobEntry, { connection: bobEntry.connection, user: null, info: null });
      assert.notEqual(bobEntry.connection, aliceId);
      const both = await ask(bob, 'presence', room);
      assert.deepEqual(Object.keys(both.clients).sort(), [aliceId, bobEntry.connection].sort());
      // Anonymous connections are clients, not users.
      assert.deepEqual(await ask(bob, 'presence_stats', room), { clients: 2, users: 0 });

      const left = once(alice, 'leave');
      assert.deepEqual(await ask(bob, 'unsubscribe', room), { channel: room });
      assert.deepEqual(await left, [room, [bobEntry]]);
      assert.deepEqual(await ask(alice, 'presence_stats', room), { clients: 1, users: 0 });

      // A namespace without presence: not_found, on the ack; the subscribe is refused.
      const plain = `plain-sio-${mode.transports.join('-')}`;
      assert.equal((await ask(alice, 'presence', plain)).error.code, 'not_found');
      assert.equal((await ask(alice, 'presence_stats', plain)).error.code, 'not_found');
      const refused = await ask(alice, 'subscribe', plain, { joinLeave: true });
      assert.equal(refused.error.code, 'not_found');
      assert.equal(refused.error.channel, plain);
      assert.equal((await ask(alice, 'presence', 'two words')).error.code, 'bad_channel');
    } finally {
      alice.close();
      bob.close();
    }
  });
}

test('socket.io-client: history on an ack, after publications with offsets', async () => {
  // examples/socketio-testsrv's `feed` namespace keeps history.
  const socket = connect(['websocket']);
  const offsets = [];
  socket.on('channel', (channel, payload, offset) => offsets.push(offset));
  try {
    await once(socket, 'connect');
    const feed = 'feed:sio-history';
    const subscribed = await ask(socket, 'subscribe', feed, { recover: true });
    assert.equal(subscribed.offset, 0);
    for (const n of [1, 2, 3]) socket.emit('channel', feed, { n });
    for (const n of [1, 2, 3]) assert.deepEqual(await message(socket, feed), { n });
    assert.deepEqual(offsets, [1, 2, 3]);
    const { publications, offset, epoch } = await ask(socket, 'history', feed, { since: 1, limit: 5 });
    assert.deepEqual(publications, [
      { offset: 2, payload: '{"n":2}' },
      { offset: 3, payload: '{"n":3}' },
    ]);
    assert.equal(offset, 3);
    assert.equal(epoch, subscribed.epoch);
    assert.equal((await ask(socket, 'history', feed)).publications.length, 3);
    assert.equal((await ask(socket, 'history', 'plain-history')).error.code, 'not_found');
    assert.equal((await ask(socket, 'history', feed, 'not an object')).error.code, 'bad_json');
  } finally {
    socket.close();
  }
});
