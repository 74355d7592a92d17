// The chat demo's history and recovery through the real client against the real server:
// the room (`chat:lobby`) and the private conversations (`dm:#…`) keep history, a client
// that was offline while messages were said gets them on its reconnection (once each, in
// order, with their offsets), `client.history` reads the recent ones, and a restart of the
// in-memory server (history lost) is said as `recovered: false`, never a silent gap.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import WebSocket from 'ws';

import { AutoReconnect, Client } from '../../client.js';
import { startChat, stopAllChats, tokensFor } from '../support/chatServer.js';
import { nextEvent } from '../support/events.js';
import { offlineCapable } from '../support/offlineClient.js';

const ROOM = 'chat:lobby';

/** Every channel event and every `recovered` event `client` says from now on, in order. */
function record(client) {
  const events = [];
  client.on('channel', ({ channel, params, offset }) => {
    events.push({ channel, params, offset });
  });
  client.on('recovered', (event) => events.push({ recovered: event }));
  return events;
}

/** The texts of the room messages among `events`, with their offsets. */
const said = (events) =>
  events
    .filter((event) => event.params?.type === 'message')
    .map(({ params, offset }) => ({ text: params.text, offset }));

describe("the chat demo's history and recovery", () => {
  let server;
  const clients = [];

  before(async () => {
    server = await startChat();
  });

  after(async () => {
    for (const client of clients) client.close();
    await stopAllChats();
  });

  /** A client logged in as `nick`, once it is open. */
  async function connect(nick) {
    const client = new Client({
      serverUrl: server.cometUrl,
      WebSocket,
      getToken: tokensFor(server, nick),
    });
    clients.push(client);
    await nextEvent(client, 'open');
    return client;
  }

  /**
   * Has `speaker` say each of `texts` in the room, and resolves once `listener` (subscribed
   * to the room) heard them all: then they are in the room's history too.
   */
  async function sayAll(speaker, listener, texts) {
    const last = texts.at(-1);
    const heard = nextEvent(listener, `channel:${ROOM}`, (e) => e.params?.text === last);
    for (const text of texts) await speaker.request('chat/say', { text });
    await heard;
  }

  it('a client offline while messages were said gets each once, in order, on its reconnection', async () => {
    const alice = offlineCapable(server, 'catchup-alice');
    clients.push(alice.client);
    const bob = await connect('catchup-bob');
    await bob.subscribe(ROOM);
    await alice.client.subscribe(ROOM, { recover: true });
    const events = record(alice.client);

    await sayAll(bob, alice.client, ['before']);
    const [before] = said(events);
    assert.equal(typeof before.offset, 'number');
    const { epoch } = alice.client.position(ROOM);
    assert.deepEqual(alice.client.position(ROOM), { offset: before.offset, epoch });

    // Alice's connection drops; she stays offline while bob says five things.
    alice.hold();
    const closed = nextEvent(alice.client, 'close');
    alice.sockets.at(-1).terminate();
    await closed;
    const missed = ['one', 'two', 'three', 'four', 'five'];
    await sayAll(bob, bob, missed);
    assert.deepEqual(said(events), [before], 'nothing reached alice while she was offline');

    // She reconnects by herself: the missed messages first, then `recovered: true`.
    const recovered = nextEvent(alice.client, 'recovered');
    alice.release();
    assert.deepEqual(await recovered, { channel: ROOM, recovered: true });
    assert.deepEqual(events.slice(1), [
      ...missed.map((text, i) => ({
        channel: ROOM,
        params: { type: 'message', nick: 'catchup-bob', text },
        offset: before.offset + 1 + i,
      })),
      { recovered: { channel: ROOM, recovered: true } },
    ]);
    assert.equal(alice.sockets.length, 2, 'one reconnection');

    // And the live stream goes on from there, without a gap or a duplicate.
    await sayAll(bob, alice.client, ['after']);
    assert.deepEqual(
      said(events).map(({ text }) => text),
      ['before', ...missed, 'after'],
    );
    assert.deepEqual(
      said(events).map(({ offset }) => offset),
      [0, 1, 2, 3, 4, 5, 6].map((i) => before.offset + i),
    );
    assert.deepEqual(alice.client.position(ROOM), { offset: before.offset + 6, epoch });
  });

  it('client.history gives the recent room messages, oldest first, to users, subscribed or not', async () => {
    const carol = await connect('history-carol');
    const texts = ['first of three', 'second of three', 'third of three'];
    // chat/say answers once the message is out, and so in the room's history.
    for (const text of texts) await carol.request('chat/say', { text });

    const recent = await carol.history(ROOM, { limit: 2 });
    assert.deepEqual(
      recent.publications.map(({ channel, params }) => ({ channel, params })),
      texts.slice(1).map((text) => ({
        channel: ROOM,
        params: { type: 'message', nick: 'history-carol', text },
      })),
    );
    const [second, third] = recent.publications;
    assert.equal(third.offset, recent.offset, 'the newest is the room position');
    assert.equal(second.offset, third.offset - 1);
    // After an offset: what followed it (here, the three).
    const since = await carol.history(ROOM, { since: second.offset - 2 });
    assert.deepEqual(
      since.publications.map(({ params }) => params.text),
      texts,
    );
    assert.equal(since.epoch, recent.epoch);

    const anonymous = new Client({ serverUrl: server.cometUrl, WebSocket });
    clients.push(anonymous);
    await assert.rejects(anonymous.history(ROOM, { limit: 2 }), {
      code: 'forbidden',
      channel: ROOM,
    });
    // The demo's room history is comet's: the old action is gone.
    await assert.rejects(carol.request('chat/history'), { code: 'not_found' });
  });

  it('a private message sent before its recipient subscribed is in the conversation history', async () => {
    const alice = await connect('early-alice');
    const bob = await connect('early-bob');
    for (const client of [alice, bob]) await client.subscribe('chat:lobby');
    const conversation = 'dm:#early-alice,early-bob';
    await alice.subscribe(conversation);
    const heard = nextEvent(alice, `channel:${conversation}`);
    await alice.request('chat/dm', { to: 'early-bob', text: 'are you there yet?' });
    await heard;

    // Bob's page reads the conversation's history, then follows it from there.
    const { publications, offset, epoch } = await bob.history(conversation, { limit: 20 });
    assert.deepEqual(
      publications.map(({ params }) => params),
      [{ type: 'dm', from: 'early-alice', to: 'early-bob', text: 'are you there yet?' }],
    );
    const events = record(bob);
    const resumed = nextEvent(bob, 'recovered');
    await bob.subscribe(conversation, { recover: true, since: { offset, epoch } });
    assert.deepEqual(await resumed, { channel: conversation, recovered: true });
    const next = nextEvent(bob, `channel:${conversation}`);
    await alice.request('chat/dm', { to: 'early-bob', text: 'good' });
    assert.deepEqual((await next).params.text, 'good');
    assert.deepEqual(
      events.map((event) => event.params?.text ?? event.recovered),
      [{ channel: conversation, recovered: true }, 'good'],
    );
    assert.equal(events[1].offset, offset + 1);
  });
});

