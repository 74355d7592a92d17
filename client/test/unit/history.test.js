// History and recovery (issue 13) against a fake transport and fake timers: subscribe with
// `recover` (first, after reconnections, from `since`, with a token), `pub` frames as
// channel events with their offset, positions, `recovered` events, `gap`, duplicates,
// and `history()`.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AutoReconnect, Client, CometError } from '../../client.js';
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

/** Answers the last `history` frame sent with `body` (its `requestUid` added). */
function answerHistory(transport, body) {
  const frame = transport.sent.findLast((text) => text.startsWith('history '));
  const { requestUid } = JSON.parse(frame.replace(/^history \S+ /, ''));
  transport.receive(`action ${JSON.stringify({ requestUid, ...body })}`);
}

/** Lets promise callbacks run; fake timers do not hold them. */
const settle = async () => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
};

/** Whether `promise` has settled yet (after letting callbacks run). */
async function isSettled(promise) {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await settle();
  return settled;
}

/**
 * A client subscribed to `feed` with `recover`, confirmed at offset `offset` of epoch
 * `epoch`, its frames taken.
 */
async function recovering(t, { offset = 0, epoch = 'e1', ...options } = {}) {
  const { client, transport } = setup(t, options);
  transport.accept();
  const subscribed = client.subscribe('feed', { recover: true });
  transport.receive(`subscribed feed {"offset":${offset},"epoch":"${epoch}"}`);
  await subscribed;
  transport.take();
  return { client, transport };
}

