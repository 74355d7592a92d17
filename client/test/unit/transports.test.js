// WebSocketTransport and SockJsTransport against fake socket constructors.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Client, SockJsTransport, WebSocketTransport } from '../../client.js';
import { record } from '../support/FakeTransport.js';

/**
 * A socket class in the shape of the browser's WebSocket and of sockjs-client (`onopen`,
 * `onmessage`, `onclose` properties, `send`, `close`); every instance lands in `sockets`.
 */
function fakeSocketClass() {
  const sockets = [];
  class FakeSocket {
    constructor(url, ...rest) {
      this.url = url;
      this.args = rest;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }
    send(text) {
      this.sent.push(text);
    }
    close(...args) {
      this.closedWith = args;
    }
  }
  return { FakeSocket, sockets };
}

for (const { name, Transport, option, urls } of [
  {
    name: 'WebSocketTransport',
    Transport: WebSocketTransport,
    option: 'WebSocket',
    urls: [
      ['http://h:4100/comet', 'ws://h:4100/comet/websocket'],
      ['https://h/comet/', 'wss://h/comet/websocket'],
      ['ws://h/comet', 'ws://h/comet/websocket'],
      ['http://h/', 'ws://h/websocket'],
    ],
  },
  {
    name: 'SockJsTransport',
    Transport: SockJsTransport,
    option: 'SockJS',
    urls: [
      ['http://h:4100/comet', 'http://h:4100/comet'],
      ['https://h/comet/', 'https://h/comet'],
      ['ws://h/comet', 'http://h/comet'],
      ['wss://h/comet', 'https://h/comet'],
    ],
  },
]) {
  describe(name, () => {
    it('maps the comet prefix URL to its own', () => {
      const { FakeSocket, sockets } = fakeSocketClass();
      const transport = new Transport({ [option]: FakeSocket });
      for (const [prefix, expected] of urls) {
        transport.open(prefix);
        assert.equal(sockets.at(-1).url, expected);
      }
    });

    it('turns socket events into transport events, and sends text', () => {
      const { FakeSocket, sockets } = fakeSocketClass();
      const transport = new Transport({ [option]: FakeSocket });
      const events = record(transport, 'open', 'message', 'close');
      transport.open('http://h/comet');
      const [socket] = sockets;
      socket.onopen({});
      socket.onmessage({ data: 'channel a b' });
      socket.onmessage({ data: new ArrayBuffer(2) }); // never sent by comet: ignored
      transport.send('subscribe a');
      socket.onclose({ code: 1001, reason: 'Server shutting down', wasClean: true });
      assert.deepEqual(socket.sent, ['subscribe a']);
      assert.deepEqual(events, [
        ['open', undefined],
        ['message', 'channel a b'],
        ['close', { code: 1001, reason: 'Server shutting down', wasClean: true }],
      ]);
    });

    it('close() closes the socket and hears nothing more from it', () => {
      const { FakeSocket, sockets } = fakeSocketClass();
      const transport = new Transport({ [option]: FakeSocket });
      const events = record(transport, 'open', 'message', 'close');
      transport.open('http://h/comet');
      transport.close();
      const [socket] = sockets;
      assert.equal(socket.closedWith[0], 1000);
      socket.onopen({});
      socket.onmessage({ data: 'late' });
      socket.onclose({ code: 1000, reason: '', wasClean: true });
      assert.deepEqual(events, []);
      transport.send('nowhere'); // no socket: dropped, not thrown
      transport.close(); // twice is fine
    });

    it('open() drops the previous socket', () => {
      const { FakeSocket, sockets } = fakeSocketClass();
      const transport = new Transport({ [option]: FakeSocket });
      const events = record(transport, 'close');
      transport.open('http://h/comet');
      transport.open('http://h/comet');
      assert.notEqual(sockets[0].closedWith, null);
      sockets[0].onclose({ code: 1006 });
      assert.deepEqual(events, []);
      sockets[1].onclose({ code: 1006 });
      assert.equal(events.length, 1);
    });

    it(`uses the global ${option} when none is given, and says so when there is none`, (t) => {
      const { FakeSocket, sockets } = fakeSocketClass();
      const saved = Object.getOwnPropertyDescriptor(globalThis, option);
      t.after(() => {
        if (saved) Object.defineProperty(globalThis, option, saved);
        else delete globalThis[option];
      });
      delete globalThis[option];
      assert.throws(() => new Transport(), { name: 'TypeError', message: new RegExp(option) });
      globalThis[option] = FakeSocket;
      new Transport().open('http://h/comet');
      assert.equal(sockets.length, 1);
    });
  });
}

describe('SockJsTransport options', () => {
  it('passes its transports list and other options to SockJS', () => {
    const { FakeSocket, sockets } = fakeSocketClass();
    const transport = new SockJsTransport({
      SockJS: FakeSocket,
      transports: ['xhr-streaming', 'jsonp-polling'],
      sockjsOptions: { timeout: 5000 },
    });
    transport.open('http://h/comet');
    assert.deepEqual(sockets[0].args, [
      null,
      { timeout: 5000, transports: ['xhr-streaming', 'jsonp-polling'] },
    ]);
  });
});

describe('the default transport', () => {
  it('is a WebSocketTransport, built with the WebSocket option when given', () => {
    const { FakeSocket, sockets } = fakeSocketClass();
    const client = new Client({ serverUrl: 'http://h/comet', WebSocket: FakeSocket });
    assert.ok(client.transport instanceof WebSocketTransport);
    assert.equal(sockets[0].url, 'ws://h/comet/websocket');
    client.close();
  });
});
