// The client in Node against the real Rust chat server, over SockJS (the stock
// sockjs-client), once per SockJS transport that works in Node.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import SockJS from 'sockjs-client';

import { AutoReconnect, Client, SockJsTransport } from '../../client.js';
import { startChat, stopAllChats, tokensFor } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';

// htmlfile, jsonp-polling and the iframe transports need a DOM: the browser's business.
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];

after(stopAllChats);

for (const name of TRANSPORTS) {
  describe(`over SockJS ${name}, against the chat server`, () => {
    let server;
    const clients = [];

    before(async () => {
      server = await startChat();
    });

    after(async () => {
      for (const client of clients) client.close();
      await server?.stop();
    });

    async function connect(wait = true, options = {}) {
      const client = new Client({
        serverUrl: server.cometUrl,
        transport: new SockJsTransport({ SockJS, transports: [name] }),
        ...options,
      });
      clients.push(client);
      if (wait) await nextEvent(client, 'open');
      return client;
    }

    it('gets the answer to its hello, so it would notice a dead connection', async () => {
      const client = await connect(false);
      await nextEvent(client, 'message', ({ message }) => message.startsWith('hello '));
      assert.equal(client.serverLimits.heartbeat, 25_000);
      assert.equal(client.serverLimits.maxFrameBytes, 65536);
    });

    it('calls actions, and rejects error answers with their codes', async () => {
      const client = await connect();
      const answer = await client.request('site/test', { via: name });
      assert.deepEqual(answer.echo, { via: name });
      await assert.rejects(client.request('site/nothing-here'), { code: 'not_found' });
    });

    it("logs in: the token's user is the connection's, and the room admits it", async () => {
      const nick = `sockjs-${name}`;
      const client = await connect(false, { getToken: tokensFor(server, nick) });
      assert.equal((await nextEvent(client, 'authenticated')).user, nick);
      assert.equal((await client.request('site/whoami')).user, nick);
      await client.subscribe('chat:lobby');
      const { clients } = await client.presence('chat:lobby');
      assert.ok(
        Object.values(clients).some((entry) => entry.user === nick),
        JSON.stringify(clients),
      );
    });

    it('carries channel messages both ways', async () => {
      const [alice, bob] = [await connect(), await connect()];
      const heard = nextEvent(alice, 'channel:room');
      await alice.subscribe('room');
      bob.send('room', { text: 'hello', via: name });
      assert.deepEqual((await heard).params, { text: 'hello', via: name });
    });

    it('sends what was queued before the connection opened', async () => {
      const client = await connect(false);
      const answer = client.request('site/test', { queued: true });
      assert.deepEqual((await answer).echo, { queued: true });
    });
  });
}

// In Node, sockjs-client's XHR transports never notice a killed server (its http driver
// keeps polling in silence); in Chromium they close with 1006 within seconds. So the
// restart is driven over SockJS's websocket transport here.
describe('over SockJS, a server that is killed and restarted', () => {
  it('is reconnected to, with the subscription renewed', async (t) => {
    let server = await startChat();
    const client = new Client({
      serverUrl: server.cometUrl,
      transport: new SockJsTransport({ SockJS, transports: ['websocket'] }),
      plugins: {
        autoReconnect: new AutoReconnect({ minRetryInterval: 50, maxRetryInterval: 400 }),
      },
    });
    const others = [];
    t.after(async () => {
      for (const c of [client, ...others]) c.close();
      await server.stop('SIGKILL');
    });
    await nextEvent(client, 'open');
    await client.subscribe('room');
    const closed = nextEvent(client, 'close');
    await server.stop('SIGKILL');
    await closed;
    const resubscribed = nextEvent(client, 'message', (e) => e.message === 'subscribed room');
    server = await startChat({ port: server.port });
    await resubscribed;
    const other = new Client({
      serverUrl: server.cometUrl,
      transport: new SockJsTransport({ SockJS, transports: ['xhr-streaming'] }),
    });
    others.push(other);
    const heard = nextEvent(client, 'channel:room');
    other.send('room', { after: 'restart' });
    assert.deepEqual((await heard).params, { after: 'restart' });
  });
});
