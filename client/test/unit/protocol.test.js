// The wire format, client side.

import assert from 'node:assert/strict';
import { it } from 'node:test';

import {
  actionFrame,
  channelFrame,
  checkName,
  helloFrame,
  historyFrame,
  parseServerFrame,
  readPayload,
  subscribeFrame,
  unsubscribeFrame,
} from '../../lib/protocol.js';

it('formats the client frames', () => {
  assert.equal(subscribeFrame('chat'), 'subscribe chat');
  assert.equal(unsubscribeFrame('chat'), 'unsubscribe chat');
  assert.equal(channelFrame('chat', 'a  b '), 'channel chat a  b ');
  assert.equal(
    actionFrame('site/test', { a: 1, requestUid: 'u' }),
    'action site/test {"a":1,"requestUid":"u"}',
  );
});

it('parses the server frames, keeping payloads as they came', () => {
  assert.deepEqual(parseServerFrame('channel chat hello  world '), {
    type: 'channel',
    channel: 'chat',
    payload: 'hello  world ',
  });
  assert.deepEqual(parseServerFrame('channel chat '), {
    type: 'channel',
    channel: 'chat',
    payload: '',
  });
  assert.deepEqual(parseServerFrame('action {"requestUid":"u","x":[1]}'), {
    type: 'action',
    body: { requestUid: 'u', x: [1] },
  });
  assert.deepEqual(parseServerFrame('error {"code":"bad_frame","message":"m","channel":"c"}'), {
    type: 'error',
    body: { code: 'bad_frame', message: 'm', channel: 'c' },
  });
  assert.deepEqual(parseServerFrame('subscribed a:b/c'), {
    type: 'subscribed',
    channel: 'a:b/c',
    body: null,
  });
  assert.deepEqual(parseServerFrame('unsubscribed x'), { type: 'unsubscribed', channel: 'x' });
});

it('speaks the heartbeat extension: hello both ways, and ping', () => {
  assert.equal(helloFrame({ heartbeat: true }), 'hello {"heartbeat":true}');
  assert.deepEqual(
    parseServerFrame('hello {"heartbeat":25000,"max_frame_bytes":65536,"max_pending_actions":64}'),
    { type: 'hello', body: { heartbeat: 25000, max_frame_bytes: 65536, max_pending_actions: 64 } },
  );
  assert.deepEqual(parseServerFrame('hello [1]'), { type: 'hello', body: null });
  assert.deepEqual(parseServerFrame('ping'), { type: 'ping' });
});

it('speaks history and recovery (issue 13): subscribe options, pub, subscribed, gap', () => {
  assert.equal(
    subscribeFrame('feed', { token: 't', recover: true, offset: 7, epoch: 'e1' }),
    'subscribe feed {"token":"t","recover":true,"offset":7,"epoch":"e1"}',
  );
  assert.equal(
    historyFrame('feed', { requestUid: 'u-1', since: 3, limit: 10 }),
    'history feed {"requestUid":"u-1","since":3,"limit":10}',
  );
  assert.deepEqual(parseServerFrame('pub feed 12 {"a":1}'), {
    type: 'pub',
    channel: 'feed',
    offset: 12,
    payload: '{"a":1}',
  });
  assert.deepEqual(parseServerFrame('pub feed 0 two  words '), {
    type: 'pub',
    channel: 'feed',
    offset: 0,
    payload: 'two  words ',
  });
  assert.deepEqual(parseServerFrame('pub feed 3 '), {
    type: 'pub',
    channel: 'feed',
    offset: 3,
    payload: '',
  });
  assert.deepEqual(parseServerFrame('subscribed feed {"offset":5,"epoch":"e","recovered":true}'), {
    type: 'subscribed',
    channel: 'feed',
    body: { offset: 5, epoch: 'e', recovered: true },
  });
  assert.deepEqual(parseServerFrame('subscribed feed {broken'), {
    type: 'subscribed',
    channel: 'feed',
    body: null,
  });
  assert.deepEqual(parseServerFrame('gap feed {"offset":9,"epoch":"e2"}'), {
    type: 'gap',
    channel: 'feed',
    body: { offset: 9, epoch: 'e2' },
  });
});

it('parses broken and unknown frames without throwing', () => {
  assert.deepEqual(parseServerFrame('action {oops'), { type: 'action', body: null });
  assert.deepEqual(parseServerFrame('action [1,2]'), { type: 'action', body: null });
  assert.deepEqual(parseServerFrame('error'), { type: 'error', body: null });
  for (const text of [
    '',
    'channel',
    'channel only-name',
    'subscribed',
    'pub',
    'pub feed',
    'pub feed 12',
    'pub feed x payload',
    'pub feed -1 payload',
    'pub feed 1.5 payload',
    'pub feed 99999999999999999999 payload',
    'gap',
    'gap feed',
    'howdy world',
    'ping pong',
    'CHANNEL a b',
  ]) {
    assert.deepEqual(parseServerFrame(text), { type: 'unknown' }, JSON.stringify(text));
  }
});

it('reads payloads as jii did: JSON objects and arrays parsed, the rest as text', () => {
  assert.deepEqual(readPayload('{"a":1}'), { params: { a: 1 }, message: null });
  assert.deepEqual(readPayload('[1]'), { params: [1], message: null });
  assert.deepEqual(readPayload('"quoted"'), { params: null, message: '"quoted"' });
  assert.deepEqual(readPayload('{not json'), { params: null, message: '{not json' });
});

it('refuses names with spaces, empty or not strings', () => {
  checkName('channel', 'ok:chan/1');
  for (const bad of ['', ' ', 'a b', 'a\nb', null, 7]) {
    assert.throws(() => checkName('channel', bad), TypeError);
  }
});
