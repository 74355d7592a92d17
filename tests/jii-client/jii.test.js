// The original jii comet client (npm jii@1.0.18, SockJS transport) against comet's server
// (the chat demo): subscribe, publish, call actions, on each SockJS transport it has in
// Node. jii's client must keep working against its successor.
//
// Run by scripts/test with CHAT_SERVER=<path to the chat example binary>.

'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { after, before, describe, it } = require('node:test');

// jii's modules must load before the browser globals exist (its SockJS transport takes a
// defined `window` for a non-browser host and then fails); its client reads them later.
const Client = require('jii/comet/client/Client');
const Sockjs = require('jii/comet/client/transport/Sockjs');
globalThis.window = { navigator: { userAgent: 'node' } };
globalThis.location = { protocol: 'http:' };
Object.defineProperty(globalThis, 'navigator', { value: globalThis.window.navigator, configurable: true });

let server;
let base;

before(async () => {
  const executable = process.env.CHAT_SERVER;
  assert.ok(executable, 'CHAT_SERVER must name the chat example binary');
  server = spawn(executable, ['--bind', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  base = await new Promise((resolve, reject) => {
    let seen = '';
    const look = (chunk) => {
      seen += chunk;
      const match = seen.match(/chat demo on (http:\/\/[\d.]+:\d+)\//);
      if (match) resolve(match[1]);
    };
    server.stdout.on('data', look);
    server.stderr.on('data', look);
    server.on('exit', (code) => reject(new Error(`chat server exited (${code}): ${seen}`)));
  });
});

after(() => server?.kill());

/** A jii client on `transport`, opened. */
function connect(transport) {
  const client = new Client({
    serverUrl: `${base}/comet`,
    transport: { className: Sockjs, transports: [transport] },
    plugins: {},
    autoOpen: false,
  });
  const opened = new Promise((resolve) => client.on('open', resolve));
  client.open();
  return opened.then(() => client);
}

/** Resolves with the next raw frame for which `test` is true. */
function nextFrame(client, test) {
  return new Promise((resolve) => {
    const handler = (event) => {
      if (test(event.message)) {
        client.off('message', handler);
        resolve(event.message);
      }
    };
    client.on('message', handler);
  });
}

/** Resolves with the next channel event on `channel`. */
function nextChannelEvent(client, channel) {
  return new Promise((resolve) => {
    const handler = (event) => {
      if (event.channel === channel) {
        client.off('channel', handler);
        resolve(event);
      }
    };
    client.on('channel', handler);
  });
}

for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling']) {
  describe(`jii's client over SockJS ${transport}`, () => {
    let reader;
    let writer;

    before(async () => {
      [reader, writer] = await Promise.all([connect(transport), connect(transport)]);
    });

    after(() => {
      reader?.close();
      writer?.close();
    });

    it('receives what another client publishes, JSON and text alike', async () => {
      const channel = `jii-${transport}`;
      // comet acknowledges a subscribe with a frame jii's client passes on as a message.
      const subscribed = nextFrame(reader, (frame) => frame === `subscribed ${channel}`);
      reader.subscribe(channel);
      await subscribed;

      let event = nextChannelEvent(reader, channel);
      writer.send(channel, { hello: 'jii', n: 1 });
      event = await event;
      assert.deepEqual(event.params, { hello: 'jii', n: 1 });

      event = nextChannelEvent(reader, channel);
      writer.send(channel, 'plain words');
      event = await event;
      assert.equal(event.params, null);
      assert.equal(event.message, 'plain words');
    });

    it('calls an action and gets its answer', async () => {
      const answer = await writer.request('site/test', { a: 1, text: 'x y' });
      assert.deepEqual(answer.echo, { a: 1, text: 'x y' });
      assert.equal(typeof answer.requestUid, 'string');
    });

    it('gets an error answer where jii would have hung', async () => {
      const answer = await writer.request('no/such', {});
      assert.equal(answer.error.code, 'not_found');
    });

    it('stops receiving after unsubscribe', async () => {
      const channel = `jii-off-${transport}`;
      const marker = `jii-marker-${transport}`;
      let subscribed = nextFrame(reader, (frame) => frame === `subscribed ${channel}`);
      reader.subscribe(channel);
      await subscribed;
      subscribed = nextFrame(reader, (frame) => frame === `subscribed ${marker}`);
      reader.subscribe(marker);
      await subscribed;
      const unsubscribed = nextFrame(reader, (frame) => frame === `unsubscribed ${channel}`);
      reader.unsubscribe(channel);
      await unsubscribed;

      const seen = [];
      const record = (event) => seen.push(event.channel);
      reader.on('channel', record);
      const markerEvent = nextChannelEvent(reader, marker);
      writer.send(channel, 'not for the reader');
      writer.send(marker, 'after');
      await markerEvent;
      reader.off('channel', record);
      assert.deepEqual(seen, [marker]);
    });
  });
}
