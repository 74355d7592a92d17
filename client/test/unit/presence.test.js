// Presence (issue 14) against a fake transport and fake timers: subscribe with `joinLeave`
// (first, after reconnections, with a token and `recover`, refused), `join` / `leave`
// frames as one event per entry, and `presence()` / `presenceStats()`.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AutoReconnect, Client, CometError } from '../../client.js';
import { parseServerFrame } from '../../lib/protocol.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

const URL = 'http://comet.test/comet';

/**
 * A client on a fake transport and fake timers, with AutoReconnect retrying after exactly
 * 1 s (no jitter) and no heartbeat.
 */
function setup(t, options = {}) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const transport = new FakeTransport();
  const client = new Client({
    serverUrl: URL,
    transport,
    plugins: { autoReconnect: new AutoReconnect({ minRetryInterval: 1000, random: () => 0 }) },
    heartbeat: false,
    ...options,
  });
  return { client, transport };
}

/** The connection drops, and AutoReconnect opens the next one. */
function reconnect(t, transport) {
  transport.drop(1006);
  t.mock.timers.tick(1000);
  transport.accept();
}

/** A client subscribed to `room` with `joinLeave`, confirmed, its frames taken. */
async function joined(t, options = {}) {
  const { client, transport } = setup(t, options);
  transport.accept();
  const subscribed = client.subscribe('room', { joinLeave: true });
  transport.receive('subscribed room');
  await subscribed;
  transport.take();
  return { client, transport };
}

/** Answers the last frame sent that starts with `keyword ` with `body` (its requestUid added). */
function answerLast(transport, keyword, body) {
  const frame = transport.sent.findLast((text) => text.startsWith(`${keyword} `));
  const { requestUid } = JSON.parse(frame.replace(/^\S+ \S+ /, ''));
  transport.receive(`action ${JSON.stringify({ requestUid, ...body })}`);
}

const ANN = { connection: 'ab12.7', user: '42', info: { name: 'Ann' } };
const ANN_TAB = { connection: 'ab12.9', user: '42', info: { name: 'Ann' } };
const ANON = { connection: 'cd34.1', user: null, info: null };

describe('joinLeave: the subscribe frames', () => {
  it('subscribes with {"joinLeave":true}, and again after each reconnection', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const subscribed = client.subscribe('room', { joinLeave: true });
    assert.deepEqual(transport.take(), ['subscribe room {"joinLeave":true}']);
    transport.receive('subscribed room');
    await subscribed;
    reconnect(t, transport);
    assert.deepEqual(transport.take(), ['subscribe room {"joinLeave":true}']);
    reconnect(t, transport);
    assert.deepEqual(transport.take(), ['subscribe room {"joinLeave":true}']);
  });

  it('goes in one object with the token and `recover`, and the position after', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.subscribe('room', { token: 'sub.jwt', recover: true, joinLeave: true });
    assert.deepEqual(transport.take(), [
      'subscribe room {"token":"sub.jwt","joinLeave":true,"recover":true}',
    ]);
    transport.receive('subscribed room {"offset":3,"epoch":"e1"}');
    transport.receive('pub room 4 x');
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe room {"token":"sub.jwt","joinLeave":true,"recover":true,"offset":4,"epoch":"e1"}',
    ]);
  });

  it('a token function gets its fresh token in the same object', async (t) => {
    const { client, transport } = setup(t);
    let n = 0;
    client.subscribe('room', { token: async () => `sub-${++n}`, joinLeave: true });
    transport.accept();
    for (let i = 0; i < 10; i += 1) await Promise.resolve();
    assert.deepEqual(transport.take(), ['subscribe room {"token":"sub-1","joinLeave":true}']);
  });

  it('a refusal (not_found: no join_leave there) rejects, says error, is not renewed', async (t) => {
    const { client, transport } = setup(t);
    const errors = record(client, 'error');
    const joins = record(client, 'join');
    transport.accept();
    const subscribed = client.subscribe('room', { joinLeave: true });
    transport.receive(
      'error {"code":"not_found","message":"no join and leave in this namespace","channel":"room"}',
    );
    await assert.rejects(subscribed, (error) => {
      assert.ok(error instanceof CometError);
      assert.equal(error.code, 'not_found');
      assert.equal(error.channel, 'room');
      return true;
    });
    assert.equal(errors.length, 1);
    transport.receive(`join room ${JSON.stringify([ANN])}`);
    assert.deepEqual(joins, [], 'not subscribed: no join events');
    transport.take();
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [], 'a refused subscription is not renewed');
  });

  it('unsubscribe forgets joinLeave: the next subscribe asks for nothing', async (t) => {
    const { client, transport } = await joined(t);
    client.unsubscribe('room');
    transport.receive('unsubscribed room');
    client.subscribe('room');
    assert.deepEqual(transport.take(), ['unsubscribe room', 'subscribe room']);
  });

  it('joinLeave: false stops asking from the next subscribe', async (t) => {
    const { client, transport } = await joined(t);
    client.subscribe('room', { joinLeave: false });
    reconnect(t, transport);
    assert.deepEqual(transport.take(), ['subscribe room']);
  });

  it('refuses a joinLeave that is not true or false', (t) => {
    const { client } = setup(t);
    for (const joinLeave of ['yes', 1, null]) {
      assert.throws(
        () => client.subscribe('room', { joinLeave }),
        TypeError,
        JSON.stringify(joinLeave),
      );
    }
  });
});

