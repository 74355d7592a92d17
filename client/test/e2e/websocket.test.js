// The client in Node against the real Rust chat server, over the raw WebSocket transport.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { Client, CometError, WebSocketTransport } from '../../client.js';
import { startChat, stopAllChats, tokensFor } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';

describe('over WebSocket, against the chat server', () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startChat();
  });

  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
    await stopAllChats();
  });

  /** A client of the test server; resolves once it is open unless `wait` is false. */
  async function connect(options = {}, wait = true) {
    const client = new Client({ serverUrl: server.cometUrl, WebSocket, ...options });
    clients.push(client);
    if (wait) await nextEvent(client, 'open');
    return client;
  }

  it('connects to <prefix>/websocket and calls an action', async () => {
    const client = await connect();
    assert.ok(client.transport instanceof WebSocketTransport);
    const answer = await client.request('site/test', { text: 'hi', n: [1, 2] });
    assert.deepEqual(answer.echo, { text: 'hi', n: [1, 2] });
    assert.match(answer.requestUid, /-/);
  });

  it('rejects unknown routes and error answers with their codes', async () => {
    const client = await connect();
    await assert.rejects(client.request('site/nothing-here'), (error) => {
      assert.ok(error instanceof CometError);
      assert.equal(error.code, 'not_found');
      assert.equal(error.route, 'site/nothing-here');
      return true;
    });
    // The chat's own actions are for logged-in callers only.
    await assert.rejects(client.request('chat/say', { text: 'hi' }), {
      code: 'not_authenticated',
    });
  });

  it('delivers what one client sends on a channel to another subscribed client', async () => {
    const [alice, bob] = [await connect(), await connect()];
    const heard = nextEvent(alice, 'channel:room');
    await alice.subscribe('room');
    bob.send('room', { text: 'hello', from: 'bob' });
    const event = await heard;
    assert.equal(event.channel, 'room');
    assert.deepEqual(event.params, { text: 'hello', from: 'bob' });
  });

  it("the chat room's who-is-here is comet's presence: two tabs, one user", async () => {
    const [a, b] = [`alice-${process.pid}`, `bob-${process.pid}`];
    const alice = await connect({ getToken: tokensFor(server, a) });
    const bob = await connect({ getToken: tokensFor(server, b) });
    const bobsOtherTab = await connect({ getToken: tokensFor(server, b) });
    const joins = [];
    const leaves = [];
    alice.on('join:chat:lobby', (entry) => joins.push(entry));
    alice.on('leave:chat:lobby', (entry) => leaves.push(entry));
    await alice.subscribe('chat:lobby', { joinLeave: true });
    const twoJoins = new Promise((resolve) =>
      alice.on('join:chat:lobby', () => joins.length === 2 && resolve()),
    );
    await bob.subscribe('chat:lobby');
    await bobsOtherTab.subscribe('chat:lobby');
    await twoJoins;
    assert.deepEqual(
      joins.map((entry) => [entry.channel, entry.user]),
      [
        ['chat:lobby', b],
        ['chat:lobby', b],
      ],
    );
    assert.notEqual(joins[0].connection, joins[1].connection);
    const { clients } = await alice.presence('chat:lobby');
    const users = Object.values(clients).map((entry) => entry.user);
    assert.deepEqual(users.sort(), [a, b, b].sort());
    assert.deepEqual(await alice.presenceStats('chat:lobby'), { clients: 3, users: 2 });

    // Bob is still here while one of his connections is.
    bob.close();
    await nextEvent(alice, 'leave:chat:lobby');
    assert.deepEqual(await alice.presenceStats('chat:lobby'), { clients: 2, users: 2 });
    bobsOtherTab.close();
    await nextEvent(alice, 'leave:chat:lobby');
    assert.deepEqual(await alice.presenceStats('chat:lobby'), { clients: 1, users: 1 });
    assert.deepEqual(
      leaves.map((entry) => entry.user),
      [b, b],
    );
    // Nobody hears of their own join or leave.
    assert.ok(joins.every((entry) => entry.user !== a));
  });

  it('delivers server-side publishes (site/publish), text as text', async () => {
    const [alice, bob] = [await connect(), await connect()];
    const heard = nextEvent(alice, 'channel');
    await alice.subscribe('news');
    const answer = await bob.request('site/publish', { channel: 'news', message: 'plain words' });
    assert.equal(answer.published, true);
    const event = await heard;
    assert.equal(event.params, null);
    assert.equal(event.message, 'plain words');
  });

  it('on("channel:x") subscribes and its last off() unsubscribes', async () => {
    const [alice, bob] = [await connect(), await connect()];
    const heardX = [];
    const onX = (event) => heardX.push(event.payload);
    const subscribed = nextEvent(alice, 'message', (e) => e.message === 'subscribed x');
    alice.on('channel:x', onX);
    alice.on('channel:y', () => {});
    await subscribed;
    bob.send('x', 'first');
    await nextEvent(alice, 'channel:x');

    const unsubscribed = nextEvent(alice, 'message', (e) => e.message === 'unsubscribed x');
    alice.off('channel:x', onX);
    await unsubscribed;
    // Sent after x: once y arrives, x would have too, had it been delivered.
    const heardY = nextEvent(alice, 'channel:y');
    bob.send('x', 'second');
    bob.send('y', 'marker');
    await heardY;
    assert.deepEqual(heardX, ['first']);
  });

  it('queues what is sent before the connection opens, and sends it on open', async () => {
    const listener = await connect();
    await listener.subscribe('early');
    const heard = nextEvent(listener, 'channel:early');
    const client = await connect({}, false);
    assert.equal(client.isOpened(), false);
    client.send('early', { queued: true });
    const answer = client.request('site/test', { queued: true });
    assert.deepEqual((await answer).echo, { queued: true });
    assert.deepEqual((await heard).params, { queued: true });
  });

  it('says `error` for a frame the server refuses, and stays connected', async () => {
    const client = await connect();
    const refused = nextEvent(client, 'error');
    client.transport.send('shout hello');
    const error = await refused;
    assert.equal(error.code, 'bad_frame');
    assert.match(error.message, /unknown frame keyword/);
    assert.equal(client.isOpened(), true);
    assert.ok(await client.request('site/test'));
  });

  it('serves itself at <prefix>/client.js with its modules', async () => {
    const response = await fetch(`${server.cometUrl}/client.js`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(await response.text(), /export \{ Client \} from '\.\/lib\/Client\.js';/);
    const module = await fetch(`${server.cometUrl}/lib/Client.js`);
    assert.equal(module.status, 200);
  });
});
