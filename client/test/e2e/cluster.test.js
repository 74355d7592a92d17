// The chat demo as a cluster: two processes on a Redis of the test's own, one of which
// runs the room's actions. The room must hear of people leaving from either process, with
// one shared --token-hmac-secret a token from either process's /login is good on both, and
// the room's history is in Redis: a client that comes back on the other process resumes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { Client } from '../../client.js';
import { login, startChat, stopAllChats, tokensFor } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';
import { offlineCapable } from '../support/offlineClient.js';
import { redisModes, startRedisOf } from '../support/redisServer.js';

/** The cluster's shared token secret (at least 32 bytes). */
const SECRET = 'the cluster test secret, shared by both processes';

for (const mode of redisModes())
  describe(`the chat demo as a two-process cluster (Redis: ${mode})`, () => {
    let redis;
    let rooms;
    let edge;
    const clients = [];

    before(async () => {
      redis = await startRedisOf(mode);
      const shared = [...redis.args, '--token-hmac-secret', SECRET];
      // `rooms` runs the chat actions (and so holds the nicks); `edge` only holds clients.
      rooms = await startChat({ args: shared });
      edge = await startChat({ args: [...shared, '--listen-actions', 'false'] });
    });

    after(async () => {
      for (const client of clients) client.close();
      await stopAllChats();
      await redis?.stop();
    });

    /** A client of `server`, logged in as `nick` at `loginAt`'s /login. */
    async function connect(server, nick, loginAt = server) {
      const client = new Client({
        serverUrl: server.cometUrl,
        WebSocket,
        getToken: tokensFor(loginAt, nick),
      });
      clients.push(client);
      await nextEvent(client, 'open');
      return client;
    }

    it('chats across processes, and who-is-here (presence) follows a client of the other process', async () => {
      const alice = await connect(rooms, 'alice');
      // Bob logs in at one process and connects to the other one.
      const bob = await connect(edge, 'bob', rooms);
      await alice.subscribe('chat:lobby', { joinLeave: true });
      const joined = nextEvent(alice, 'join:chat:lobby');
      await bob.subscribe('chat:lobby');
      assert.equal((await joined).user, 'bob');
      const { clients } = await bob.presence('chat:lobby');
      assert.deepEqual(
        Object.values(clients)
          .map((entry) => entry.user)
          .sort(),
        ['alice', 'bob'],
      );
      assert.equal((await bob.request('site/whoami')).user, 'bob');

      const heard = nextEvent(alice, 'channel:chat:lobby', (e) => e.params?.type === 'message');
      await bob.request('chat/say', { text: 'hello from the edge' });
      assert.deepEqual((await heard).params, {
        type: 'message',
        nick: 'bob',
        text: 'hello from the edge',
      });

      const left = nextEvent(alice, 'leave:chat:lobby');
      bob.close();
      assert.equal((await left).user, 'bob');
      assert.deepEqual(await alice.presenceStats('chat:lobby'), { clients: 1, users: 1 });
    });

    it('a client that left one process and came back on the other catches up from the shared history', async () => {
      // Same secret on both: a token from either login is good on both.
      const dave = offlineCapable(edge, 'dave');
      clients.push(dave.client);
      const erin = await connect(rooms, 'erin');
      await erin.subscribe('chat:lobby');
      await dave.client.subscribe('chat:lobby', { recover: true });
      const heard = [];
      dave.client.on('channel:chat:lobby', ({ params, offset }) => heard.push({ params, offset }));
      dave.client.on('recovered', (event) => heard.push(event));
      const first = nextEvent(dave.client, 'channel:chat:lobby', (e) => e.params?.text === 'first');
      await erin.request('chat/say', { text: 'first' });
      const { offset } = await first;

      // Dave's connection to the edge drops; erin says two things; dave comes back on the
      // process that runs the room.
      dave.hold();
      const closed = nextEvent(dave.client, 'close');
      dave.sockets.at(-1).terminate();
      await closed;
      const last = nextEvent(erin, 'channel:chat:lobby', (e) => e.params?.text === 'third');
      await erin.request('chat/say', { text: 'second' });
      await erin.request('chat/say', { text: 'third' });
      await last;
      dave.client.setServerUrl(rooms.cometUrl);
      const recovered = nextEvent(dave.client, 'recovered');
      dave.release();
      assert.deepEqual(await recovered, { channel: 'chat:lobby', recovered: true });
      const message = (text, at) => ({
        params: { type: 'message', nick: 'erin', text },
        offset: at,
      });
      assert.deepEqual(heard, [
        message('first', offset),
        message('second', offset + 1),
        message('third', offset + 2),
        { channel: 'chat:lobby', recovered: true },
      ]);
    });

    it("a token from one process's login is good on the other", async () => {
      const { body } = await login(edge, 'carol');
      const carol = new Client({ serverUrl: rooms.cometUrl, WebSocket, token: body.token });
      clients.push(carol);
      assert.equal((await nextEvent(carol, 'authenticated')).user, 'carol');
    });
  });
