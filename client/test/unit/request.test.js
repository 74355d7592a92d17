// Client.request against a fake transport: answers, error answers, timeouts, disconnects.

import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';

import { Client, CometError } from '../../client.js';
import { FakeTransport, record } from '../support/FakeTransport.js';

function setup(options = {}) {
  const transport = new FakeTransport();
  const client = new Client({
    serverUrl: 'http://comet.test/comet',
    transport,
    plugins: { autoReconnect: null },
    heartbeat: false, // the hello and its watchdog have tests of their own (heartbeat.test.js)
    ...options,
  });
  return { client, transport };
}

describe('request', () => {
  it('sends the route and params with a fresh requestUid, and resolves with the answer', async () => {
    const { client, transport } = setup();
    transport.accept();
    const params = { text: 'hi' };
    const answer = client.request('site/test', params);
    const { route, params: sent } = transport.lastAction();
    assert.equal(route, 'site/test');
    assert.equal(sent.text, 'hi');
    assert.match(sent.requestUid, new RegExp(`^${client.getStationUid()}-`));
    assert.deepEqual(params, { text: 'hi' }, "the caller's object is left alone");

    transport.answerLast({ echo: { text: 'hi' } });
    assert.deepEqual(await answer, { echo: { text: 'hi' }, requestUid: sent.requestUid });
  });

  it('gives every request its own uid, and matches answers in any order', async () => {
    const { client, transport } = setup();
    transport.accept();
    const first = client.request('a/one');
    const second = client.request('a/two');
    const [one, two] = transport.take().map((frame) => JSON.parse(frame.split(' ')[2]).requestUid);
    assert.notEqual(one, two);
    transport.receive(`action {"requestUid":"${two}","n":2}`);
    transport.receive(`action {"requestUid":"${one}","n":1}`);
    assert.equal((await first).n, 1);
    assert.equal((await second).n, 2);
  });

  it('rejects with the code and message of an error answer', async () => {
    const { client, transport } = setup();
    transport.accept();
    const answer = client.request('chat/nick', { nick: 'bob' });
    transport.answerLast({ error: { code: 'nick_taken', message: '`bob` is taken' } });
    const error = await answer.catch((e) => e);
    assert.ok(error instanceof CometError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'nick_taken');
    assert.equal(error.message, '`bob` is taken');
    assert.equal(error.route, 'chat/nick');
    assert.equal(error.response.error.code, 'nick_taken');
  });

  it('says beforeRequest (which may add params) and request (with the answer or error)', async () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'request');
    client.on('beforeRequest', (event) => {
      event.params.token = 'secret';
    });
    const ok = client.request('site/test', { a: 1 });
    assert.equal(transport.lastAction().params.token, 'secret');
    transport.answerLast({ fine: true });
    await ok;
    const failed = client.request('site/missing');
    transport.answerLast({ error: { code: 'not_found', message: 'no handler' } });
    await assert.rejects(failed, { code: 'not_found' });

    assert.equal(events.length, 2);
    assert.equal(events[0][1].route, 'site/test');
    assert.equal(events[0][1].params.fine, true);
    assert.equal(events[0][1].error, undefined);
    assert.equal(events[1][1].route, 'site/missing');
    assert.equal(events[1][1].error.code, 'not_found');
  });

  it('ignores answers to nobody, and answers without a requestUid', () => {
    const { client, transport } = setup();
    transport.accept();
    const events = record(client, 'request');
    transport.receive('action {"requestUid":"nobody","x":1}');
    transport.receive('action {"x":1}');
    transport.receive('action [1]');
    assert.deepEqual(events, []);
  });

  it('rejects when the connection closes before the answer', async () => {
    const { client, transport } = setup();
    transport.accept();
    const answer = client.request('slow/thing');
    transport.drop(1006);
    await assert.rejects(answer, { code: 'disconnected', route: 'slow/thing' });
  });

  it('close() rejects sent requests (disconnected) and queued ones (cancelled)', async () => {
    const { client, transport } = setup();
    transport.accept();
    const sent = client.request('a/sent');
    transport.drop();
    client.open();
    const queued = client.request('a/queued');
    client.close();
    await assert.rejects(sent, { code: 'disconnected' });
    await assert.rejects(queued, { code: 'cancelled', route: 'a/queued' });
  });

  it('a queued request survives a failed attempt and goes out on open', async () => {
    const { client, transport } = setup();
    const answer = client.request('site/test');
    transport.drop();
    client.open();
    transport.accept();
    transport.answerLast({ ok: true });
    assert.equal((await answer).ok, true);
  });
});

describe('request timeouts', () => {
  it('rejects after requestTimeout (default 30 s) without an answer', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { client, transport } = setup();
    transport.accept();
    let settled = false;
    const answer = client.request('slow/thing').finally(() => (settled = true));
    t.mock.timers.tick(29_999);
    await Promise.resolve();
    assert.equal(settled, false);
    t.mock.timers.tick(1);
    await assert.rejects(answer, {
      code: 'timeout',
      route: 'slow/thing',
      message: 'no answer to "slow/thing" within 30000 ms',
    });
    // A late answer is ignored.
    transport.answerLast({ late: true });
  });

  it('counts time spent in the queue, and skips a request that timed out there', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { client, transport } = setup({ requestTimeout: 1000 });
    const answer = client.request('site/test');
    t.mock.timers.tick(1000);
    await assert.rejects(answer, { code: 'timeout' });
    transport.accept();
    assert.deepEqual(transport.sent, []);
  });

  it('takes a per-request timeout, and 0 for none', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { client, transport } = setup({ requestTimeout: 0 });
    transport.accept();
    const patient = client.request('a/patient');
    const hasty = client.request('a/hasty', {}, { timeout: 50 });
    t.mock.timers.tick(50);
    await assert.rejects(hasty, { code: 'timeout' });
    t.mock.timers.tick(10 * 60_000);
    const patientUid = JSON.parse(transport.sent[0].split(' ')[2]).requestUid;
    transport.receive(`action {"requestUid":"${patientUid}","ok":1}`);
    assert.equal((await patient).ok, 1);
  });

  it('an answered request leaves no timer behind', async () => {
    const setTimer = mock.method(globalThis, 'setTimeout');
    const clearTimer = mock.method(globalThis, 'clearTimeout');
    try {
      const { client, transport } = setup();
      transport.accept();
      const answer = client.request('site/test');
      transport.answerLast({});
      await answer;
      assert.equal(setTimer.mock.callCount(), 1);
      assert.equal(clearTimer.mock.callCount(), 1);
      assert.equal(clearTimer.mock.calls[0].arguments[0], setTimer.mock.calls[0].result);
    } finally {
      setTimer.mock.restore();
      clearTimer.mock.restore();
    }
  });
});
