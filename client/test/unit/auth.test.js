// Authentication against a fake transport and fake timers: the `auth` first frame (token
// and getToken), in-band refresh, refusals (4100-4199) and 4102, subscription tokens.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AutoReconnect, Client, CloseCode, CometError } from '../../client.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

const URL = 'http://comet.test/comet';

/**
 * A client on a fake transport and fake timers, with AutoReconnect retrying after exactly
 * 1 s (no jitter) and no heartbeat unless asked.
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

/** Lets promise callbacks (getToken's answer) run; fake timers do not hold them. */
const settle = async () => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
};

/** A getToken that answers `tok-1`, `tok-2`, … and counts its calls. */
function counter() {
  const getToken = async () => `tok-${++getToken.calls}`;
  getToken.calls = 0;
  return getToken;
}

describe('auth: the first frame', () => {
  it('sends `auth <token>` first, before hello, subscriptions and queued frames', (t) => {
    const { client, transport } = setup(t, { token: 'abc.def.ghi', heartbeat: true });
    client.subscribe('room');
    client.send('room', 'queued');
    transport.accept();
    assert.deepEqual(transport.take(), [
      'auth abc.def.ghi',
      'hello {"heartbeat":true}',
      'subscribe room',
      'channel room queued',
    ]);
    assert.deepEqual(transport.opened, [URL], 'the token never goes in the URL');
  });

  it('keeps the token out of beforeSend (plugins log frames)', (t) => {
    const { client, transport } = setup(t, { token: 'secret' });
    const seen = record(client, 'beforeSend');
    client.subscribe('room');
    transport.accept();
    assert.deepEqual(
      seen.map(([, event]) => event.message),
      ['subscribe room'],
    );
  });

  it('with getToken, fetches a token before each connection opens', async (t) => {
    const getToken = counter();
    const { client, transport } = setup(t, { getToken });
    assert.deepEqual(transport.opened, [], 'not before the token came');
    assert.equal(client.state, 'connecting');
    await settle();
    assert.deepEqual(transport.opened, [URL]);
    transport.accept();
    assert.deepEqual(transport.take(), ['auth tok-1']);
    assert.equal(getToken.calls, 1);
  });

  it('sends auth before resubscribing on every reconnection, with a fresh token', async (t) => {
    const getToken = counter();
    const { client, transport } = setup(t, { getToken });
    client.subscribe('a');
    client.subscribe('b');
    await settle();
    transport.accept();
    transport.receive('subscribed a');
    transport.receive('subscribed b');
    assert.deepEqual(transport.take(), ['auth tok-1', 'subscribe a', 'subscribe b']);

    transport.drop(1006);
    client.send('a', 'while away');
    t.mock.timers.tick(1000);
    await settle();
    assert.equal(transport.opened.length, 2);
    transport.accept();
    assert.deepEqual(transport.take(), [
      'auth tok-2',
      'subscribe a',
      'subscribe b',
      'channel a while away',
    ]);
  });

  it('a static token is sent again as it is on reconnection', (t) => {
    const { transport } = setup(t, { token: 'same' });
    transport.accept();
    transport.drop(1001);
    t.mock.timers.tick(1000);
    transport.accept();
    assert.deepEqual(transport.take(), ['auth same', 'auth same']);
  });

  it('a getToken that fails says `no_token` and is retried with back-off', async (t) => {
    let fail = true;
    const getToken = async () => {
      if (fail) throw new Error('login server down');
      return 'good';
    };
    const { client, transport } = setup(t, { getToken });
    const events = record(client, 'error', 'reconnecting');
    await settle();
    assert.deepEqual(transport.opened, []);
    assert.equal(client.state, 'closed');
    assert.equal(events[0][0], 'error');
    assert.equal(events[0][1].code, 'no_token');
    assert.match(events[0][1].message, /login server down/);
    assert.equal(events[1][0], 'reconnecting');

    fail = false;
    t.mock.timers.tick(1000);
    await settle();
    assert.deepEqual(transport.opened, [URL]);
    transport.accept();
    assert.deepEqual(transport.take(), ['auth good']);
  });

  it('a getToken answer that is not a token says `no_token`', async (t) => {
    const { client, transport } = setup(t, { getToken: async () => '', plugins: {} });
    const errors = record(client, 'error');
    await settle();
    assert.equal(errors[0][1].code, 'no_token');
    assert.deepEqual(transport.opened, []);
  });

  it('close() while the token is fetched opens nothing', async (t) => {
    const { client, transport } = setup(t, { getToken: counter() });
    client.close();
    await settle();
    assert.deepEqual(transport.opened, []);
    assert.equal(client.state, 'closed');
  });

  it('a token fetched for an attempt given up on is not used for the next one', async (t) => {
    const releases = [];
    const getToken = () => new Promise((resolve) => releases.push(resolve));
    const { client, transport } = setup(t, { getToken });
    client.close();
    client.open();
    assert.equal(releases.length, 2);
    releases[1]('new');
    await settle();
    releases[0]('old');
    await settle();
    assert.deepEqual(transport.opened, [URL], 'one transport opened, for the second attempt');
    transport.accept();
    assert.deepEqual(transport.take(), ['auth new']);
  });

  it('refuses a token that is not a string, or has spaces, at once', () => {
    const make = (options) =>
      new Client({ serverUrl: URL, transport: new FakeTransport(), ...options });
    assert.throws(() => make({ token: 'a b' }), TypeError);
    assert.throws(() => make({ token: 42 }), TypeError);
    assert.throws(() => make({ getToken: 'abc' }), TypeError);
  });

  it('sends nothing of auth without token or getToken', (t) => {
    const { transport } = setup(t);
    transport.accept();
    assert.deepEqual(transport.take(), []);
  });
});

