// The client in Node against a chat server that goes away and comes back.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import WebSocket from 'ws';

import { AutoReconnect, Client, CloseCode } from '../../client.js';
import { startChat, stopAllChats } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';

after(stopAllChats);

/** A client that retries quickly, so the tests stay short. */
function quickClient(server) {
  return new Client({
    serverUrl: server.cometUrl,
    WebSocket,
    plugins: {
      autoReconnect: new AutoReconnect({ minRetryInterval: 50, maxRetryInterval: 400 }),
    },
  });
}

for (const { how, signal, code } of [
  { how: 'shut down gracefully', signal: 'SIGTERM', code: CloseCode.GOING_AWAY },
  { how: 'killed', signal: 'SIGKILL', code: 1006 },
]) {
  describe(`a server that is ${how} and restarted`, () => {
    it('is reconnected to, with subscriptions renewed and queued requests sent', async (t) => {
      let server = await startChat();
      const client = quickClient(server);
      const others = [];
      t.after(async () => {
        for (const c of [client, ...others]) c.close();
        await server.stop('SIGKILL');
      });
      await nextEvent(client, 'open');
      await client.subscribe('room');

      const closed = nextEvent(client, 'close');
      const retrying = nextEvent(client, 'reconnecting');
      await server.stop(signal);
      assert.equal((await closed).code, code);
      assert.equal((await retrying).code, code);

      // While the server is down, requests wait in the queue.
      const answer = client.request('site/test', { while: 'down' });
      const resubscribed = nextEvent(client, 'message', (e) => e.message === 'subscribed room');
      const reopened = nextEvent(client, 'open');
      server = await startChat({ port: server.port });
      await reopened;
      assert.equal(client.plugins.autoReconnect.attempt, 0);
      assert.deepEqual((await answer).echo, { while: 'down' });

      await resubscribed;
      const other = new Client({ serverUrl: server.cometUrl, WebSocket });
      others.push(other);
      const heard = nextEvent(client, 'channel:room');
      other.send('room', { after: 'restart' });
      assert.deepEqual((await heard).params, { after: 'restart' });
    });
  });
}

describe('a request in flight when the server dies', () => {
  it('is rejected as disconnected, and the client reconnects', async (t) => {
    let server = await startChat();
    const client = quickClient(server);
    t.after(async () => {
      client.close();
      await server.stop('SIGKILL');
    });
    await nextEvent(client, 'open');
    // A frozen server takes the frame into its socket buffer and never answers.
    await server.freeze();
    const inFlight = client.request('site/test');
    const rejected = assert.rejects(inFlight, { code: 'disconnected', route: 'site/test' });
    await server.stop('SIGKILL');
    await rejected;
    const reopened = nextEvent(client, 'open');
    server = await startChat({ port: server.port });
    await reopened;
  });
});