describe('recover: the subscribe frames', () => {
  it('subscribes with {"recover":true} the first time, and remembers where it is', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const subscribed = client.subscribe('feed', { recover: true });
    assert.deepEqual(transport.take(), ['subscribe feed {"recover":true}']);
    assert.equal(client.position('feed'), null, 'no position before `subscribed`');
    transport.receive('subscribed feed {"offset":41,"epoch":"e1"}');
    await subscribed;
    assert.deepEqual(client.position('feed'), { offset: 41, epoch: 'e1' });
  });

  it('resubscribes after each reconnection from the last offset and epoch', async (t) => {
    const { client, transport } = await recovering(t, { offset: 41 });
    transport.receive('pub feed 42 a');
    transport.receive('pub feed 43 b');
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe feed {"recover":true,"offset":43,"epoch":"e1"}',
    ]);
    transport.receive('pub feed 44 c');
    transport.receive('subscribed feed {"offset":44,"epoch":"e1","recovered":true}');
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe feed {"recover":true,"offset":44,"epoch":"e1"}',
    ]);
    assert.deepEqual(client.position('feed'), { offset: 44, epoch: 'e1' });
  });

  it('with `since`, the first subscribe already resumes from it', async (t) => {
    const { client, transport } = setup(t);
    client.subscribe('feed', { recover: true, since: { offset: 7, epoch: 'e9' } });
    assert.deepEqual(client.position('feed'), { offset: 7, epoch: 'e9' });
    transport.accept();
    assert.deepEqual(transport.take(), ['subscribe feed {"recover":true,"offset":7,"epoch":"e9"}']);
  });

  it('goes in one JSON object with the subscription token, before the position', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.subscribe('news:feed', { token: 'sub.jwt', recover: true });
    assert.deepEqual(transport.take(), ['subscribe news:feed {"token":"sub.jwt","recover":true}']);
    transport.receive('subscribed news:feed {"offset":3,"epoch":"e1"}');
    transport.receive('pub news:feed 4 x');
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe news:feed {"token":"sub.jwt","recover":true,"offset":4,"epoch":"e1"}',
    ]);
  });

  it('takes the position at send time when a token function gives the token', async (t) => {
    const { client, transport } = setup(t);
    let n = 0;
    client.subscribe('feed', {
      token: async () => `sub-${++n}`,
      recover: true,
      since: { offset: 2, epoch: 'e1' },
    });
    transport.accept();
    await settle();
    assert.deepEqual(transport.take(), [
      'subscribe feed {"token":"sub-1","recover":true,"offset":2,"epoch":"e1"}',
    ]);
    transport.receive('pub feed 3 x');
    transport.receive('subscribed feed {"offset":3,"epoch":"e1","recovered":true}');
    reconnect(t, transport);
    await settle();
    assert.deepEqual(transport.take(), [
      'subscribe feed {"token":"sub-2","recover":true,"offset":3,"epoch":"e1"}',
    ]);
  });

  it('a channel without `recover` subscribes as before (no options, no position)', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'recovered');
    transport.accept();
    const subscribed = client.subscribe('room');
    transport.receive('subscribed room');
    await subscribed;
    reconnect(t, transport);
    transport.receive('subscribed room');
    assert.deepEqual(transport.take(), ['subscribe room', 'subscribe room']);
    assert.equal(client.position('room'), null);
    assert.deepEqual(events, []);
  });

  it('a subscription that never got a position subscribes fresh again', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.subscribe('feed', { recover: true });
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe feed {"recover":true}',
      'subscribe feed {"recover":true}',
    ]);
    assert.equal(client.position('feed'), null);
  });

  it('unsubscribe forgets the position and `recover`', async (t) => {
    const { client, transport } = await recovering(t, { offset: 5 });
    client.unsubscribe('feed');
    transport.receive('unsubscribed feed');
    assert.equal(client.position('feed'), null);
    client.subscribe('feed');
    assert.deepEqual(transport.take(), ['unsubscribe feed', 'subscribe feed']);
  });

  it('a refused recovering subscribe forgets its position', async (t) => {
    const { client, transport } = setup(t);
    client.on('error', () => {});
    transport.accept();
    const subscribed = client.subscribe('feed', {
      recover: true,
      since: { offset: 1, epoch: 'e1' },
    });
    transport.receive('error {"code":"forbidden","message":"no","channel":"feed"}');
    await assert.rejects(subscribed, { code: 'forbidden', channel: 'feed' });
    assert.equal(client.position('feed'), null);
  });

  it('without autoSubscribeOnReconnect, a lost connection forgets the position', async (t) => {
    const { client, transport } = await recovering(t, {
      offset: 5,
      autoSubscribeOnReconnect: false,
    });
    reconnect(t, transport);
    assert.equal(client.position('feed'), null);
    assert.deepEqual(transport.take(), []);
  });

  it('`since` counts only for a subscribe with no position of its own', async (t) => {
    const { client, transport } = await recovering(t, { offset: 20 });
    await client.subscribe('feed', { recover: true, since: { offset: 3, epoch: 'old' } });
    assert.deepEqual(client.position('feed'), { offset: 20, epoch: 'e1' });
    assert.deepEqual(transport.take(), [], 'already subscribed: nothing sent');
  });

  it('handlers added right after subscribe() see the missed messages; one frame', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const subscribed = client.subscribe('feed', {
      recover: true,
      since: { offset: 1, epoch: 'e1' },
    });
    const events = record(client, 'channel:feed');
    transport.receive('pub feed 2 missed');
    transport.receive('subscribed feed {"offset":2,"epoch":"e1","recovered":true}');
    await subscribed;
    assert.deepEqual(transport.take(), ['subscribe feed {"recover":true,"offset":1,"epoch":"e1"}']);
    assert.deepEqual(
      events.map(([, event]) => event.payload),
      ['missed'],
    );
  });

  it('a channel a handler subscribed already on an open connection recovers from the next reconnection', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.on('channel:feed', () => {});
    transport.receive('subscribed feed');
    await client.subscribe('feed', { recover: true, since: { offset: 1, epoch: 'e1' } });
    assert.equal(client.position('feed'), null, '`since` is not taken for a frame already sent');
    reconnect(t, transport);
    transport.receive('subscribed feed {"offset":5,"epoch":"e1"}');
    assert.deepEqual(transport.take(), ['subscribe feed', 'subscribe feed {"recover":true}']);
    assert.deepEqual(client.position('feed'), { offset: 5, epoch: 'e1' });
  });

  it('`since: null` is no position (as position() gives before any)', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.subscribe('feed', { recover: true, since: client.position('feed') });
    assert.deepEqual(transport.take(), ['subscribe feed {"recover":true}']);
  });

  it('refuses a bad `since`, `since` without `recover`, and a `recover` not boolean', (t) => {
    const { client } = setup(t);
    for (const since of [
      5,
      { offset: -1, epoch: 'e' },
      { offset: 1 },
      { offset: 1.5, epoch: 'e' },
    ]) {
      assert.throws(() => client.subscribe('feed', { recover: true, since }), TypeError);
    }
    assert.throws(() => client.subscribe('feed', { since: { offset: 1, epoch: 'e' } }), TypeError);
    assert.throws(() => client.subscribe('feed', { recover: 'yes' }), TypeError);
    assert.equal(client.position('feed'), null);
  });
});