describe('auth: authenticated', () => {
  it('keeps who the server says the connection is, and says `authenticated`', (t) => {
    const { client, transport } = setup(t, { token: 'x' });
    const events = record(client, 'authenticated');
    assert.equal(client.user, null);
    transport.accept();
    transport.receive('authenticated {"user":"42","exp":1767225600,"connection":"ab12.7"}');
    const identity = { user: '42', exp: 1767225600, connection: 'ab12.7' };
    assert.equal(client.user, '42');
    assert.deepEqual(client.identity, identity);
    assert.deepEqual(events, [['authenticated', identity]]);

    transport.receive('authenticated {"user":null,"exp":null,"connection":"ab12.8"}');
    assert.equal(client.user, null, 'anonymous');
    assert.equal(client.identity.exp, null);
  });
});

describe('auth: in-band refresh', () => {
  it('answers `refresh` with `auth <new token>` on the same connection, subscriptions kept', async (t) => {
    const getToken = counter();
    const { client, transport } = setup(t, { getToken });
    const events = record(client, 'close', 'open', 'error');
    client.subscribe('room');
    await settle();
    transport.accept();
    transport.receive('subscribed room');
    transport.take();

    transport.receive('refresh {"exp":1767225600,"in":30000}');
    await settle();
    assert.deepEqual(transport.take(), ['auth tok-2'], 'no subscribe again, no reconnection');
    assert.equal(transport.opened.length, 1);
    assert.deepEqual(
      events.map(([name]) => name),
      ['open'],
    );
    transport.receive('authenticated {"user":"42","exp":1767229200,"connection":"c.1"}');
    assert.equal(client.identity.exp, 1767229200);

    // The refreshed token is the one of the next connection only when fetched again.
    transport.drop(1006);
    t.mock.timers.tick(1000);
    await settle();
    transport.accept();
    assert.equal(transport.take()[0], 'auth tok-3');
  });

  it('two `refresh` frames while the token is fetched make one call', async (t) => {
    const getToken = counter();
    const { transport } = setup(t, { getToken });
    await settle();
    transport.accept();
    transport.take();
    transport.receive('refresh {"exp":1767225600,"in":30000}');
    transport.receive('refresh {"exp":1767225600,"in":29000}');
    await settle();
    assert.equal(getToken.calls, 2, 'one at connect, one for the refresh');
    assert.deepEqual(transport.take(), ['auth tok-2']);
  });

  it('a refreshed token fetched after the connection ended is not sent', async (t) => {
    let release;
    let calls = 0;
    const getToken = () => {
      calls += 1;
      return calls === 1 ? 'first' : new Promise((resolve) => (release = resolve));
    };
    const { client, transport } = setup(t, { getToken, plugins: { autoReconnect: null } });
    await settle();
    transport.accept();
    transport.take();
    transport.receive('refresh {"exp":1767225600,"in":30000}');
    await settle();
    transport.drop(1006);
    release('late');
    await settle();
    assert.deepEqual(transport.take(), []);
    assert.equal(client.state, 'closed');
  });

  it('with a static token it cannot refresh: says `cannot_refresh`, sends nothing', (t) => {
    const { client, transport } = setup(t, { token: 'static' });
    const errors = record(client, 'error');
    transport.accept();
    transport.take();
    transport.receive('refresh {"exp":1767225600,"in":30000}');
    assert.deepEqual(transport.take(), []);
    assert.equal(errors.length, 1);
    assert.ok(errors[0][1] instanceof CometError);
    assert.equal(errors[0][1].code, 'cannot_refresh');
    assert.match(errors[0][1].message, /getToken/);
  });

  it('a refused refresh (`error` unauthorized) is said as an error; the connection stays', async (t) => {
    const { client, transport } = setup(t, { getToken: counter() });
    const errors = record(client, 'error');
    await settle();
    transport.accept();
    transport.receive('refresh {"exp":1767225600,"in":30000}');
    await settle();
    transport.receive('error {"code":"unauthorized","message":"bad signature"}');
    assert.equal(errors.length, 1);
    assert.equal(errors[0][1].code, 'unauthorized');
    assert.equal(errors[0][1].message, 'bad signature');
    assert.equal(client.isOpened(), true);
  });

  it('a getToken that fails on refresh says `no_token`', async (t) => {
    let calls = 0;
    const getToken = async () => {
      calls += 1;
      if (calls > 1) throw new Error('session ended');
      return 'first';
    };
    const { client, transport } = setup(t, { getToken });
    const errors = record(client, 'error');
    await settle();
    transport.accept();
    transport.take();
    transport.receive('refresh {"exp":1767225600,"in":30000}');
    await settle();
    assert.deepEqual(transport.take(), []);
    assert.equal(errors[0][1].code, 'no_token');
    assert.match(errors[0][1].message, /session ended/);
  });
});

