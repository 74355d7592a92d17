// The README's example plugin, so that the example stays true.

import assert from 'node:assert/strict';
import { it } from 'node:test';

import { Client } from '../../client.js';
import { LogPlugin } from '../../examples/LogPlugin.js';
import { FakeTransport } from '../support/FakeTransport.js';

it('LogPlugin logs the life of a connection, and frames when asked', () => {
  const lines = [];
  const transport = new FakeTransport();
  new Client({
    serverUrl: 'http://comet.test/comet',
    transport,
    plugins: {
      autoReconnect: null,
      log: new LogPlugin({ log: (l) => lines.push(l), frames: true }),
    },
  }).subscribe('chat');
  transport.accept();
  transport.receive('subscribed chat');
  transport.receive('error {"code":"bad_frame","message":"nope"}');
  transport.drop(1001, 'Server shutting down');
  assert.deepEqual(lines, [
    'comet: → subscribe chat',
    'comet: open http://comet.test/comet',
    'comet: ← subscribed chat',
    'comet: error bad_frame: nope',
    'comet: ← error {"code":"bad_frame","message":"nope"}',
    'comet: closed 1001 Server shutting down',
  ]);
});
