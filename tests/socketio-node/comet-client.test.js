// comet's own JS client (client/) over its SocketIoTransport (the stock socket.io-client)
// against examples/socketio-testsrv: the Client works over Socket.IO as over a WebSocket.
// The server comes from SOCKETIO_TESTSRV, as in socketio-client.test.js.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { io } = require('socket.io-client');

const TIMEOUT_MS = 10000;
let server;
let cometUrl;
let comet;

before(async () => {
  comet = await import(path.join(__dirname, '..', '..', 'client', 'client.js'));
  const bin = process.env.SOCKETIO_TESTSRV;
  if (!bin) throw new Error('set SOCKETIO_TESTSRV to the socketio-testsrv binary (scripts/test does)');
  server = spawn(bin, ['--bind', '127.0.0.1:0', '--heartbeat-ms', '1000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const found = out.match(/listening on (http:\/\/\S+)/);
      if (found) resolve(found[1]);
    });
    server.on('exit', (code) => reject(new Error(`socketio-testsrv exited with ${code}`)));
  });
  cometUrl = `${base}/comet`;
});

after(() => {
  if (server) server.kill();
});

function next(emitter, event, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), TIMEOUT_MS);
    const handler = (value) => {
      if (!pred(value)) return;
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(value);
    };
    emitter.on(event, handler);
  });
}

for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
  test(`the comet client over SocketIoTransport (${transports.join(' then ')})`, async () => {
    const { Client, SocketIoTransport } = comet;
    const make = () =>
      new Client({ serverUrl: cometUrl, transport: new SocketIoTransport({ io, transports }) });
    const alice = make();
    const bob = make();
    try {
      // Its hello is answered (the server's heartbeat, 1 s here), so it watches the link.
      await next(alice, 'message', ({ message }) => message.startsWith('hello '));
      assert.equal(alice.serverLimits.heartbeat, 1000);

      const answer = await alice.request('test/echo', { a: 1 });
      assert.deepEqual(answer.echo, { a: 1 });
      await assert.rejects(alice.request('no/such'), { code: 'not_found' });

      const room = `room-${transports.join('-')}`;
      await alice.subscribe(room);
      const heard = next(alice, `channel:${room}`);
      bob.send(room, { text: 'hi' });
      assert.deepEqual((await heard).params, { text: 'hi' });

      // `ping` frames (asked for by the client's hello) arrive as frames.
      await next(alice, 'message', ({ message }) => message === 'ping');
    } finally {
      alice.close();
      bob.close();
    }
  });
}

test('the comet client over SocketIoTransport: presence, presenceStats, join and leave events', async () => {
  const { Client, SocketIoTransport } = comet;
  const make = () =>
    new Client({
      serverUrl: cometUrl,
      transport: new SocketIoTransport({ io, transports: ['websocket'] }),
    });
  const alice = make();
  const bob = make();
  try {
    const room = 'room:comet-client';
    await alice.subscribe(room, { joinLeave: true });
    const joined = next(alice, `join:${room}`);
    const joinedAny = next(alice, 'join');
    await bob.subscribe(room);
    const bobEntry = await joined;
    assert.deepEqual(await joinedAny, bobEntry);
    assert.equal(bobEntry.channel, room);
    assert.equal(bobEntry.user, null);
    const { clients } = await bob.presence(room);
    assert.equal(Object.keys(clients).length, 2);
    assert.deepEqual(clients[bobEntry.connection], {
      connection: bobEntry.connection,
      user: null,
      info: null,
    });
    assert.deepEqual(await alice.presenceStats(room), { clients: 2, users: 0 });
    const left = next(alice, `leave:${room}`);
    bob.close();
    assert.deepEqual(await left, bobEntry);
    await assert.rejects(alice.presence('plain'), { code: 'not_found', channel: 'plain' });
  } finally {
    alice.close();
    bob.close();
  }
});

test('the comet client over SocketIoTransport: history()', async () => {
  const { Client, SocketIoTransport } = comet;
  const client = new Client({
    serverUrl: cometUrl,
    transport: new SocketIoTransport({ io, transports: ['websocket'] }),
  });
  try {
    const feed = 'feed:comet-client';
    await client.subscribe(feed, { recover: true });
    const last = next(client, `channel:${feed}`, ({ params }) => params?.n === 2);
    client.send(feed, { n: 1 });
    client.send(feed, { n: 2 });
    assert.equal((await last).offset, 2);
    const { publications, offset } = await client.history(feed, { limit: 1 });
    assert.deepEqual(
      publications.map(({ params, offset }) => [params, offset]),
      [[{ n: 2 }, 2]],
    );
    assert.equal(offset, 2);
    await assert.rejects(client.history('plain'), { code: 'not_found', channel: 'plain' });
  } finally {
    client.close();
  }
});