describe('recover: pub frames, positions, recovered events', () => {
  it('says `pub` frames as channel events with their offset, and advances', async (t) => {
    const { client, transport } = await recovering(t, { offset: 9 });
    const events = record(client, 'channel:feed', 'channel');
    transport.receive('pub feed 10 {"text":"hi"}');
    transport.receive('pub feed 11 plain text');
    assert.deepEqual(events, [
      [
        'channel:feed',
        {
          channel: 'feed',
          params: { text: 'hi' },
          message: null,
          payload: '{"text":"hi"}',
          offset: 10,
        },
      ],
      [
        'channel',
        {
          channel: 'feed',
          params: { text: 'hi' },
          message: null,
          payload: '{"text":"hi"}',
          offset: 10,
        },
      ],
      [
        'channel:feed',
        { channel: 'feed', params: null, message: 'plain text', payload: 'plain text', offset: 11 },
      ],
      [
        'channel',
        { channel: 'feed', params: null, message: 'plain text', payload: 'plain text', offset: 11 },
      ],
    ]);
    assert.deepEqual(client.position('feed'), { offset: 11, epoch: 'e1' });
  });

  it('position() gives a copy', async (t) => {
    const { client } = await recovering(t, { offset: 3 });
    const position = client.position('feed');
    position.offset = 99;
    assert.deepEqual(client.position('feed'), { offset: 3, epoch: 'e1' });
  });

  it('delivers the missed messages first, then `recovered: true`, then resolves', async (t) => {
    const { client, transport } = setup(t);
    const seen = [];
    client.on('channel:feed', ({ offset, payload }) => seen.push(`${offset}:${payload}`));
    client.on('recovered', (event) => seen.push(event));
    transport.accept();
    const subscribed = client.subscribe('feed', {
      recover: true,
      since: { offset: 4, epoch: 'e1' },
    });
    transport.receive('pub feed 5 a');
    transport.receive('pub feed 6 b');
    assert.equal(await isSettled(subscribed), false, 'not before `subscribed`');
    transport.receive('subscribed feed {"offset":6,"epoch":"e1","recovered":true}');
    await subscribed;
    assert.deepEqual(seen, ['5:a', '6:b', { channel: 'feed', recovered: true }]);
    transport.receive('pub feed 7 live');
    assert.deepEqual(seen.at(-1), '7:live');
    assert.deepEqual(client.position('feed'), { offset: 7, epoch: 'e1' });
  });

  it('says `recovered` after every resubscription on a reconnection', async (t) => {
    const { client, transport } = await recovering(t, { offset: 1 });
    const events = record(client, 'recovered');
    for (const recovered of [true, true, false]) {
      reconnect(t, transport);
      transport.receive(`subscribed feed {"offset":1,"epoch":"e1","recovered":${recovered}}`);
    }
    assert.deepEqual(
      events.map(([, event]) => event),
      [
        { channel: 'feed', recovered: true },
        { channel: 'feed', recovered: true },
        { channel: 'feed', recovered: false },
      ],
    );
  });

  it('no `recovered` event after a first subscribe without `since`', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'recovered');
    transport.accept();
    const subscribed = client.subscribe('feed', { recover: true });
    transport.receive('subscribed feed {"offset":1,"epoch":"e1"}');
    await subscribed;
    assert.deepEqual(events, []);
  });

  it('`recovered: false` with a new epoch: the position jumps, offsets start over', async (t) => {
    const { client, transport } = await recovering(t, { offset: 500 });
    transport.receive('pub feed 501 old');
    const events = record(client, 'channel:feed', 'recovered');
    reconnect(t, transport);
    transport.receive('subscribed feed {"offset":2,"epoch":"e2","recovered":false}');
    assert.deepEqual(client.position('feed'), { offset: 2, epoch: 'e2' });
    transport.receive('pub feed 3 new');
    assert.deepEqual(
      events.map(([name, event]) => [name, event.offset ?? event.recovered]),
      [
        ['recovered', false],
        ['channel:feed', 3],
      ],
    );
    reconnect(t, transport);
    assert.deepEqual(
      transport.take().at(-1),
      'subscribe feed {"recover":true,"offset":3,"epoch":"e2"}',
    );
  });

  it('a `gap` says `recovered: false` and moves the position', async (t) => {
    const { client, transport } = await recovering(t, { offset: 10 });
    const events = record(client, 'recovered', 'channel');
    transport.receive('pub feed 11 a');
    transport.receive('gap feed {"offset":15,"epoch":"e1"}');
    assert.deepEqual(client.position('feed'), { offset: 15, epoch: 'e1' });
    transport.receive('pub feed 16 b');
    assert.deepEqual(
      events.map(([name, event]) => [name, event.offset ?? event.recovered]),
      [
        ['channel', 11],
        ['recovered', false],
        ['channel', 16],
      ],
    );
    assert.deepEqual(events[1][1], { channel: 'feed', recovered: false });
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe feed {"recover":true,"offset":16,"epoch":"e1"}',
    ]);
  });

  it('a `gap` with a new epoch: offsets of the new epoch are delivered', async (t) => {
    const { client, transport } = await recovering(t, { offset: 10 });
    const events = record(client, 'channel');
    transport.receive('gap feed {"offset":0,"epoch":"e2"}');
    transport.receive('pub feed 1 a');
    assert.deepEqual(
      events.map(([, event]) => event.offset),
      [1],
    );
    assert.deepEqual(client.position('feed'), { offset: 1, epoch: 'e2' });
  });

  it('a `gap` of a channel not subscribed with recover says nothing', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'recovered');
    transport.accept();
    client.subscribe('room');
    transport.receive('subscribed room');
    transport.receive('gap room {"offset":3,"epoch":"e"}');
    transport.receive('gap other {"offset":3,"epoch":"e"}');
    assert.deepEqual(events, []);
    assert.equal(client.position('room'), null);
  });

  it('drops duplicates: offsets at or before the position, in the same epoch', async (t) => {
    const { client, transport } = await recovering(t, { offset: 0 });
    const events = record(client, 'channel');
    for (const offset of [1, 2, 2, 1, 3, 3]) transport.receive(`pub feed ${offset} m${offset}`);
    reconnect(t, transport);
    transport.take();
    // A server replaying what was already delivered: dropped as well.
    transport.receive('pub feed 2 m2');
    transport.receive('pub feed 3 m3');
    transport.receive('pub feed 4 m4');
    transport.receive('subscribed feed {"offset":4,"epoch":"e1","recovered":true}');
    assert.deepEqual(
      events.map(([, event]) => event.payload),
      ['m1', 'm2', 'm3', 'm4'],
    );
    assert.deepEqual(client.position('feed'), { offset: 4, epoch: 'e1' });
  });

  it('delivers the latest publication sent right after `subscribed` (send_latest)', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'channel');
    transport.accept();
    const subscribed = client.subscribe('ticker', { recover: true });
    transport.receive('subscribed ticker {"offset":8,"epoch":"e1"}');
    transport.receive('pub ticker 8 {"price":3}');
    await subscribed;
    assert.deepEqual(
      events.map(([, event]) => [event.offset, event.params]),
      [[8, { price: 3 }]],
    );
    // After a recovery with nothing missed, the latest one again is a duplicate.
    reconnect(t, transport);
    transport.receive('subscribed ticker {"offset":8,"epoch":"e1","recovered":true}');
    transport.receive('pub ticker 8 {"price":3}');
    assert.equal(events.length, 1);
    assert.deepEqual(client.position('ticker'), { offset: 8, epoch: 'e1' });
  });

  it('after `since`, what is at or before it counts as delivered', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'channel');
    transport.accept();
    client.subscribe('ticker', { recover: true, since: { offset: 8, epoch: 'e1' } });
    transport.receive('subscribed ticker {"offset":8,"epoch":"e1","recovered":true}');
    transport.receive('pub ticker 8 {"price":3}');
    transport.receive('pub ticker 9 {"price":4}');
    assert.deepEqual(
      events.map(([, event]) => event.offset),
      [9],
    );
  });

  it('a connection lost mid-recovery resumes from what was delivered', async (t) => {
    const { client, transport } = await recovering(t, { offset: 10 });
    reconnect(t, transport);
    transport.take();
    transport.receive('pub feed 11 a');
    transport.receive('pub feed 12 b');
    reconnect(t, transport);
    assert.deepEqual(transport.take(), [
      'subscribe feed {"recover":true,"offset":12,"epoch":"e1"}',
    ]);
    assert.deepEqual(client.position('feed'), { offset: 12, epoch: 'e1' });
  });

  it('pub frames of a channel without a position are said, with their offset', async (t) => {
    const { client, transport } = setup(t);
    const events = record(client, 'channel');
    transport.accept();
    transport.receive('pub elsewhere 3 x');
    transport.receive('pub elsewhere 3 x');
    assert.deepEqual(
      events.map(([, event]) => event.offset),
      [3, 3],
    );
    assert.equal(client.position('elsewhere'), null);
  });
});