describe('auth: refusals', () => {
  const refusals = [
    [CloseCode.FORBIDDEN, 'Forbidden', 'forbidden'],
    [CloseCode.UNAUTHORIZED, 'Unauthorized', 'unauthorized'],
    [CloseCode.AUTH_TIMEOUT, 'Authentication timeout', 'auth_timeout'],
    [4150, 'Custom', 'refused'],
  ];
  for (const [closeCode, reason, code] of refusals) {
    it(`${closeCode} ${reason}: an error with the code, and no retry`, async (t) => {
      const { client, transport } = setup(t, { getToken: counter() });
      const events = record(client, 'close', 'error', 'reconnecting');
      await settle();
      transport.accept();
      transport.drop(closeCode, reason);
      assert.deepEqual(
        events.map(([name]) => name),
        ['close', 'error'],
      );
      const error = events[1][1];
      assert.ok(error instanceof CometError);
      assert.equal(error.code, code);
      assert.equal(error.closeCode, closeCode);
      assert.equal(error.reason, reason);
      t.mock.timers.tick(60_000);
      await settle();
      assert.equal(transport.opened.length, 1, 'not retried');
      assert.equal(client.isForceClosed(), false);
    });
  }

  it('4102 with getToken: reconnects with a new token, no error', async (t) => {
    const getToken = counter();
    const { client, transport } = setup(t, { getToken });
    const events = record(client, 'error', 'reconnecting');
    client.subscribe('room');
    await settle();
    transport.accept();
    transport.take();
    transport.drop(CloseCode.TOKEN_EXPIRED, 'Token expired');
    assert.deepEqual(
      events.map(([name]) => name),
      ['reconnecting'],
    );
    t.mock.timers.tick(1000);
    await settle();
    assert.equal(transport.opened.length, 2);
    transport.accept();
    assert.deepEqual(transport.take(), ['auth tok-2', 'subscribe room']);
    assert.equal(client.shouldReconnect(CloseCode.TOKEN_EXPIRED), true);
  });

  it('4102 with a static token: an error, and no retry', (t) => {
    const { client, transport } = setup(t, { token: 'static' });
    const events = record(client, 'error', 'reconnecting');
    transport.accept();
    transport.drop(CloseCode.TOKEN_EXPIRED, 'Token expired');
    assert.deepEqual(
      events.map(([name]) => name),
      ['error'],
    );
    assert.equal(events[0][1].code, 'token_expired');
    assert.equal(events[0][1].closeCode, 4102);
    t.mock.timers.tick(60_000);
    assert.equal(transport.opened.length, 1);
    assert.equal(client.shouldReconnect(CloseCode.TOKEN_EXPIRED), false);
  });

  it('a refusal of an attempt that never opened is said too', (t) => {
    const { client, transport } = setup(t, { token: 'x' });
    const errors = record(client, 'error');
    transport.drop(CloseCode.UNAUTHORIZED, 'Unauthorized');
    assert.equal(errors[0][1].code, 'unauthorized');
  });

  for (const code of [CloseCode.RATE_LIMITED, CloseCode.TOO_MANY_CONNECTIONS]) {
    it(`${code}: reconnects, backing off even though each attempt opened`, (t) => {
      const { client, transport } = setup(t, {
        plugins: {
          autoReconnect: new AutoReconnect({
            minRetryInterval: 1000,
            maxRetryInterval: 60_000,
            random: () => 0.999_999,
          }),
        },
      });
      const events = record(client, 'reconnecting', 'error');
      for (let i = 0; i < 4; i += 1) {
        transport.accept();
        transport.drop(code);
        t.mock.timers.tick(events.at(-1)[1].delay);
      }
      assert.deepEqual(
        events.map(([name, event]) => [name, event.delay]),
        [
          ['reconnecting', 2000],
          ['reconnecting', 4000],
          ['reconnecting', 8000],
          ['reconnecting', 16000],
        ],
      );
      // A close for another reason after an open counts from the start again.
      transport.accept();
      transport.drop(1006);
      assert.equal(events.at(-1)[1].delay, 2000);
    });
  }
});