describe('join and leave events', () => {
  it('one event per entry, under both names, even when a frame carries several', async (t) => {
    const { transport, client } = await joined(t);
    const events = record(client, 'join:room', 'join', 'leave:room', 'leave');
    transport.receive(`join room ${JSON.stringify([ANN, ANN_TAB, ANON])}`);
    transport.receive(`leave room ${JSON.stringify([ANN_TAB])}`);
    const at = (entry) => ({ channel: 'room', ...entry });
    assert.deepEqual(events, [
      ['join:room', at(ANN)],
      ['join', at(ANN)],
      ['join:room', at(ANN_TAB)],
      ['join', at(ANN_TAB)],
      ['join:room', at(ANON)],
      ['join', at(ANON)],
      ['leave:room', at(ANN_TAB)],
      ['leave', at(ANN_TAB)],
    ]);
  });

  it('skips what is not an entry; a missing user or info is null', async (t) => {
    const { transport, client } = await joined(t);
    const events = record(client, 'join');
    const messages = record(client, 'message');
    const entries = [
      { connection: 'x.1' },
      { connection: '' },
      { user: '42' },
      { connection: 'x.2', user: 42 },
      'x.3',
      null,
      { connection: 'x.4', user: '7', info: 'Bob' },
    ];
    transport.receive(`join room ${JSON.stringify(entries)}`);
    transport.receive('join room {"connection":"x.5"}');
    transport.receive('join room [broken');
    transport.receive('join room');
    assert.deepEqual(
      events.map(([, event]) => event),
      [
        { channel: 'room', connection: 'x.1', user: null, info: null },
        { channel: 'room', connection: 'x.4', user: '7', info: 'Bob' },
      ],
    );
    assert.equal(messages.length, 4, 'every frame is still a message event');
  });

  it('only for channels subscribed with joinLeave; handlers do not subscribe', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.subscribe('plain');
    transport.receive('subscribed plain');
    const events = record(client, 'join:other', 'join', 'leave');
    assert.deepEqual(transport.take(), ['subscribe plain'], 'join:<name> sends nothing');
    transport.receive(`join plain ${JSON.stringify([ANN])}`);
    transport.receive(`join other ${JSON.stringify([ANN])}`);
    transport.receive(`leave other ${JSON.stringify([ANN])}`);
    assert.deepEqual(events, []);
  });

  it('none once unsubscribed, even before the server confirms', async (t) => {
    const { client, transport } = await joined(t);
    const events = record(client, 'leave');
    client.unsubscribe('room');
    transport.receive(`leave room ${JSON.stringify([ANN])}`);
    transport.receive('unsubscribed room');
    assert.deepEqual(events, []);
  });

  it('parses join and leave frames: channel and entries', () => {
    assert.deepEqual(parseServerFrame('join room [{"connection":"a"}]'), {
      type: 'join',
      channel: 'room',
      entries: [{ connection: 'a' }],
    });
    assert.deepEqual(parseServerFrame('leave a:b []'), {
      type: 'leave',
      channel: 'a:b',
      entries: [],
    });
    for (const text of ['join', 'join room', 'join room {}', 'leave room x', 'join  []']) {
      assert.deepEqual(parseServerFrame(text), { type: 'unknown' }, text);
    }
  });
});

