// Presence through the real client against the real chat server, over WebSocket and SockJS
// (Socket.IO: tests/socketio-node): the chat is started with a config file that gives it a
// `room` namespace with `presence` and `join_leave`. Entries appear and go with subscribe,
// unsubscribe and disconnect; join and leave events say who, never the subscriber itself;
// a user with two tabs is two entries and one user; an anonymous connection is a client,
// not a user; a namespace without presence answers `not_found`.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import SockJS from 'sockjs-client';
import WebSocket from 'ws';

import { AutoReconnect, Client, SockJsTransport } from '../../client.js';
import { startChat, stopAllChats, tokensFor } from '../support/chatServer.js';
import { eventually, nextEvent } from '../support/events.js';
import { startTcpProxy } from '../support/tcpProxy.js';

/** The chat's config file: one namespace with presence and join/leave, open to anyone. */
const CONFIG = `
[namespaces.room]
presence = true
join_leave = true
`;

const TRANSPORTS = {
  websocket: () => ({ WebSocket }),
  'sockjs websocket': () => ({
    transport: new SockJsTransport({ SockJS, transports: ['websocket'] }),
  }),
  'sockjs xhr-streaming': () => ({
    transport: new SockJsTransport({ SockJS, transports: ['xhr-streaming'] }),
  }),
};

let dir;
let config;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'comet-presence-'));
  config = join(dir, 'comet.toml');
  await writeFile(config, CONFIG);
});