describe('history()', () => {
  it('sends `history <channel> {requestUid, since, limit}` and reads the answer', async (t) => {
    const { client, transport } = setup(t);
    const requests = record(client, 'request');
    transport.accept();
    const answer = client.history('feed', { since: 3, limit: 2 });
    const [frame] = transport.take();
    const match = frame.match(/^history feed (\{.*\})$/);
    assert.ok(match, frame);
    const params = JSON.parse(match[1]);
    assert.deepEqual(Object.keys(params), ['requestUid', 'since', 'limit']);
    assert.deepEqual({ ...params, requestUid: 'x' }, { requestUid: 'x', since: 3, limit: 2 });
    assert.match(params.requestUid, new RegExp(`^${client.getStationUid()}-`));
    transport.receive(
      `action ${JSON.stringify({
        requestUid: params.requestUid,
        publications: [
          { offset: 4, payload: '{"text":"a"}' },
          { offset: 5, payload: 'b' },
        ],
        offset: 9,
        epoch: 'e1',
      })}`,
    );
    assert.deepEqual(await answer, {
      publications: [
        {
          channel: 'feed',
          params: { text: 'a' },
          message: null,
          payload: '{"text":"a"}',
          offset: 4,
        },
        { channel: 'feed', params: null, message: 'b', payload: 'b', offset: 5 },
      ],
      offset: 9,
      epoch: 'e1',
    });
    assert.deepEqual(requests, [], 'no `request` event: it is no action');
  });

  it('takes `since` as a position too, and leaves out what is not given', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.history('feed', { since: { offset: 7, epoch: 'e1' } });
    client.history('feed', { limit: 10 });
    client.history('feed');
    client.history('feed', { since: null, limit: null });
    const sent = transport.take().map((frame) => {
      const { requestUid, ...rest } = JSON.parse(frame.slice('history feed '.length));
      assert.equal(typeof requestUid, 'string');
      return rest;
    });
    assert.deepEqual(sent, [{ since: 7 }, { limit: 10 }, {}, {}]);
  });

  it('does not move the position of a subscribed channel', async (t) => {
    const { client, transport } = await recovering(t, { offset: 2 });
    const answer = client.history('feed');
    answerHistory(transport, {
      publications: [{ offset: 9, payload: 'x' }],
      offset: 9,
      epoch: 'e1',
    });
    await answer;
    assert.deepEqual(client.position('feed'), { offset: 2, epoch: 'e1' });
  });

  it('an empty history: no publications, the position', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const answer = client.history('feed', { limit: 5 });
    answerHistory(transport, { publications: [], offset: 0, epoch: 'e1' });
    assert.deepEqual(await answer, { publications: [], offset: 0, epoch: 'e1' });
  });

  for (const code of ['forbidden', 'not_found', 'unavailable']) {
    it(`rejects with a CometError on an error answer (${code})`, async (t) => {
      const { client, transport } = setup(t);
      const requests = record(client, 'request');
      transport.accept();
      const answer = client.history('feed');
      answerHistory(transport, { error: { code, message: 'no' } });
      await assert.rejects(answer, (error) => {
        assert.ok(error instanceof CometError);
        assert.equal(error.code, code);
        assert.equal(error.channel, 'feed');
        assert.equal(error.route, undefined);
        assert.equal(error.message, 'no');
        return true;
      });
      assert.deepEqual(requests, []);
    });
  }

  it('rejects an answer without the channel position (internal)', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const answer = client.history('feed');
    answerHistory(transport, { publications: [] });
    await assert.rejects(answer, { code: 'internal', channel: 'feed' });
  });

  it('waits in the queue while connecting, and times out like a request', async (t) => {
    const { client, transport } = setup(t, { requestTimeout: 5000 });
    const answer = client.history('feed', { limit: 1 });
    transport.accept();
    assert.match(transport.take()[0], /^history feed \{"requestUid":"[^"]+","limit":1\}$/);
    t.mock.timers.tick(5000);
    await assert.rejects(answer, (error) => {
      assert.equal(error.code, 'timeout');
      assert.equal(error.channel, 'feed');
      assert.match(error.message, /the history of "feed"/);
      return true;
    });
  });

  it('rejects with `disconnected` when the connection closes before the answer', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const answer = client.history('feed');
    transport.drop(1006);
    await assert.rejects(answer, { code: 'disconnected', channel: 'feed' });
  });

  it('rejects at once after close(), and `cancelled` when close() drops it', async (t) => {
    const { client } = setup(t);
    const queued = client.history('feed');
    client.close();
    await assert.rejects(queued, { code: 'cancelled', channel: 'feed' });
    await assert.rejects(client.history('feed'), { code: 'closed', channel: 'feed' });
  });

  it('refuses a bad channel, `since` or `limit` with a TypeError', (t) => {
    const { client } = setup(t);
    assert.throws(() => client.history('a b'), TypeError);
    for (const since of [-1, 1.5, '3', { offset: 'x', epoch: 'e' }, {}]) {
      assert.throws(() => client.history('feed', { since }), TypeError, JSON.stringify(since));
    }
    for (const limit of [-1, 2.5, '10']) {
      assert.throws(() => client.history('feed', { limit }), TypeError, JSON.stringify(limit));
    }
  });
});
