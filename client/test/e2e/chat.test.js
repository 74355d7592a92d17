// The chat demo's identity and permissions, through the real client against the real
// server: the login endpoint, the nick taken from the token, the room and the private
// channels that only the server publishes to, and the in-band token refresh.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { Client } from '../../client.js';
import { login, startChat, stopAllChats, tokensFor } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';

const ROOM = 'chat:lobby';

describe("the chat demo's login and permissions", () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startChat();
  });

  after(async () => {
    for (const client of clients) client.close();
    await stopAllChats();
  });

  /** A client logged in as `nick` (anonymous without one), once it is open. */
  async function connect(nick) {
    const options = nick ? { getToken: tokensFor(server, nick) } : {};
    const client = new Client({ serverUrl: server.cometUrl, WebSocket, ...options });
    clients.push(client);
    const authenticated = nick ? nextEvent(client, 'authenticated') : null;
    await nextEvent(client, 'open');
    if (authenticated) assert.equal((await authenticated).user, nick);
    return client;
  }

  /** Every channel event `client` gets from now on. */
  function record(client) {
    const heard = [];
    client.on('channel', ({ channel, params, payload }) =>
      heard.push({ channel, params, payload }),
    );
    return heard;
  }

  it('the login signs a token for a good nick and refuses the others', async () => {
    const { status, body } = await login(server, '  zoë_1.x-y  ');
    assert.equal(status, 200);
    assert.equal(body.nick, 'zoë_1.x-y');
    const now = Date.now() / 1000;
    assert.ok(body.exp > now + 3500 && body.exp < now + 3700, `exp ${body.exp}`);
    const [, claims] = body.token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(claims, 'base64url')), {
      sub: 'zoë_1.x-y',
      exp: body.exp,
    });
    for (const nick of ['', '   ', 'a b', 'a,b', 'a#b', 'a:b', 'x'.repeat(33)]) {
      const refused = await login(server, nick);
      assert.equal(refused.status, 400, nick);
      assert.equal(refused.body.error.code, 'bad_nick', nick);
    }
    const response = await fetch(`${server.url}login`, { method: 'POST', body: 'nick=x' });
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error.code, 'bad_request');
  });

  it('site/whoami says the token user, and null for an anonymous client', async () => {
    const alice = await connect('whoami-alice');
    const answer = await alice.request('site/whoami');
    assert.equal(answer.user, 'whoami-alice');
    assert.equal(answer.connection, alice.identity.connection);
    const anonymous = await connect();
    assert.equal((await anonymous.request('site/whoami')).user, null);
  });

  it('an anonymous client can neither read the room nor speak in it', async () => {
    const anonymous = await connect();
    await assert.rejects(anonymous.subscribe(ROOM), { code: 'forbidden', channel: ROOM });
    await assert.rejects(anonymous.history(ROOM), { code: 'forbidden', channel: ROOM });
    await assert.rejects(anonymous.presence(ROOM), { code: 'forbidden' });
    for (const route of ['chat/say', 'chat/dm']) {
      await assert.rejects(anonymous.request(route, { text: 'hi', to: 'x' }), {
        code: 'not_authenticated',
      });
    }
  });

  it('nobody publishes into the room directly, nor posts as someone else', async () => {
    const alice = await connect('room-alice');
    const mallory = await connect('room-mallory');
    await alice.subscribe(ROOM);
    await mallory.subscribe(ROOM);
    const heard = record(alice);

    // Straight into the room channel: refused, nobody hears it.
    const refused = nextEvent(mallory, 'error', (error) => error.channel === ROOM);
    mallory.send(ROOM, { type: 'message', nick: 'room-alice', text: 'forged' });
    assert.equal((await refused).code, 'forbidden');
    // Nor through the demo action that publishes for its caller.
    await assert.rejects(
      mallory.request('site/publish', {
        channel: ROOM,
        message: { type: 'message', nick: 'room-alice', text: 'forged too' },
      }),
      { code: 'forbidden' },
    );
    // Through chat/say the sender is the token's nick, whatever the params say.
    const said = nextEvent(alice, `channel:${ROOM}`, (e) => e.params?.type === 'message');
    assert.equal(
      (await mallory.request('chat/say', { text: 'hello', nick: 'room-alice' })).sent,
      true,
    );
    assert.deepEqual((await said).params, {
      type: 'message',
      nick: 'room-mallory',
      text: 'hello',
    });
    assert.deepEqual(
      heard.map((event) => event.params),
      [{ type: 'message', nick: 'room-mallory', text: 'hello' }],
    );
    // The room's history has it as it was said, and nothing forged.
    const { publications } = await alice.history(ROOM);
    assert.deepEqual(publications.at(-1).params, {
      type: 'message',
      nick: 'room-mallory',
      text: 'hello',
    });
    assert.equal(publications.filter((p) => p.payload.includes('forged')).length, 0);
    await assert.rejects(alice.request('chat/say', { text: '   ' }), { code: 'bad_text' });
  });

  it('a private message reaches its two users only', async () => {
    const alice = await connect('dm-alice');
    const bob = await connect('dm-bob');
    const carol = await connect('dm-carol');
    // In the room (comet's presence of it): chat/dm writes only to someone here.
    await assert.rejects(alice.request('chat/dm', { to: 'dm-bob', text: 'hi' }), {
      code: 'not_here',
    });
    for (const client of [alice, bob, carol]) await client.subscribe(ROOM);
    const conversation = 'dm:#dm-alice,dm-bob';

    // Carol may not listen in, nor write into it.
    await assert.rejects(carol.subscribe(conversation), { code: 'forbidden' });
    const refused = nextEvent(carol, 'error', (error) => error.channel === conversation);
    carol.send(conversation, { type: 'dm', from: 'dm-alice', to: 'dm-bob', text: 'forged' });
    assert.equal((await refused).code, 'forbidden');
    // Nor may alice and bob publish there themselves: it goes through chat/dm.
    await alice.subscribe(conversation);
    await bob.subscribe(conversation);
    const refusedToo = nextEvent(bob, 'error', (error) => error.channel === conversation);
    bob.send(conversation, { type: 'dm', from: 'dm-alice', to: 'dm-bob', text: 'forged' });
    assert.equal((await refusedToo).code, 'forbidden');
    // Carol's own conversation with alice, to see that she hears her own and no other.
    await carol.subscribe('dm:#dm-alice,dm-carol');
    const heardByCarol = record(carol);
    const heardByBob = record(bob);

    const toBob = { type: 'dm', from: 'dm-alice', to: 'dm-bob', text: 'just for you' };
    const bobHears = nextEvent(bob, `channel:${conversation}`);
    const aliceHears = nextEvent(alice, `channel:${conversation}`);
    const answer = await alice.request('chat/dm', { to: 'dm-bob', text: 'just for you' });
    assert.equal(answer.channel, conversation);
    assert.deepEqual((await bobHears).params, toBob);
    assert.deepEqual((await aliceHears).params, toBob);

    // A message to carol after it: once she has it, she would have had the first too.
    const carolHears = nextEvent(carol, 'channel:dm:#dm-alice,dm-carol');
    await alice.request('chat/dm', { to: 'dm-carol', text: 'and one for carol' });
    await carolHears;
    assert.deepEqual(
      heardByCarol.map((event) => event.channel),
      ['dm:#dm-alice,dm-carol'],
    );
    assert.deepEqual(
      heardByBob.map((event) => event.params),
      [toBob],
    );

    await assert.rejects(alice.request('chat/dm', { to: 'dm-alice', text: 'me' }), {
      code: 'bad_nick',
    });
    await assert.rejects(alice.request('chat/dm', { to: 'nobody-here', text: 'hi' }), {
      code: 'not_here',
    });
  });
});