describe('presence() and presenceStats()', () => {
  it('presence() sends `presence <channel> {"requestUid"}` and gives the entries', async (t) => {
    const { client, transport } = setup(t);
    const requests = record(client, 'request');
    transport.accept();
    const answer = client.presence('room');
    assert.match(transport.sent[0], /^presence room \{"requestUid":"[^"]+"\}$/);
    answerLast(transport, 'presence', {
      clients: {
        [ANN.connection]: ANN,
        [ANON.connection]: ANON,
        'x.9': { connection: 'x.9' },
        'x.0': 'broken',
      },
    });
    assert.deepEqual(await answer, {
      clients: {
        [ANN.connection]: ANN,
        [ANON.connection]: ANON,
        'x.9': { connection: 'x.9', user: null, info: null },
      },
    });
    assert.deepEqual(requests, [], 'no `request` event: it is no action');
  });

  it('an empty channel: no clients; a `__proto__` key stays a key', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const empty = client.presence('room');
    answerLast(transport, 'presence', { clients: {} });
    assert.deepEqual(await empty, { clients: {} });
    const odd = client.presence('room');
    transport.receive(
      `action {"requestUid":${JSON.stringify(JSON.parse(transport.sent[1].slice(14)).requestUid)},` +
        '"clients":{"__proto__":{"connection":"__proto__","user":null,"info":null}}}',
    );
    const { clients } = await odd;
    assert.deepEqual(Object.keys(clients), ['__proto__']);
    assert.equal(Object.getPrototypeOf(clients), Object.prototype);
  });

  it('presenceStats() sends `presence_stats <channel> {"requestUid"}`, gives the counts', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const answer = client.presenceStats('room');
    assert.match(transport.sent[0], /^presence_stats room \{"requestUid":"[^"]+"\}$/);
    answerLast(transport, 'presence_stats', { clients: 3, users: 2 });
    assert.deepEqual(await answer, { clients: 3, users: 2 });
  });

  for (const code of ['forbidden', 'not_found', 'unavailable', 'rate_limited', 'bad_channel']) {
    it(`rejects with a CometError on an error answer (${code})`, async (t) => {
      const { client, transport } = setup(t);
      transport.accept();
      const list = client.presence('room');
      answerLast(transport, 'presence', { error: { code, message: 'no' } });
      const stats = client.presenceStats('room');
      answerLast(transport, 'presence_stats', { error: { code, message: 'no' } });
      for (const answer of [list, stats]) {
        await assert.rejects(answer, (error) => {
          assert.ok(error instanceof CometError);
          assert.equal(error.code, code);
          assert.equal(error.channel, 'room');
          assert.equal(error.route, undefined);
          assert.equal(error.message, 'no');
          return true;
        });
      }
    });
  }

  it('rejects a broken answer (internal)', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const broken = [
      ['presence', {}],
      ['presence', { clients: [] }],
      ['presence_stats', { clients: 3 }],
      ['presence_stats', { clients: -1, users: 0 }],
      ['presence_stats', { clients: 1.5, users: 1 }],
      ['presence_stats', { clients: '3', users: 2 }],
    ];
    for (const [keyword, body] of broken) {
      const answer =
        keyword === 'presence' ? client.presence('room') : client.presenceStats('room');
      answerLast(transport, keyword, body);
      await assert.rejects(answer, { code: 'internal', channel: 'room' }, JSON.stringify(body));
    }
  });

  it('waits in the queue while connecting, and times out naming what it read', async (t) => {
    const { client, transport } = setup(t, { requestTimeout: 5000 });
    const list = client.presence('room');
    const stats = client.presenceStats('room');
    transport.accept();
    const sent = transport.take();
    assert.match(sent[0], /^presence room /);
    assert.match(sent[1], /^presence_stats room /);
    t.mock.timers.tick(5000);
    await assert.rejects(list, (error) => {
      assert.equal(error.code, 'timeout');
      assert.equal(error.channel, 'room');
      assert.match(error.message, /the presence of "room"/);
      return true;
    });
    await assert.rejects(stats, /the presence stats of "room"/);
  });

  it('rejects `disconnected`, `cancelled` and `closed` like every request', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const lost = client.presence('room');
    transport.drop(1006);
    await assert.rejects(lost, { code: 'disconnected', channel: 'room' });
    const queued = client.presenceStats('room');
    client.close();
    await assert.rejects(queued, { code: 'cancelled', channel: 'room' });
    await assert.rejects(client.presence('room'), { code: 'closed', channel: 'room' });
    await assert.rejects(client.presenceStats('room'), { code: 'closed', channel: 'room' });
  });

  it('refuses a bad channel with a TypeError', (t) => {
    const { client } = setup(t);
    for (const channel of ['a b', '', 7]) {
      assert.throws(() => client.presence(channel), TypeError);
      assert.throws(() => client.presenceStats(channel), TypeError);
    }
  });
});
