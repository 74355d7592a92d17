// AutoReconnect with fake timers: backoff and jitter, reset on open, explicit close, close codes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AutoReconnect, Client, CloseCode, shouldReconnect } from '../../client.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

/**
 * A client with AutoReconnect (given `options`) on a fake transport, fake timers on.
 * `random` is what the plugin's jitter draws: 0 waits the least, just under 1 the most.
 */
function setup(t, options = {}) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const transport = new FakeTransport();
  const autoReconnect = new AutoReconnect({
    minRetryInterval: 1000,
    maxRetryInterval: 10_000,
    ...options,
  });
  const client = new Client({
    serverUrl: 'http://comet.test/comet',
    transport,
    plugins: { autoReconnect },
    heartbeat: false,
  });
  return { client, transport, autoReconnect };
}

/** Advances fake time by `ms` and says whether the client tried to connect meanwhile. */
function reopenedWithin(t, transport, ms) {
  const before = transport.opened.length;
  t.mock.timers.tick(ms);
  return transport.opened.length > before;
}

describe('AutoReconnect', () => {
  it('retries a lost connection after minRetryInterval at the earliest', (t) => {
    const { client, transport } = setup(t, { random: () => 0 });
    const events = record(client, 'reconnecting');
    transport.accept();
    transport.drop(1006);
    assert.deepEqual(events, [['reconnecting', { attempt: 1, delay: 1000, code: 1006 }]]);
    assert.equal(reopenedWithin(t, transport, 999), false);
    assert.equal(reopenedWithin(t, transport, 1), true);
    assert.equal(client.state, 'connecting');
  });

  it('backs off exponentially up to maxRetryInterval, with the jitter at its top', (t) => {
    const { client, transport } = setup(t, { random: () => 0.999_999 });
    const delays = record(client, 'reconnecting');
    transport.drop();
    for (let i = 0; i < 6; i += 1) {
      t.mock.timers.tick(delays.at(-1)[1].delay);
      transport.drop();
    }
    assert.deepEqual(
      delays.map(([, event]) => event.delay),
      [2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000],
    );
    assert.deepEqual(
      delays.map(([, event]) => event.attempt),
      [1, 2, 3, 4, 5, 6, 7],
    );
  });

  it('spreads each wait over [min, cap] (full jitter)', () => {
    const plugin = new AutoReconnect({ minRetryInterval: 500, maxRetryInterval: 8000 });
    for (let attempt = 1; attempt <= 8; attempt += 1) {
      const cap = Math.min(8000, 500 * 2 ** attempt);
      const waits = Array.from({ length: 300 }, () => plugin.delay(attempt));
      assert.ok(Math.min(...waits) >= 500, `attempt ${attempt}: ${Math.min(...waits)}`);
      assert.ok(Math.max(...waits) <= cap, `attempt ${attempt}: ${Math.max(...waits)}`);
      // Spread: the waits cover most of the range, not one point.
      assert.ok(Math.max(...waits) - Math.min(...waits) > (cap - 500) * 0.8);
    }
  });

  it('counts from the start again after a successful open', (t) => {
    const { client, transport, autoReconnect } = setup(t, { random: () => 0.999_999 });
    const delays = record(client, 'reconnecting');
    transport.drop();
    t.mock.timers.tick(2000);
    transport.drop();
    t.mock.timers.tick(4000);
    transport.accept();
    assert.equal(autoReconnect.attempt, 0);
    transport.drop();
    assert.deepEqual(
      delays.map(([, event]) => event.delay),
      [2000, 4000, 2000],
    );
  });

  it('never retries after close(), and close() cancels a wait in progress', (t) => {
    const { client, transport, autoReconnect } = setup(t, { random: () => 0 });
    transport.accept();
    transport.drop();
    assert.equal(autoReconnect.isWaiting, true);
    client.close();
    assert.equal(autoReconnect.isWaiting, false);
    assert.equal(reopenedWithin(t, transport, 60_000), false);

    client.open();
    transport.accept();
    client.close();
    transport.drop(); // a transport that still reports its close
    assert.equal(autoReconnect.isWaiting, false);
    assert.equal(reopenedWithin(t, transport, 60_000), false);
  });

  it('open() during a wait connects at once, and the wait ends', (t) => {
    const { client, transport, autoReconnect } = setup(t, { random: () => 0 });
    transport.drop();
    client.open();
    transport.accept();
    assert.equal(autoReconnect.isWaiting, false);
    assert.equal(transport.opened.length, 2);
    assert.equal(reopenedWithin(t, transport, 60_000), false);
  });

  it('reconnects after "going away" and the 4000-4099 codes, not after 4100-4199', (t) => {
    const { client, transport } = setup(t, { random: () => 0 });
    const closes = record(client, 'close');
    for (const code of [CloseCode.GOING_AWAY, CloseCode.HEARTBEAT_TIMEOUT, 4099, 1000, 1011]) {
      transport.accept();
      transport.drop(code);
      assert.equal(reopenedWithin(t, transport, 1000), true, `after ${code}`);
    }
    transport.accept();
    transport.drop(CloseCode.FORBIDDEN, 'Forbidden');
    assert.equal(reopenedWithin(t, transport, 60_000), false);
    assert.equal(closes.at(-1)[1].code, 4100, 'the app sees why');
    assert.equal(client.isForceClosed(), false);
  });

  it('lets the app decide in a `close` handler: close() there means no retry', (t) => {
    const { client, transport, autoReconnect } = setup(t, { random: () => 0 });
    client.on('close', ({ code }) => {
      if (code === CloseCode.NORMAL) client.close();
    });
    transport.accept();
    transport.drop(CloseCode.NORMAL, 'kicked');
    assert.equal(autoReconnect.isWaiting, false);
    assert.equal(reopenedWithin(t, transport, 60_000), false);
  });

  it('does nothing when disabled, and can be enabled again', (t) => {
    const { client, transport, autoReconnect } = setup(t, { enable: false, random: () => 0 });
    transport.drop();
    assert.equal(reopenedWithin(t, transport, 60_000), false);
    autoReconnect.enable = true;
    client.open();
    transport.drop();
    assert.equal(reopenedWithin(t, transport, 1000), true);
  });
});

describe('shouldReconnect', () => {
  it('says no only to 4100-4199', () => {
    for (const code of [undefined, 1000, 1001, 1006, 1011, 2000, 3000, 4000, 4001, 4099, 4200]) {
      assert.equal(shouldReconnect(code), true, String(code));
    }
    for (const code of [4100, 4150, 4199]) assert.equal(shouldReconnect(code), false);
  });
});
