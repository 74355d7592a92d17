// Drives the stock npm `sockjs-client` (1.6.1) against the comet SockJS transport, once
// per transport sockjs-client supports in Node: websocket, xhr-streaming, xhr-polling
// and eventsource (htmlfile, jsonp-polling and the iframe transports need a DOM).
//
// The server is `examples/sockjs-testsrv`, started here on a free port; its path comes
// from SOCKJS_TESTSRV (scripts/test builds it and sets it). Run: `npm ci && npm test`.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const SockJS = require('sockjs-client');

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];
// What the server calls each transport (ConnectionInfo.transport).
const SERVER_NAMES = {
  websocket: 'sockjs-websocket',
  'xhr-streaming': 'xhr-streaming',
  'xhr-polling': 'xhr-polling',
  eventsource: 'eventsource',
};
const TIMEOUT_MS = 10000;

let server;
let base;

before(async () => {
  const bin = process.env.SOCKJS_TESTSRV;
  if (!bin) {
    throw new Error('set SOCKJS_TESTSRV to the sockjs-testsrv binary (scripts/test does)');
  }
  server = spawn(bin, ['--bind', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('sockjs-testsrv did not start')), 30000);
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const found = out.match(/listening on (http:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`sockjs-testsrv exited with ${code}`)));
  });
});

after(() => {
  if (server) server.kill();
});

// A SockJS client with awaitable messages.
class Client {
  constructor(url, transport) {
    this.sock = new SockJS(url, null, { transports: [transport], timeout: TIMEOUT_MS });
    this.inbox = [];
    this.waiters = [];
    this.sock.onmessage = (e) => {
      this.inbox.push(e.data);
      this.wake();
    };
    this.closed = new Promise((resolve) => {
      this.sock.onclose = (e) => {
        this.closeEvent = e;
        this.wake();
        resolve(e);
      };
    });
    this.opened = new Promise((resolve, reject) => {
      this.sock.onopen = () => resolve(this);
      this.closed.then((e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`)));
    });
  }

  wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  send(text) {
    this.sock.send(text);
  }

  // The next message matching `want` (a string, or a predicate); earlier ones that do
  // not match stay in the inbox.
  async expect(want, what = String(want)) {
    const matches = typeof want === 'function' ? want : (m) => m === want;
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const at = this.inbox.findIndex(matches);
      if (at >= 0) return this.inbox.splice(at, 1)[0];
      if (this.closeEvent) {
        throw new Error(`closed (${this.closeEvent.code}) while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for ${what}; inbox: ${JSON.stringify(this.inbox)}`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close() {
    this.sock.close();
    return this.closed;
  }
}

async function open(path, transport) {
  const client = new Client(base + path, transport);
  await client.opened;
  assert.equal(client.sock.transport, transport, 'sockjs-client picked the transport asked for');
  return client;
}

function answerTo(uid) {
  return (m) => m.startsWith('action ') && JSON.parse(m.slice(7)).requestUid === uid;
}

for (const transport of TRANSPORTS) {
  test(`comet over ${transport}: subscribe, publish, call an action`, async () => {
    const alice = await open('/comet', transport);
    const bob = await open('/comet', transport);
    try {
      for (const client of [alice, bob]) {
        client.send('subscribe room');
        await client.expect('subscribed room');
      }

      // A client's publish reaches every subscriber, itself included.
      const hello = `channel room hello from ${transport} ü € 😀 "quoted" %41 \\`;
      alice.send(hello);
      await alice.expect(hello);
      await bob.expect(hello);

      // An action call is answered with its requestUid.
      alice.send('action test/echo {"requestUid":"r1","n":1,"text":"\u2028 ok"}');
      const answer = JSON.parse((await alice.expect(answerTo('r1'))).slice(7));
      assert.equal(answer.echo.n, 1);
      assert.equal(answer.echo.text, '\u2028 ok');
      assert.equal(answer.transport, SERVER_NAMES[transport]);

      // A burst published server-side arrives whole and in order; at 4 KiB per
      // streaming response it also makes xhr-streaming and eventsource reconnect.
      const count = 60;
      const message = 'x'.repeat(100);
      alice.send(
        `action test/publish {"requestUid":"r2","channel":"room","message":"${message}","count":${count}}`,
      );
      await alice.expect(answerTo('r2'));
      for (let i = 0; i < count; i++) {
        await bob.expect(`channel room ${message}`, `burst message ${i}`);
      }

      // Errors come back as frames and the connection lives on.
      alice.send('action nobody/home {"requestUid":"r3"}');
      const missing = JSON.parse((await alice.expect(answerTo('r3'))).slice(7));
      assert.equal(missing.error.code, 'not_found');

      bob.send('unsubscribe room');
      await bob.expect('unsubscribed room');
    } finally {
      const [a, b] = await Promise.all([alice.close(), bob.close()]);
      assert.equal(a.code, 1000);
      assert.equal(b.code, 1000);
    }
  });

  test(`echo over ${transport}: messages round-trip unchanged`, async () => {
    const client = await open('/echo', transport);
    const messages = [
      'plain',
      '',
      ' leading and trailing spaces ',
      'quotes " and \\ backslashes',
      'lines\nand\r\nreturns\tand tabs',
      'percent %25 %zz %',
      'unicode ü € 😀 \u200c\u2028\u2029\u2060\ufff0\uffff',
      'controls \u0001\u001f\u007f\u0085',
      'html </script><script>alert(1)</script>',
      'x'.repeat(5000),
    ];
    for (const message of messages) {
      client.send(message);
      assert.equal(await client.expect(() => true), message);
    }
    const closed = await client.close();
    assert.equal(closed.code, 1000);
  });

  test(`server close reaches the client over ${transport}`, async () => {
    const client = new Client(base + '/close', transport);
    await client.opened;
    const closed = await client.closed;
    assert.equal(closed.code, 3000);
    assert.equal(closed.reason, 'Go away!');
  });
}