describe('subscription tokens', () => {
  it('sends `subscribe <channel> {"token":…}`, and again on reconnection', (t) => {
    const { client, transport } = setup(t);
    client.subscribe('news:feed', { token: 'sub.jwt' });
    client.subscribe('plain');
    transport.accept();
    assert.deepEqual(transport.take(), [
      'subscribe news:feed {"token":"sub.jwt"}',
      'subscribe plain',
    ]);
    transport.receive('subscribed news:feed');
    transport.drop(1006);
    t.mock.timers.tick(1000);
    transport.accept();
    assert.deepEqual(transport.take(), [
      'subscribe news:feed {"token":"sub.jwt"}',
      'subscribe plain',
    ]);
  });

  it('a token function is called for each subscribe, fresh on reconnection', async (t) => {
    const { client, transport } = setup(t);
    const asked = [];
    let n = 0;
    client.subscribe('news:feed', {
      token: async (channel) => {
        asked.push(channel);
        return `sub-${++n}`;
      },
    });
    transport.accept();
    await settle();
    assert.deepEqual(transport.take(), ['subscribe news:feed {"token":"sub-1"}']);
    transport.receive('subscribed news:feed');
    transport.drop(1006);
    t.mock.timers.tick(1000);
    transport.accept();
    await settle();
    assert.deepEqual(transport.take(), ['subscribe news:feed {"token":"sub-2"}']);
    assert.deepEqual(asked, ['news:feed', 'news:feed']);
  });

  it('`forbidden` rejects the subscription, says `error`, and it is not renewed', async (t) => {
    const { client, transport } = setup(t);
    const errors = record(client, 'error');
    transport.accept();
    const subscribed = client.subscribe('news:feed', { token: 'bad' });
    transport.receive(
      'error {"code":"forbidden","message":"bad subscription token","channel":"news:feed"}',
    );
    await assert.rejects(subscribed, { code: 'forbidden', channel: 'news:feed' });
    assert.equal(errors.length, 1);
    transport.take();
    transport.drop(1006);
    t.mock.timers.tick(1000);
    transport.accept();
    assert.deepEqual(transport.take(), []);
  });

  it('`forbidden` for a renewed subscription (token expired meanwhile) ends it too', async (t) => {
    const { client, transport } = setup(t);
    const errors = record(client, 'error');
    client.subscribe('news:feed', { token: 'soon-expired' });
    transport.accept();
    transport.receive('subscribed news:feed');
    transport.drop(1006);
    t.mock.timers.tick(1000);
    transport.accept();
    transport.take();
    transport.receive('error {"code":"forbidden","message":"token expired","channel":"news:feed"}');
    assert.equal(errors.length, 1);
    assert.equal(errors[0][1].channel, 'news:feed');
    transport.drop(1006);
    t.mock.timers.tick(1000);
    transport.accept();
    assert.deepEqual(transport.take(), [], 'not subscribed blindly again');
    // The app may subscribe again, with a new token.
    client.subscribe('news:feed', { token: 'new' });
    assert.deepEqual(transport.take(), ['subscribe news:feed {"token":"new"}']);
  });

  it('`forbidden` for a publish to a confirmed subscription leaves it alone', async (t) => {
    const { client, transport } = setup(t);
    const errors = record(client, 'error');
    const subscribed = client.subscribe('room');
    transport.accept();
    transport.receive('subscribed room');
    await subscribed;
    client.send('room', 'hi');
    transport.receive('error {"code":"forbidden","message":"read only","channel":"room"}');
    assert.equal(errors.length, 1);
    transport.take();
    transport.drop(1006);
    t.mock.timers.tick(1000);
    transport.accept();
    assert.deepEqual(transport.take(), ['subscribe room']);
  });

  it('a token function that fails rejects the subscription with `no_token`', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const subscribed = client.subscribe('news:feed', {
      token: async () => {
        throw new Error('no session');
      },
    });
    await settle();
    await assert.rejects(subscribed, { code: 'no_token', channel: 'news:feed' });
    assert.deepEqual(transport.take(), []);
  });

  it('unsubscribe forgets the token', (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    client.subscribe('news:feed', { token: 'one' });
    transport.receive('subscribed news:feed');
    client.unsubscribe('news:feed');
    transport.receive('unsubscribed news:feed');
    client.subscribe('news:feed');
    assert.deepEqual(transport.take(), [
      'subscribe news:feed {"token":"one"}',
      'unsubscribe news:feed',
      'subscribe news:feed',
    ]);
  });

  it('refuses a token that is neither a string nor a function', (t) => {
    const { client } = setup(t);
    assert.throws(() => client.subscribe('x', { token: 42 }), TypeError);
  });
});