describe('the chat demo restarted: its in-memory history is lost', () => {
  after(stopAllChats);

  it('a recovering client says recovered: false, and reads the new history', async (t) => {
    let server = await startChat();
    const alice = offlineCapable(server, 'restart-alice');
    const bob = new Client({
      serverUrl: server.cometUrl,
      WebSocket,
      getToken: tokensFor(server, 'restart-bob'),
      plugins: {
        autoReconnect: new AutoReconnect({ minRetryInterval: 50, maxRetryInterval: 400 }),
      },
    });
    t.after(() => {
      alice.client.close();
      bob.close();
    });
    await bob.subscribe(ROOM);
    await alice.client.subscribe(ROOM, { recover: true });
    const heard = nextEvent(alice.client, `channel:${ROOM}`, (e) => e.params?.text === 'old');
    await bob.request('chat/say', { text: 'old' });
    await heard;
    const { epoch } = alice.client.position(ROOM);

    // The server dies with alice's position in the old history; bob says something on
    // the new server while alice is still offline.
    alice.hold();
    const closed = nextEvent(alice.client, 'close');
    await server.stop('SIGKILL');
    await closed;
    const bobBack = nextEvent(bob, 'open');
    server = await startChat({ port: server.port });
    await bobBack;
    await bob.subscribe(ROOM);
    const bobHeard = nextEvent(bob, `channel:${ROOM}`, (e) => e.params?.text === 'new');
    await bob.request('chat/say', { text: 'new' });
    await bobHeard;

    const events = record(alice.client);
    const recovered = nextEvent(alice.client, 'recovered');
    alice.release();
    assert.deepEqual(await recovered, { channel: ROOM, recovered: false });
    assert.deepEqual(events, [{ recovered: { channel: ROOM, recovered: false } }]);
    const position = alice.client.position(ROOM);
    assert.notEqual(position.epoch, epoch, 'a new epoch');
    // What the app does then: reload the recent history, which has what bob said.
    const { publications } = await alice.client.history(ROOM, { limit: 10 });
    assert.deepEqual(
      publications.map(({ params }) => params.text),
      ['new'],
    );
    assert.ok(publications[0].offset <= position.offset);
  });
});