describe('the chat demo with short-lived tokens', () => {
  let server;
  let client;

  before(async () => {
    server = await startChat({ args: ['--login-token-ttl-secs', '3'] });
  });

  after(async () => {
    client?.close();
    await stopAllChats();
  });

  it('the client refreshes its token in band: one connection, subscriptions kept', async () => {
    let opened = 0;
    let fetched = 0;
    const getToken = tokensFor(server, 'refresher');
    client = new Client({
      serverUrl: server.cometUrl,
      WebSocket,
      getToken: () => {
        fetched += 1;
        return getToken();
      },
    });
    client.on('open', () => {
      opened += 1;
    });
    const first = await nextEvent(client, 'authenticated');
    await client.subscribe(ROOM);
    // Refreshes come in band until the first token's `exp` is well past.
    let refreshes = 0;
    let last = first;
    while (Date.now() / 1000 < first.exp + 0.5) {
      last = await nextEvent(client, 'authenticated', () => true, 10_000);
      refreshes += 1;
      assert.equal(last.connection, first.connection);
      assert.ok(refreshes < 10, 'a refresh every second or so, not a storm');
    }
    assert.ok(refreshes >= 2, `${refreshes} refreshes`);
    assert.ok(last.exp > first.exp, JSON.stringify([first, last]));
    assert.equal(opened, 1);
    assert.equal(fetched, refreshes + 1);
    // Still subscribed, still the same user.
    const said = nextEvent(client, `channel:${ROOM}`, (e) => e.params?.type === 'message');
    await client.request('chat/say', { text: 'still here' });
    assert.equal((await said).params.nick, 'refresher');
  });
});
