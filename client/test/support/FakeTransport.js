/**
 * A transport for unit tests: records what the client does with it, and lets the test
 * play the server's part (accept, refuse, answer, drop the connection).
 */

import { Emitter } from '../../lib/Emitter.js';

export class FakeTransport extends Emitter {
  /** URLs passed to `open`, in order. @type {string[]} */
  opened = [];
  /** Frames sent while connected, in order. @type {string[]} */
  sent = [];
  /** How many times `close` was called. */
  closeCalls = 0;
  /** Whether a connection is up (between `accept` and `drop` / `close`). */
  connected = false;

  open(url) {
    this.opened.push(url);
  }

  send(text) {
    if (!this.connected) throw new Error(`sent while not connected: ${text}`);
    this.sent.push(text);
  }

  close() {
    this.closeCalls += 1;
    this.connected = false;
  }

  /** The server accepts the connection being opened. */
  accept() {
    this.connected = true;
    this.emit('open');
  }

  /** The connection (or the attempt) ends from the far side. */
  drop(code = 1006, reason = '') {
    this.connected = false;
    this.emit('close', { code, reason, wasClean: code !== 1006 });
  }

  /** A frame arrives from the server. */
  receive(text) {
    this.emit('message', text);
  }

  /** Takes the frames sent so far, leaving none. */
  take() {
    const sent = this.sent;
    this.sent = [];
    return sent;
  }

  /** Parses the last `action` frame sent: `{ route, params }`. */
  lastAction() {
    const frame = [...this.sent].reverse().find((text) => text.startsWith('action '));
    if (!frame) throw new Error(`no action frame among ${JSON.stringify(this.sent)}`);
    const [, route, json] = frame.match(/^action (\S+) (.*)$/s);
    return { route, params: JSON.parse(json) };
  }

  /** Answers the last action sent with `body` (its `requestUid` added). */
  answerLast(body) {
    const { params } = this.lastAction();
    this.receive(`action ${JSON.stringify({ ...body, requestUid: params.requestUid })}`);
  }
}

/** Records the events of `emitter` named in `names`, in order, as `[name, event]`. */
export function record(emitter, ...names) {
  const events = [];
  for (const name of names) emitter.on(name, (event) => events.push([name, event]));
  return events;
}