describe('rate limits', () => {
  it('a rate_limited or not_authenticated answer rejects the request with its code', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const limited = client.request('chat/say', { text: 'hi' });
    transport.answerLast({ error: { code: 'rate_limited', message: 'over 50 actions/s' } });
    await assert.rejects(limited, { code: 'rate_limited', route: 'chat/say' });
    const anonymous = client.request('site/me');
    transport.answerLast({ error: { code: 'not_authenticated', message: 'log in first' } });
    await assert.rejects(anonymous, { code: 'not_authenticated', route: 'site/me' });
    assert.equal(client.isOpened(), true);
  });

  it('a rate_limited publish is said as an error; the subscription stays', async (t) => {
    const { client, transport } = setup(t);
    const errors = record(client, 'error');
    const subscribed = client.subscribe('room');
    transport.accept();
    transport.receive('subscribed room');
    await subscribed;
    transport.take();
    client.send('room', 'flood');
    transport.receive('error {"code":"rate_limited","message":"slow down","channel":"room"}');
    assert.equal(errors[0][1].code, 'rate_limited');
    t.mock.timers.tick(10_000);
    assert.deepEqual(transport.take(), ['channel room flood']);
  });

  it('a rate_limited subscribe is sent again later, then given up after 3 tries', async (t) => {
    const { client, transport } = setup(t);
    const errors = record(client, 'error');
    transport.accept();
    const subscribed = client.subscribe('room', { token: 'sub' });
    const limited = 'error {"code":"rate_limited","message":"slow down","channel":"room"}';
    for (const wait of [1000, 2000, 3000]) {
      assert.deepEqual(transport.take(), ['subscribe room {"token":"sub"}']);
      transport.receive(limited);
      t.mock.timers.tick(wait - 1);
      assert.deepEqual(transport.take(), [], `not before ${wait} ms`);
      t.mock.timers.tick(1);
    }
    assert.deepEqual(transport.take(), ['subscribe room {"token":"sub"}']);
    transport.receive(limited);
    await assert.rejects(subscribed, { code: 'rate_limited', channel: 'room' });
    assert.equal(errors.length, 4);
    t.mock.timers.tick(60_000);
    assert.deepEqual(transport.take(), []);
  });

  it('a rate_limited subscribe confirmed meanwhile is not sent again', async (t) => {
    const { client, transport } = setup(t);
    transport.accept();
    const subscribed = client.subscribe('room');
    transport.take();
    transport.receive('error {"code":"rate_limited","message":"slow down","channel":"room"}');
    transport.receive('subscribed room');
    await subscribed;
    t.mock.timers.tick(10_000);
    assert.deepEqual(transport.take(), []);
  });
});