after(async () => {
  await stopAllChats();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Every `join` and `leave` event of `client` from now on, as `[type, event]`. */
function recordJoinLeave(client) {
  const events = [];
  client.on('join', (event) => events.push(['join', event]));
  client.on('leave', (event) => events.push(['leave', event]));
  return events;
}

/** The users of a `presence()` answer's entries, sorted (`null` for anonymous ones). */
const usersOf = ({ clients }) =>
  Object.values(clients)
    .map(({ user }) => user)
    .sort();

for (const [name, transportOptions] of Object.entries(TRANSPORTS)) {
  describe(`presence over ${name}, against the chat server`, () => {
    let server;
    const clients = [];
    let rooms = 0;
    /** A channel of the `room` namespace no other test uses. */
    const freshRoom = () => `room:${name.replace(/\W/g, '-')}-${(rooms += 1)}`;

    before(async () => {
      server = await startChat({ args: ['--config', config] });
    });

    after(async () => {
      for (const client of clients) client.close();
      await server?.stop();
    });

    /** A client logged in as `nick` (anonymous without one), once it is open (and known). */
    async function connect(nick) {
      const client = new Client({
        serverUrl: server.cometUrl,
        ...transportOptions(),
        ...(nick ? { getToken: tokensFor(server, nick) } : {}),
      });
      clients.push(client);
      await nextEvent(client, nick ? 'authenticated' : 'open');
      return client;
    }

    it('entries come and go with subscribe, unsubscribe and disconnect; join and leave say who', async () => {
      const room = freshRoom();
      const alice = await connect('alice');
      await alice.subscribe(room, { joinLeave: true });
      const self = alice.identity.connection;
      assert.deepEqual(await alice.presence(room), {
        clients: { [self]: { connection: self, user: 'alice', info: null } },
      });

      const bob = await connect('bob');
      const bobId = bob.identity.connection;
      const joined = nextEvent(alice, `join:${room}`);
      const joinedAny = nextEvent(alice, 'join');
      await bob.subscribe(room);
      const expected = { channel: room, connection: bobId, user: 'bob', info: null };
      assert.deepEqual(await joined, expected);
      assert.deepEqual(await joinedAny, expected);
      assert.deepEqual(usersOf(await bob.presence(room)), ['alice', 'bob']);
      assert.deepEqual(await alice.presenceStats(room), { clients: 2, users: 2 });

      const left = nextEvent(alice, `leave:${room}`);
      await bob.unsubscribe(room);
      assert.deepEqual(await left, expected);
      assert.deepEqual(usersOf(await alice.presence(room)), ['alice']);

      // Subscribed again, then gone with its connection.
      const rejoined = nextEvent(alice, `join:${room}`);
      await bob.subscribe(room);
      await rejoined;
      const gone = nextEvent(alice, `leave:${room}`);
      bob.close();
      assert.deepEqual(await gone, expected);
      assert.deepEqual(await alice.presenceStats(room), { clients: 1, users: 1 });
    });

    it('a subscriber with joinLeave hears the others, never itself', async () => {
      const room = freshRoom();
      const carol = await connect('carol');
      const events = recordJoinLeave(carol);
      await carol.subscribe(room, { joinLeave: true });
      const dave = await connect('dave');
      const heard = nextEvent(carol, `join:${room}`);
      await dave.subscribe(room, { joinLeave: true });
      await heard;
      // Its own join would have come first (or in the same frame): it did not.
      assert.deepEqual(
        events.map(([type, { user }]) => [type, user]),
        [['join', 'dave']],
      );
    });

    it('a user with two tabs is two entries and one user; a tab that closes leaves alone', async () => {
      const room = freshRoom();
      const watcher = await connect('erin');
      await watcher.subscribe(room, { joinLeave: true });
      const tab1 = await connect('frank');
      const tab2 = await connect('frank');
      const joins = [];
      const twoJoins = new Promise((resolve) => {
        watcher.on(`join:${room}`, (event) => {
          joins.push(event);
          if (joins.length === 2) resolve();
        });
      });
      await Promise.all([tab1.subscribe(room), tab2.subscribe(room)]);
      await twoJoins;
      assert.deepEqual(
        joins.map(({ user }) => user),
        ['frank', 'frank'],
      );
      assert.deepEqual(
        joins.map(({ connection }) => connection).sort(),
        [tab1.identity.connection, tab2.identity.connection].sort(),
      );
      assert.deepEqual(await watcher.presenceStats(room), { clients: 3, users: 2 });
      assert.deepEqual(usersOf(await watcher.presence(room)), ['erin', 'frank', 'frank']);

      const left = nextEvent(watcher, `leave:${room}`);
      const closed = tab2.identity.connection;
      tab2.close();
      assert.deepEqual(await left, {
        channel: room,
        connection: closed,
        user: 'frank',
        info: null,
      });
      assert.deepEqual(await watcher.presenceStats(room), { clients: 2, users: 2 });
    });

    it('an anonymous connection is an entry without a user, counted as a client only', async () => {
      const room = freshRoom();
      const gina = await connect('gina');
      await gina.subscribe(room, { joinLeave: true });
      const anonymous = await connect();
      const joined = nextEvent(gina, `join:${room}`);
      await anonymous.subscribe(room);
      const { connection, user } = await joined;
      assert.equal(user, null);
      const { clients } = await anonymous.presence(room);
      assert.deepEqual(clients[connection], { connection, user: null, info: null });
      assert.deepEqual(await anonymous.presenceStats(room), { clients: 2, users: 1 });
    });

    it('presence is readable unsubscribed; a namespace without it answers not_found', async () => {
      const room = freshRoom();
      const hank = await connect('hank');
      assert.deepEqual(await hank.presence(room), { clients: {} });
      assert.deepEqual(await hank.presenceStats(room), { clients: 0, users: 0 });
      const plain = `plain-${name.replace(/\W/g, '-')}`;
      await assert.rejects(hank.presence(plain), { code: 'not_found', channel: plain });
      await assert.rejects(hank.presenceStats(plain), { code: 'not_found', channel: plain });
      await assert.rejects(hank.subscribe(plain, { joinLeave: true }), {
        code: 'not_found',
        channel: plain,
      });
      // Refused, not subscribed: a plain subscribe of it still works.
      await hank.subscribe(plain);
    });
  });
}

describe('joinLeave across a reconnection', () => {
  it('is asked for again: the new connection hears joins, the old one left', async (t) => {
    const server = await startChat({ args: ['--config', config] });
    const proxy = await startTcpProxy(server.port);
    const room = 'room:reconnect';
    const alice = new Client({
      serverUrl: `http://127.0.0.1:${proxy.port}/comet`,
      WebSocket,
      getToken: tokensFor(server, 'alice'),
      plugins: {
        autoReconnect: new AutoReconnect({ minRetryInterval: 50, maxRetryInterval: 400 }),
      },
    });
    const bob = new Client({
      serverUrl: server.cometUrl,
      WebSocket,
      getToken: tokensFor(server, 'bob'),
    });
    t.after(async () => {
      alice.close();
      bob.close();
      await proxy.stop();
      await server.stop();
    });
    await nextEvent(alice, 'authenticated');
    await alice.subscribe(room, { joinLeave: true });
    const first = alice.identity.connection;

    const resubscribed = nextEvent(
      alice,
      'message',
      ({ message }) => message === `subscribed ${room}`,
    );
    proxy.cut();
    proxy.restore();
    await resubscribed;
    const second = alice.identity.connection;
    assert.notEqual(second, first, 'a new connection');

    const joined = nextEvent(alice, `join:${room}`);
    await bob.subscribe(room);
    assert.equal((await joined).user, 'bob');
    // The old connection's entry goes with it (its close has no event here).
    const expected = [second, bob.identity.connection].sort();
    await eventually('the old connection left the presence', async () => {
      const { clients } = await bob.presence(room);
      return JSON.stringify(Object.keys(clients).sort()) === JSON.stringify(expected);
    });
  });
});
