// The chat demo as a cluster: two processes on a Redis of the test's own, one of which
// runs the room's actions. The room must hear of people leaving from either process.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { Client } from '../../client.js';
import { startChat, stopAllChats } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';
import { startRedis } from '../support/redisServer.js';

describe('the chat demo as a two-process cluster', () => {
  let redis;
  let rooms;
  let edge;
  const clients = [];

  before(async () => {
    redis = await startRedis();
    // `rooms` runs the chat actions (and so holds the nicks); `edge` only holds clients.
    rooms = await startChat({ args: ['--redis', redis.url] });
    edge = await startChat({ args: ['--redis', redis.url, '--listen-actions', 'false'] });
  });

  after(async () => {
    for (const client of clients) client.close();
    await stopAllChats();
    await redis?.stop();
  });

  async function connect(server) {
    const client = new Client({ serverUrl: server.cometUrl, WebSocket });
    clients.push(client);
    await nextEvent(client, 'open');
    return client;
  }

  it('chats across processes, and who-is-here forgets a client that left the other process', async () => {
    const alice = await connect(rooms);
    const bob = await connect(edge);
    await alice.subscribe('chat');
    await bob.subscribe('chat');
    assert.equal((await alice.request('chat/nick', { nick: 'alice' })).nick, 'alice');
    assert.equal((await bob.request('chat/nick', { nick: 'bob' })).nick, 'bob');
    assert.deepEqual((await bob.request('chat/who')).nicks, ['alice', 'bob']);

    const heard = nextEvent(alice, 'channel:chat', (e) => e.params?.type === 'message');
    bob.send('chat', { type: 'message', nick: 'bob', text: 'hello from the edge' });
    assert.equal((await heard).params.text, 'hello from the edge');

    const left = nextEvent(alice, 'channel:chat', (e) => e.params?.type === 'leave');
    bob.close();
    assert.deepEqual((await left).params, { type: 'leave', nick: 'bob' });
    assert.deepEqual((await alice.request('chat/who')).nicks, ['alice']);
  });
});
